"""The `complaintflow` command. Every command goes through the service layer.

Global options: `--db URL` (or COMPLAINTFLOW_DATABASE_URL) and `--now ISO` (or
COMPLAINTFLOW_NOW) to act at a chosen moment. Read commands take `--json`; the keys are
documented in docs/cli.md.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from pathlib import Path

import click

from ..engine.errors import ComplaintflowError, InvalidInput, ValidationFailed
from .cli_cases import cases, complete, message, retry, show, start, tasks, tick
from .cli_lazy import lazy
from .cli_log import history, replay

# The helpers are imported on their first call (cli_lazy.py).
FixedClock, local_iso, parse_instant = (lazy("..engine.clock", n) for n in ("FixedClock", "local_iso", "parse_instant"))
ComplaintService = lazy("..engine.service", "ComplaintService")
emit = lazy(".cli_common", "emit")


class Ctx:
    def __init__(self, db, now):
        self.db = db
        self.now = now
        self._service = None

    def service_calendar(self):
        """The calendar alone, without opening the database."""
        from ..engine.calendar import default_calendar
        return self._service.calendar if self._service else default_calendar()

    def reads(self):
        """What a read command reads: the SQLite store itself when it can (sqlite_reads.py: no
        SQLAlchemy, no engine), else the service."""
        if self._service is None:
            from ..engine.sqlite_reads import SqliteReads
            reads = SqliteReads.open(self.db, FixedClock(self.now) if self.now else None)
            if reads is not None:
                return reads
        return self.service

    @property
    def service(self) -> ComplaintService:
        if self._service is None:
            from ..engine.sms import notifier_from_env     # SMS when COMPLAINTFLOW_SMS_URL is set, else the log
            clock = FixedClock(self.now) if self.now else None
            # the organisation file (tasks for a person), read and checked when a task first needs it
            self._service = ComplaintService(self.db, clock=clock, notifier=notifier_from_env(),
                                             org=lazy(".cli_org", "checked_org"))
        return self._service


def _now_option(value):
    if not value:
        return None
    try:
        return parse_instant(value)
    except ValueError as err:
        raise click.BadParameter(str(err))



class _Group(click.Group):
    """Turns errors a user can cause into a message and an exit code (docs/cli.md).

    Commands defined in other modules are registered by name as "module:function" (`lazy`)
    and imported only when run; `--help` reads their one-line help from their source."""

    lazy: dict[str, str] = {}

    def list_commands(self, ctx):
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx, name):
        if name not in self.commands and name in self.lazy:
            module, attr = self.lazy[name].split(":")
            self.add_command(getattr(importlib.import_module(module, __package__), attr), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            if name in self.commands:
                if not self.commands[name].hidden:
                    rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                rows.append((name, click.Command(name, help=self.lazy_help(name)).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def lazy_help(self, name) -> str:
        """The docstring of a lazily registered command's function, read from its source."""
        module, attr = self.lazy[name].split(":")
        spec = importlib.util.find_spec(module, __package__)
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == attr:
                return ast.get_docstring(node) or ""
        return self.get_command(None, name).get_short_help_str(10_000)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ValidationFailed as err:
            for p in err.problems:
                click.echo(str(p), err=True)
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)
        except InvalidInput as err:
            click.echo(f"error: {err}", err=True)
            for field, msgs in err.field_errors.items():
                for m in msgs:
                    click.echo(f"  {field}: {m}", err=True)
            ctx.exit(err.exit_code)
        except ComplaintflowError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="COMPLAINTFLOW_DATABASE_URL", help="SQLAlchemy database URL (default: SQLite file var/complaintflow.sqlite3).")
@click.option("--now", "now", envvar="COMPLAINTFLOW_NOW", callback=lambda c, p, v: _now_option(v),
              help="Act as if it were this moment (ISO 8601; no offset means Asia/Shanghai).")
