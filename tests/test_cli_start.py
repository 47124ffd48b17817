"""The command starts fast because it loads only what the command run needs: `--help`
loads no database or engine library, a read command on a current database neither Alembic
nor the form, calendar or JSON-output libraries; commands defined in other modules are
registered by name and still listed with their own help (docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from complaintflow.web.cli import _Group, cli

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
    for args in (["tasks", "--role", "reception"], ["show", number]):
        loaded = loaded_after(args, env)
        assert "sqlalchemy" in loaded              # it did read the database
        assert not loaded & {"alembic", "jsonschema", "marshmallow", "holidays", "flask"}, args


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
