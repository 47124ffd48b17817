"""`complaintflow whatif` and `complaintflow diff`: a candidate definition against past cases and
against deployed versions (docs/process-design.md, "What-if" and "Diff")."""

from __future__ import annotations


import click

from ..engine.errors import InvalidInput
from .cli_common import _t, emit, since_day


@click.command("whatif")
@click.argument("process_id")
@click.option("--candidate", type=click.Path(),
              help="The candidate BPMN file, or a directory holding it (default: the file the process was "
                   "deployed from).")
@click.option("--since", help="Only cases received on or after this day (YYYY-MM-DD, Beijing time).")
@click.option("--cases", "newest", type=int, help="Only the newest N cases.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def whatif_cmd(obj, process_id, candidate, since, newest, as_json):
    """Replay past cases of PROCESS_ID against a candidate definition, without deploying it.

    Per case: the same path, or where it diverges (old / new); limits that move or would be
    breached; submissions that no longer fit the candidate's forms. The database is only read."""
    from ..engine.whatif import what_if
    day = since_day(since)

    def progress(n, total):
        if total >= 10 and (n % 10 == 0 or n == total):
            click.echo(f"  {n}/{total} cases replayed", err=True)

    result = what_if(obj.service, process_id, candidate=candidate, since=day, newest=newest, progress=progress)
    emit(result, as_json, _print_whatif)


def _print_whatif(r):
    c = r["candidate"]
    same = f"; same content as deployed version {c['same_as_version']}" if c["same_as_version"] else ""
    click.echo(f"candidate {c['path']} (checked, not deployed{same}); timers ticked up to {_t(r['now'])}")
    for case in r["cases"]:
        head = f"{case['case_number'] or case['instance_id']}  v{case['version']} {case['status']}, " \
               f"received {_t(case['received'])}"
        if case["error"]:
            click.echo(f"{head}: could not be replayed — {case['error']}")
        elif case["divergence"]:
            click.echo(f"{head}: diverges — {case['divergence']['text']}")
        elif case["does_not_fit"] is None:
            click.echo(f"{head}: same path")
        else:
            click.echo(f"{head}: does not fit")
        if case["does_not_fit"]:
            click.echo(f"  {case['does_not_fit']['text']}")
        for d in case["deadlines"]:
            line = _deadline_line(d)
            if line:
                click.echo(f"  {line}")
        for note in case["notes"]:
            click.echo(f"  note: {note}")
    s = r["summary"]
    failed = f", {s['failed']} could not be replayed" if s["failed"] else ""
    click.echo(f"{s['replayed']} case(s) replayed: {s['same_path']} keep their path, {s['diverge']} diverge, "
               f"{s['moved_deadlines']} have moved deadlines, {s['would_breach']} would breach a limit, "
               f"{s['do_not_fit']} do not fit the candidate's forms{failed}")


def _size(d) -> str:
    return "a fixed moment" if d["unit"] == "at" else f"{d['amount'] + d['extended_by']} {d['unit']}"


def _deadline_line(d) -> str | None:
    """A limit that moved or ends differently, in one line; None when nothing changed."""
    o, n, name = d["old"], d["new"], d["name"]
    if o is None:
        return f"limit '{name}': only in the candidate — {_size(n)}, last day {n['last_day'] or _t(n['due'])}, {n['status']}"
    if n is None:
        return f"limit '{name}': the candidate does not set it (old: last day {o['last_day'] or _t(o['due'])}, {o['status']})"
    if not (d["moved"] or d["would_breach"] or d["no_longer_breached"]) and (
            o["status"] == n["status"] or n["status"] in ("open", "paused")):
        return None        # unchanged, or still running where the candidate's replay stopped
    parts = []
    if d["moved"]:
        sizes = f" ({_size(o)} → {_size(n)})" if _size(o) != _size(n) else ""
        parts.append(f"last day {o['last_day'] or _t(o['due'])} → {n['last_day'] or _t(n['due'])}{sizes}")
    if d["would_breach"]:
        parts.append(f"would be breached at {_t(n['breached_at'] or n['due'])} (old: {o['status']})")
    elif d["no_longer_breached"]:
        parts.append(f"would be {n['status']} (old: breached at {_t(o['breached_at'] or o['due'])})")
    elif o["status"] != n["status"]:
        parts.append(f"old: {o['status']}, new: {n['status']}")
    else:
        parts.append(f"{n['status']} in both")
    return f"limit '{name}': " + "; ".join(parts)


@click.command("diff")
@click.argument("process_id")
@click.argument("versions", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def diff_cmd(obj, process_id, versions, as_json):
    """What changed in PROCESS_ID: [V1] [V2|PATH].

    No argument: the latest deployed version against the working copy (the file it was deployed
    from). V1: that version against the working copy. PATH: the latest version against that BPMN
    file (or the directory holding it). V1 V2 or V1 PATH: those two."""
    from ..engine.procdiff import diff_versions
    if len(versions) > 2:
        raise InvalidInput("give at most two versions: diff PROCESS [V1] [V2|PATH]")
    left, right = (None, None) if not versions else (versions[0], None) if len(versions) == 1 else versions
    if len(versions) == 1 and not left.isdigit():
        left, right = None, left
    if left is not None and not left.isdigit():
        raise InvalidInput(f"V1 must be a deployed version number, not '{left}'")
    result = diff_versions(obj.service, process_id, int(left) if left else None, right)
    emit(result, as_json, _print_diff)


KIND_TITLES = {"limit": "limits", "timer": "timers", "element": "elements", "flow": "sequence flows",
               "condition": "conditions", "form": "forms", "role": "roles (lanes)"}


def _print_diff(r):
    click.echo(f"{r['process_id']}: {r['from']['label']} → {r['to']['label']}")
    if r["equal"]:
        click.echo("no differences")
        return
    kind = None
    for c in r["changes"]:
        if c["kind"] != kind:
            kind = c["kind"]
            click.echo(f"{KIND_TITLES[kind]}:")
        click.echo(f"  {c['text']}")