@click.pass_context
def cli(ctx, db, now):
    """complaintflow: complaint procedures as BPMN processes."""
    ctx.obj = Ctx(db, now)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def validate(obj, paths, as_json):
    """Check BPMN, DMN and form files; report every problem."""
    result = obj.service.validate(paths)
    payload = {"ok": result.ok, "files": result.files, "problems": [p.as_dict() for p in result.problems],
               "processes": [p.process_id for p in result.packages]}

    def text(_):
        for p in result.problems:       # root causes first, warnings last
            click.echo(str(p))
        warned = f", {len(result.warnings)} warning(s)" if result.warnings else ""
        if result.ok:
            click.echo(f"OK: {len(result.files)} file(s), processes: {', '.join(payload['processes'])}{warned}")
        else:
            click.echo(f"{len(result.errors)} problem(s){warned} in {len(result.files)} file(s)", err=True)
    emit(payload, as_json, text)
    if not result.ok:
        sys.exit(ValidationFailed.exit_code)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def deploy(obj, paths, as_json):
    """Validate, then deploy (default: processes/). Changed files become new versions."""
    results = obj.service.deploy(paths or ["processes"])
    payload = [r.__dict__ for r in results]

    def text(_):
        for r in results:
            state = "deployed as new version" if r.created else "unchanged, still version"
            click.echo(f"{r.process_id}: {state} {r.version} ({r.source_path})")
    emit(payload, as_json, text)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def processes(obj, as_json):
    """List deployed process versions."""
    rows = obj.service.processes()
    emit(rows, as_json, lambda rows: [click.echo(f"{r['process_id']} v{r['version']}  {r['name']}  "
                                                 f"deployed {local_iso(parse_instant(r['deployed_at']))}") for r in rows])



@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--tick-seconds", default=lambda: int(os.environ.get("COMPLAINTFLOW_TICK_SECONDS", "30")),
              show_default="30", type=int, help="How often the scheduler fires due timers.")
@click.option("--no-deploy", is_flag=True, help="Do not deploy processes/ at start.")
@click.pass_obj
def serve(obj, host, port, tick_seconds, no_deploy):
    """Run the web service with the timer scheduler (embedded default: SQLite, processes deployed)."""
    from .app import create_app
    from .scheduler import start_scheduler
    service = obj.service
    if not no_deploy and Path("processes").is_dir():
        for r in service.deploy(["processes"]):
            click.echo(f"{r.process_id}: version {r.version}{' (new)' if r.created else ''}")
    from .users import UsersFileError
    try:
        app = create_app(service)
    except UsersFileError as err:
        raise InvalidInput(str(err))
    users = app.extensions["complaintflow"].users
    if users.demo:
        click.echo(f"demo users from {users.source} (sign in with a role id, e.g. reception, password 'demo'); "
                   "set COMPLAINTFLOW_USERS_FILE for real users")
    scheduler = start_scheduler(service, tick_seconds)
    click.echo(f"ticking every {tick_seconds}s; serving on http://{host}:{port}/")
    try:
        # waitress: a production WSGI server in pure Python (Flask's own server is for development)
        from waitress import serve as wsgi_serve
        # waitress refuses a body over the request limit itself, before buffering it
        wsgi_serve(app, host=host, port=port, threads=8, ident="complaintflow",
                   max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 1)
    finally:
        scheduler.shutdown(wait=False)


# Defined apart, imported with this file: the case commands (cli_cases.py) and the event log's (cli_log.py).
for command in (start, tasks, cases, show, complete, retry, message, tick, history, replay):
    cli.add_command(command)

# Defined apart, imported when run (_Group.lazy): name -> "module:function".
_Group.lazy.update({
    "calendar": ".cli_calendar:calendar",
    "layout": ".cli_design:layout_cmd",
    "draw": ".cli_design:draw_cmd",
    "hash-password": ".cli_design:hash_password_cmd",
    "stats": ".cli_stats:stats_cmd",               # docs/statistics.md
    "export": ".cli_export:export_cmd",            # the dossier, 归档
    "org": ".cli_org:org_cmd",                     # the organisation file (tasks for a person)
    "test": ".cli_scenarios:test_cmd",             # designers' scenario files
    "whatif": ".cli_whatif:whatif_cmd",            # a candidate against past cases
    "diff": ".cli_whatif:diff_cmd",                # a candidate against deployed versions
    "token": ".cli_token:token_cmd",               # API tokens, docs/api.md
    "webhooks": ".cli_webhooks:webhooks_cmd",      # outbound webhooks, docs/api.md
    "sms": ".cli_sms:sms_cmd",                     # SMS notices, docs/notices.md
    "compact": ".cli_compact:compact_cmd",         # closed cases packed, docs/performance.md
})


def main():
    cli()


if __name__ == "__main__":
    main()
