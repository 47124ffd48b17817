"""`complaintflow test`: run the designers' scenario files (processes/tests/) in a throwaway
database, report each scenario and the coverage of the processes' flows and tasks."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..engine.errors import InvalidInput
from ..engine.scenarios import run_scenarios
from .cli_common import emit


def _shown_path(path: str) -> str:
    """A path as short as it is clear: relative to here when it is below here."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--svg", "svg_out", type=click.Path(), help="Draw each process with its covered flows marked: "
              "a directory (one PROCESS.svg each), or a .svg file when one process was tested.")
@click.option("--json", "as_json", is_flag=True)
def test_cmd(paths, svg_out, as_json):
    """Run process scenario files (default: processes/tests) and report coverage.

    Each scenario runs in a throwaway database (never --db). Exit 0 when all pass, 1 when a
    scenario fails, 2 when a scenario file has a mistake, 4 when the processes do not validate."""
    def progress(outcome):
        if not as_json:
            _print_outcome(outcome)

    report, runner = run_scenarios(list(paths), progress)
    written = _write_svgs(runner.coverage, runner.role_names, svg_out) if svg_out else []
    payload = report.as_dict()
    payload["svg"] = [str(p) for p in written]

    def text(_):
        for err in report.errors:
            click.echo(f"ERROR {_shown_path(err.file)}:{err.line}: {err.message}" if err.line
                       else f"ERROR {_shown_path(err.file)}: {err.message}", err=True)
        if report.coverage:
            click.echo("\ncoverage (what the scenarios' cases went through):")
        for entry in report.coverage:
            flows, tasks = entry["flows"], entry["tasks"]
            click.echo(f"  {entry['process_id']} ({entry['name']}): flows {flows['covered']}/{flows['total']} "
                       f"({flows['percent']:g}%), tasks {tasks['covered']}/{tasks['total']} ({tasks['percent']:g}%), "
                       f"{entry['scenarios']} scenario(s)")
            for f in entry["flows_never_taken"]:
                click.echo(f"    flow never taken: {f['id']}  {f['text']}")
            for t in entry["tasks_never_reached"]:
                click.echo(f"    task never reached: {t['id']} ({t['name']})")
        for p in written:
            click.echo(f"drawn: {p}")
        files = f"; {len(report.errors)} file(s) with mistakes" if report.errors else ""
        click.echo(f"{len(report.outcomes)} scenario(s): {payload['passed']} passed, {payload['failed']} failed{files}")
    emit(payload, as_json, text)
    raise click.exceptions.Exit(report.exit_code)


def _print_outcome(outcome):
    s = outcome.scenario
    where = _shown_path(s.file)
    if outcome.passed:
        click.echo(f"PASS {where}: {s.name} ({len(s.steps) - 1} step(s))")
    else:
        click.echo(f"FAIL {where}: {s.name}")
        click.echo(f"     {where}:{outcome.failure_line}: {outcome.failure}")


def _write_svgs(coverage, role_names, out) -> list[Path]:
    processes = sorted(coverage.scenarios)
    target = Path(out)
    if target.suffix.lower() == ".svg":
        if len(processes) != 1:
            raise InvalidInput(f"--svg {out} is one file, but {len(processes)} processes were tested; "
                               "give a directory")
        files = {processes[0]: target}
    else:
        target.mkdir(parents=True, exist_ok=True)
        files = {pid: target / f"{pid}.svg" for pid in processes}
    for pid, path in files.items():
        path.write_text(coverage.draw(pid, role_names), encoding="utf-8")
    return list(files.values())
