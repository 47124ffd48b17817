"""The command starts fast because it loads only what the command run needs: `--help`
loads no database or engine library, a read command on a current database neither Alembic
nor the form, calendar or JSON-output libraries, and `tasks` on a SQLite store neither
SQLAlchemy nor SpiffWorkflow (it reads the rows with sqlite3: engine/sqlite_reads.py, which
lists what the service lists); commands defined in other modules are registered by name and
still listed with their own help (docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import update

from complaintflow.engine.models import HumanTask
from complaintflow.engine.sqlite_reads import SqliteReads
from complaintflow.web.cli import Ctx, _Group, cli

HEAVY = ("sqlalchemy", "SpiffWorkflow", "alembic", "marshmallow", "jsonschema", "holidays", "lxml", "flask")


def loaded_after(args, env) -> set[str]:
    """The top-level packages loaded by the time `complaintflow ARGS` has finished."""
    code = ("import sys, atexit\n"
            "atexit.register(lambda: sys.stderr.write('\\nLOADED ' + ' '.join(sorted({m.split('.')[0] "
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
    loaded = loaded_after(["show", number], env)
    assert "sqlalchemy" in loaded              # it did read the database
    assert not loaded & {"alembic", "jsonschema", "marshmallow", "holidays", "flask"}
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
