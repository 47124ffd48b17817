"""The command starts fast because it loads only what the command run needs: `--help`
loads no database or engine library, a read command on a current database neither Alembic
nor the form, calendar or JSON-output libraries, and `tasks` on a SQLite store neither
SQLAlchemy nor SpiffWorkflow, nor does `show` (they read the rows with sqlite3:
engine/sqlite_reads.py, which gives what the service gives, for every shipped procedure's
cases step by step; SpiffWorkflow only for a case waiting at an event); commands defined in other modules are registered by name and
still listed with their own help (docs/performance.md)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import update

from SpiffWorkflow.util.task import TaskState

from complaintflow.engine import sqlite_reads
from complaintflow.engine.models import HumanTask
from complaintflow.engine.scenario_reader import scenario_files
from complaintflow.engine.scenarios import Runner, ScenarioRun
from complaintflow.engine.sqlite_reads import SqliteReads
from complaintflow.web.cli import Ctx, _Group, cli

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "SpiffWorkflow", "alembic", "marshmallow", "jsonschema", "holidays", "lxml", "flask")


def loaded_after(args, env, modules=False) -> set[str]:
    """The top-level packages (with `modules`, every module) loaded by the time `complaintflow
    ARGS` has finished."""
    name = "m" if modules else "m.split('.')[0]"
    code = ("import sys, atexit\n"
            "atexit.register(lambda: sys.stderr.write('\\nLOADED ' + ' '.join(sorted({" + name + " "
            "for m in sys.modules})) + '\\n'))\n"
            "from complaintflow.web.cli import main\n"
            f"sys.argv = ['complaintflow'] + {list(args)!r}\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.rsplit("LOADED ", 1)[1].split())


@pytest.fixture
def env(tmp_path, chain_key_env, mini_dir):
    env = dict(os.environ, COMPLAINTFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}",
               COMPLAINTFLOW_HANDLERS="support_handlers", **chain_key_env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(__file__), env.get("PYTHONPATH")]))
    return env


def test_help_loads_no_database_or_engine_library(env):
    assert not loaded_after(["--help"], env) & set(HEAVY)


def test_a_read_command_on_a_current_database_loads_no_migration_form_or_output_library(env, mini_dir):
    subprocess.run([sys.executable, "-m", "complaintflow.web.cli", "deploy", str(mini_dir)], env=env, check=True,
                   capture_output=True)
    start = subprocess.run([sys.executable, "-m", "complaintflow.web.cli", "--now", "2026-05-06T09:00", "start",
                            "mini", "--json", "--data", '{"subject": "x", "due_at": "2026-05-08T17:00:00+08:00"}'],
                           env=env, check=True, capture_output=True, text=True)
    number = json.loads(start.stdout)["case_number"]
    shown = subprocess.run([sys.executable, "-m", "complaintflow.web.cli", "show", number], env=env,
                           check=True, capture_output=True, text=True).stdout
    assert f"case {number}" in shown and "Review" in shown        # it did read the case and its task
    # the engine only for the messages it waits for (the case waits at the review's timer)
    assert not loaded_after(["show", number], env) & (set(HEAVY) - {"SpiffWorkflow", "lxml"})
    # and of the engine only what restores the case: no BPMN or DMN parser (engine/serializer.py)
    loaded = loaded_after(["show", number], env, modules=True)
    assert "complaintflow.engine.serializer" in loaded and "SpiffWorkflow.bpmn.workflow" in loaded
    assert not {m for m in loaded if ".parser" in m and m.startswith("SpiffWorkflow")}
    assert "complaintflow.engine.spec" not in loaded
    listed = subprocess.run([sys.executable, "-m", "complaintflow.web.cli", "tasks", "--role", "reception"], env=env,
                            check=True, capture_output=True, text=True).stdout
    assert number in listed                    # it did read the database, without the ORM or the engine
    assert not loaded_after(["tasks", "--role", "reception"], env) & set(HEAVY)


def test_tasks_read_from_sqlite_lists_what_the_service_lists(mini, clock, db_url):
    """Several cases, both roles, priorities and due times: the same tasks, in the same order,
    with the same fields, whether read with sqlite3 or through the service."""
    ids = []
    for due in ("2026-05-09T17:00:00+08:00", "2026-05-07T12:00:00+08:00", "2026-05-08T09:00:00+08:00"):
        ids.append(mini.start("mini", {"subject": "x", "due_at": due}, "li").instance_id)
        clock.advance(minutes=10)
    clock.advance(days=1, hours=4)           # 2026-05-07 13:30
    mini.tick()                               # the second case's review is overdue: a manager's task
    with mini.sessions() as s:                # a P1 case (the inbox puts it first), the case's priority kept on its tasks
        s.execute(update(HumanTask).where(HumanTask.instance_id == ids[2]).values(priority=1))
        s.commit()
    reads = Ctx(db_url, None).reads()
    assert isinstance(reads, SqliteReads)     # the command would read the file itself
    for kwargs in ({}, {"role": "reception"}, {"role": "manager"}, {"instance_id": ids[1]}, {"role": "nobody"}):
        assert reads.list_tasks(**kwargs) == mini.list_tasks(**kwargs), kwargs
    listed = reads.list_tasks()
    assert [t["instance_id"] for t in listed[:1]] == [ids[2]] and len(listed) == 4
    assert [t["role"] for t in listed].count("manager") == 1


def test_tasks_on_a_new_database_goes_through_the_service_which_creates_it(tmp_path, chain_key_env, monkeypatch):
    for name, value in chain_key_env.items():
        monkeypatch.setenv(name, value)
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    assert Ctx(url, None).reads().__class__.__name__ == "ComplaintService"
    result = CliRunner().invoke(cli, ["--db", url, "tasks"])
    assert result.exit_code == 0 and "(no open tasks)" in result.output, result.output
    assert isinstance(Ctx(url, None).reads(), SqliteReads)      # now current: read directly


def test_every_command_is_listed_with_its_own_help_and_runs():
    listed = CliRunner().invoke(cli, ["--help"]).output
    for name in _Group.lazy:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and command.name == name
        assert click.Command(name, help=cli.lazy_help(name)).get_short_help_str(10_000) == command.get_short_help_str(10_000)
        line = next(line for line in listed.splitlines() if line.split()[:1] == [name])
        assert line.split(None, 1)[1].rstrip(".").rstrip() in command.get_short_help_str(10_000)
    for name in ("test", "whatif", "diff", "calendar", "stats", "export"):
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0, name


class _ShowCompared(ScenarioRun):
    """A scenario run that, after every step, shows its case both ways (by instance id and by
    case number) and keeps what it saw."""

    def __init__(self, runner, scenario, db_file, seen):
        super().__init__(runner, scenario, db_file)
        self.reads, self.seen = SqliteReads(db_file, self.clock), seen

    def check(self, step, sent, fired):
        super().check(step, sent, fired)
        case, awaited = self.service.show(self.instance_id), self.service.awaited_messages(self.instance_id)
        assert self.reads.show(self.instance_id) == case, (self.scenario.name, step.label)
        assert self.reads.show(case["case_number"]) == case, (self.scenario.name, step.label)
        assert self.reads.awaited_messages(case["case_number"]) == awaited, (self.scenario.name, step.label)
        self.seen.append((self.scenario.process_id, case, awaited))


def test_show_read_from_sqlite_shows_what_the_service_shows_for_every_shipped_procedure():
    """Each shipped procedure's longest scenario, its case shown after every step (open, waiting
    for messages, with limits open, met and breached, closed):
    the same case and the same awaited messages whether read with sqlite3 or the service."""
    seen = []
    with Runner(ROOT / "processes") as runner:
        scenarios, errors = runner.load(scenario_files([ROOT / "processes" / "tests"]))
        assert not errors
        longest = {}
        for s in scenarios:
            if len(s.steps) > len(longest.get(s.process_id, s).steps) or s.process_id not in longest:
                longest[s.process_id] = s
        for n, scenario in enumerate(longest.values()):
            db_file = Path(runner._tmp.name) / f"show-{n}.sqlite3"
            shutil.copyfile(runner.template, db_file)
            outcome = _ShowCompared(runner, scenario, db_file, seen).run()
            assert outcome.passed, outcome.message
    assert {p for p, _, _ in seen} == set(runner.models) and len(runner.models) >= 17
    assert any(awaited for _, _, awaited in seen)                          # cases waiting for messages
    assert any(c["status"] == "completed" for _, c, _ in seen)            # closed cases
    assert {d["status"] for _, c, _ in seen for d in c["deadlines"]} >= {"open", "met", "breached"}
    assert any(c["completed_tasks"] for _, c, _ in seen)


def test_waiting_is_the_engine_s_waiting_state():
    assert sqlite_reads.WAITING == TaskState.WAITING


def _cli(args, db_url, service_only=False):
    with pytest.MonkeyPatch.context() as patch:     # undone on leaving, and nothing else with it
        if service_only:
            patch.setattr(SqliteReads, "open", classmethod(lambda cls, url, clock=None: None))
        result = CliRunner().invoke(cli, ["--db", db_url, "--now", "2026-05-09T10:00", *args])
    return result.exit_code, result.output


def test_show_prints_the_same_text_and_json_either_way_and_the_same_error(mini, db_url, clock, monkeypatch,
                                                                          chain_key_env):
    for name, value in chain_key_env.items():   # the service's path needs the chain key (no var/ in a fresh clone)
        monkeypatch.setenv(name, value)
    case = mini.start("mini", {"subject": "x", "due_at": "2026-05-07T12:00:00+08:00"}, "li")
    clock.advance(days=2)
    mini.tick()                                 # the review is overdue: a manager's task
    assert isinstance(Ctx(db_url, None).reads(), SqliteReads)
    for args in (["show", case.case_number], ["show", case.instance_id, "--json"], ["show", "KH-0000"],
                 ["show", "nope", "--json"]):
        direct = _cli(args, db_url)
        assert direct == _cli(args, db_url, service_only=True), args
    code, text = _cli(["show", case.case_number], db_url)
    assert code == 0 and "Supervise  [manager]" in text
    code, text = _cli(["show", "nope"], db_url)
    assert code != 0 and "there is no case 'nope' (give an instance id or a case number)" in text


def test_restoring_a_version_s_specs_leaves_the_stored_dict_as_it_was_unless_given_up(mini, db_url):
    """The service restores specs from a dict it keeps (the version's row); `SqliteReads`
    gives up one it parsed for the call, which saves copying it: both restore the same specs."""
    from complaintflow.engine.serializer import Serializer
    with sqlite3.connect(db_url[len("sqlite:///"):]) as conn:
        text, = conn.execute("SELECT specs FROM process_versions").fetchone()
    kept, serializer = json.loads(text), Serializer()
    spec, subs = serializer.specs_from_dict(kept)
    assert kept == json.loads(text)                      # unchanged: the next restore reads it whole
    given = json.loads(text)
    owned_spec, owned_subs = serializer.specs_from_dict(given, owned=True)
    assert given != json.loads(text)                     # it was read in place (so not copied)
    assert serializer.specs_to_dict(owned_spec, owned_subs) == serializer.specs_to_dict(spec, subs)
    assert set(spec.task_specs) == set(owned_spec.task_specs) and "review" in spec.task_specs
