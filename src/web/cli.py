"""The `complaintflow` command. Every command goes through the service layer.

Global options: `--db URL` (or COMPLAINTFLOW_DATABASE_URL) and `--now ISO` (or
COMPLAINTFLOW_NOW) to act at a chosen moment. Read commands take `--json`; the keys are
documented in docs/cli.md.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
from pathlib import Path

import click

from ..engine.errors import ComplaintflowError, InvalidInput, NotAllowed, ValidationFailed


# A command imports only what it uses: `--help` loads click and this file, a read command the
# read side of the service (docs/performance.md, "How fast the command starts"). The helpers
# below are imported on their first call.
def _lazy(module: str, name: str):
    def call(*args, **kwargs):
        return getattr(importlib.import_module(module, __package__), name)(*args, **kwargs)
    call.__name__ = call.__qualname__ = name
    return call


FixedClock, local_iso, parse_instant = (_lazy("..engine.clock", n) for n in ("FixedClock", "local_iso", "parse_instant"))
ComplaintService = _lazy("..engine.service", "ComplaintService")
_t, emit, report_cases, system_work_exit = (_lazy(".cli_common", n) for n in
                                            ("_t", "emit", "report_cases", "system_work_exit"))
print_readable, roles_file, user_names, verify_all_cases = (_lazy(".cli_review", n) for n in
                                                            ("print_readable", "roles_file", "user_names",
                                                             "verify_all_cases"))
dump = _lazy(".schemas", "dump")


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
                                             org=_lazy(".cli_org", "checked_org"))
        return self._service


def _now_option(value):
    if not value:
        return None
    try:
        return parse_instant(value)
    except ValueError as err:
        raise click.BadParameter(str(err))


def read_data(text: str | None) -> dict:
    """Parse --data: inline JSON, or @path to a JSON file."""
    if text is None:
        return {}
    source = "--data"
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise InvalidInput(f"--data file '{path}' does not exist")
        source, text = str(path), path.read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{source} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})")
    if not isinstance(value, dict):
        raise InvalidInput(f"{source} must be a JSON object, e.g. {{\"field\": \"value\"}}")
    return value




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
@click.argument("process_id")
@click.option("--data", help="Intake data: JSON, or @file.json")
@click.option("--user", default="cli", show_default=True, help="Who registers the case.")
@click.option("--version", type=int, help="Process version (default: latest).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def start(obj, process_id, data, user, version, as_json):
    """Start a case; prints its id and case number."""
    result = obj.service.start(process_id, read_data(data), user, version=version)
    emit(result.__dict__, as_json, lambda r: (
        click.echo(f"started {r['instance_id']} case number {r['case_number'] or '-'} ({r['status']})"),
        _print_tasks(r["open_tasks"]), _print_incidents(r["incidents"])))


@cli.command()
@click.option("--role")
@click.option("--instance", "instance_id")
@click.option("--user", help="Only what this user of the users file may do: their roles' tasks for no one "
                             "person, and the tasks assigned to them.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def tasks(obj, role, instance_id, user, as_json):
    """Open human tasks, soonest due first."""
    if user:
        rows = obj.service.list_tasks(role=role, instance_id=instance_id, user=user,
                                      roles=_roles_of(user, "leave out --user to list every task"))
    else:
        rows = obj.reads().list_tasks(role=role, instance_id=instance_id)
    emit(dump("task", rows, many=True) if as_json else rows, as_json, _print_tasks)


@cli.command()
@click.option("--process", "process_id")
@click.option("--status", type=click.Choice(["running", "incident", "completed"]))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def cases(obj, process_id, status, as_json):
    """Case summaries, newest first."""
    rows = obj.service.list_cases(process_id=process_id, status=status)
    emit(rows, as_json, lambda rows: [click.echo(
        f"{r['instance_id']}  {r['case_number'] or '-':16} {r['process_id']} v{r['version']}  {r['status']:9} "
        f"received {local_iso(parse_instant(r['received']))}") for r in rows])


@cli.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(obj, ref, as_json):
    """One case: summary, open tasks, messages it waits for, incidents (REF: instance id or case number)."""
    reads = obj.reads()
    case = reads.show(ref)
    case["awaited_messages"] = reads.awaited_messages(ref)

    def text(c):
        click.echo(f"case {c['case_number'] or '-'}  ({c['instance_id']})")
        click.echo(f"  process   {c['process_id']} version {c['version']}")
        click.echo(f"  status    {c['status']}")
        click.echo(f"  category  {c['category'] or '-'}")
        click.echo(f"  received  {_t(c['received'])}")
        click.echo(f"  closed    {_t(c['closed'])}")
        click.echo(f"  next timer {_t(c['next_due'])}")
        click.echo("open tasks:")
        _print_tasks(c["open_tasks"], indent="  ")
        if c["awaited_messages"]:
            click.echo("awaited messages (complaintflow message REF NAME --data ...):")
            for m in c["awaited_messages"]:
                form = f"  form {m['form']}" if m["form"] else ""
                click.echo(f"  {m['message']:16} {m['name']} ({m['element']})  roles {', '.join(m['roles'])}{form}")
        if c.get("legal_state"):
            click.echo(f"  legal state {c['legal_state']}")
        if c["incidents"]:
            click.echo("incidents:")
            _print_incidents(c["incidents"], indent="  ")
        if c.get("deadlines"):
            click.echo("deadlines:")
            for d in c["deadlines"]:
                paused = ""
                if d["paused_days"] or d["paused_seconds"]:
                    paused = f", paused {d['paused_days']} day(s)" if d["paused_days"] else f", paused {d['paused_seconds']} s"
                if d["paused_since"]:
                    paused += f", paused since {_t(d['paused_since'])}"
                ext = f", extended by {d['extended_by']}" if d["extended_by"] else ""
                ext += f", round {d['round']}" if d.get("round", 1) > 1 else ""
                prov = "  PROVISIONAL (calendar not yet published)" if d["provisional"] else ""
                size = "a fixed moment" if d["unit"] == "at" else f"{d['amount']} {d['unit']}"
                click.echo(f"  {d['name']:12} {d['status']:9} due {_t(d['due'])}"
                           f"{' (last day ' + d['last_day'] + ')' if d['last_day'] else ''}"
                           f"  [{size}{ext}{paused}]{prov}")
                if d["rule"] or d["seed"]:
                    click.echo(f"               {d['rule'] or ''}  ({d['seed'] or '-'})")
    emit(dump("case", case) if as_json else case, as_json, text)


@cli.command()
@click.argument("task_id")
@click.option("--user", required=True, help="Who completes the task.")
@click.option("--data", help="Form data: JSON, or @file.json")
@click.option("--if-version", "expected_version", type=int,
              help="Refuse if the case changed since this row_version (see show --json).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def complete(obj, task_id, user, data, expected_version, as_json):
    """Complete a human task with its form data."""
    result = obj.service.complete_task(task_id, user, read_data(data), expected_version=expected_version)
    emit(result.__dict__, as_json, lambda r: (
        click.echo(f"completed; case {r['case_number'] or r['instance_id']} is {r['status']}"),
        _print_tasks(r["open_tasks"]), _print_incidents(r["incidents"])))


@cli.command()
@click.argument("ref")
@click.option("--user", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def retry(obj, ref, user, as_json):
    """Retry the failed steps (incidents) of a case."""
    instance_id = obj.service.resolve_case(ref)
    result = obj.service.retry(instance_id, user)
    emit(result.__dict__, as_json, lambda r: (
        click.echo(f"retried; case {r['case_number'] or r['instance_id']} is {r['status']}"),
        _print_tasks(r["open_tasks"]), _print_incidents(r["incidents"])))


@cli.command()
@click.argument("ref")
@click.argument("name")
@click.option("--data", help="Message payload (the event's form): JSON, or @file.json")
@click.option("--user", help="Who records it: a user of the users file, whose roles must allow it "
                             "(without --user: recorded as 'cli', an operator's action, no role check).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def message(obj, ref, name, data, user, as_json):
    """Deliver a BPMN message to a waiting case (see `show` for the messages it waits for)."""
    instance_id = obj.service.resolve_case(ref)
    roles = _roles_of(user, "leave out --user to record the message as an operator") if user else None
    result = obj.service.send_message(instance_id, name, read_data(data), user or "cli", roles=roles)
    emit(result.__dict__, as_json, lambda r: click.echo(f"delivered; case is {r['status']}"))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.pass_obj
def tick(obj, as_json, quiet):
    """Fire every timer that is due now (only due cases are loaded)."""
    def progress(n, total):
        if not quiet and not as_json and total >= 20 and (n % 50 == 0 or n == total):
            click.echo(f"  {n}/{total} cases", err=True)
    result = obj.service.tick(progress=progress)
    emit(result, as_json, lambda r: (
        click.echo(f"{_t(r['now'])}: {r['timers_fired']} timer(s) fired in {r['instances']} case(s)"),
        report_cases(r, "the next tick takes it")))
    system_work_exit(click.get_current_context(), result)



@cli.command()
@click.argument("ref")
@click.option("--readable", is_flag=True, help="Each event as a sentence in Chinese, with the forms' titles and labels.")
@click.option("--masked", is_flag=True, help="With --readable: hide the complainant's identity (（保密）).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def history(obj, ref, readable, masked, as_json):
    """The case's event log: who did what, when, with what data."""
    if readable:
        from ..engine.review.history import readable_history
        rows = readable_history(obj.service, ref, may_see_identity=not masked, names=user_names(),
                                roles=roles_file())
        emit(rows, as_json, print_readable)
        return
    rows = obj.service.history(ref)

    def text(rows):
        for e in rows:
            click.echo(f"{e['seq']:>4}  {_t(e['at'])}  {e['kind']:17} {e['actor'] or '':10} {_describe(e)}")
    emit(dump("event", rows, many=True) if as_json else rows, as_json, text)


@cli.command()
@click.argument("ref", required=False)
@click.option("--verify", is_flag=True, help="Compare the rebuilt state and the query side with the stored ones.")
@click.option("--until", type=int, help="Show the case as it was after event N.")
@click.option("--require-key", is_flag=True,
              help="With --verify: fail if any event is only unkeyed-hashed with no keyed event after it "
                   "(for databases whose every case was written since keyed chaining).")
@click.option("--all", "all_cases", is_flag=True, help="With --verify: check every case (or those selected).")
@click.option("--process", "process_id", help="With --all: only cases of this procedure.")
@click.option("--since", help="With --all: only cases received on or after this day (YYYY-MM-DD, Beijing time).")
@click.option("--user", default="cli", show_default=True, help="Who ran the check (kept with each result).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def replay(obj, ref, verify, until, require_key, all_cases, process_id, since, user, as_json):
    """Rebuild a case from its event log alone (or, with --verify --all, check many)."""
    if all_cases:
        if ref or until is not None:
            raise InvalidInput("--all checks many cases: give no REF and no --until")
        if not verify:
            raise InvalidInput("--all needs --verify (replay --verify --all)")
        verify_all_cases(obj.service, process_id, since, user, as_json)
        return
    if process_id or since:
        raise InvalidInput("--process and --since select cases for --verify --all")
    if not ref:
        raise InvalidInput("give a case (REF: instance id or case number), or --verify --all")
    report = obj.service.replay(ref, until=until)
    if verify and until is None:
        from ..engine.review.verify import record_verification
        record_verification(obj.service, report, actor=user)     # kept for the reviewer's badge
    unprotected = (report.chain or {}).get("unprotected_events", 0)

    def text(r):
        click.echo(f"replayed {r['replayed_until']} of {r['events']} event(s)")
        st = r.get("state") or {}
        if st:
            click.echo(f"  completed: {st['completed']}")
            for t in st["open_tasks"]:
                click.echo(f"  open task: {t['name']} [{t['role']}] {t['task_id']}")
            for t in st["waiting_timers"]:
                click.echo(f"  waiting timer: {t['task']} due {_t(t['due'])}")
            for t in st["errored_tasks"]:
                click.echo(f"  failed task: {t}")
        chain = r.get("chain") or {}
        if r.get("chain_summary"):
            click.echo(f"chain: {r['chain_summary']}")
        if chain.get("head", {}).get("seq"):
            click.echo(f"  head: event {chain['head']['seq']}, hash {chain['head']['hash']}")
        if chain.get("unprotected_events"):
            click.echo("  UNKEYED: these events are only as safe as the database itself")
        for note in r.get("notes") or []:
            click.echo(f"  not checked: {note}")
        if r["consistent"] is True:
            click.echo("consistent: the state rebuilt from the log equals the stored state, "
                       "and the task, deadline and case rows agree with the log")
        elif r["consistent"] is False:
            d = r["first_difference"]
            where = f" at event {d['event']}" if d.get("event") is not None else ""
            click.echo(f"INCONSISTENT{where}: {d.get('reason')}")
            if d.get("path"):
                click.echo(f"  path {d['path']}: rebuilt {d['rebuilt']} / stored {d['stored']}")
            for other in (r.get("differences") or [])[1:]:
                click.echo(f"  also: {other['reason']}")
        if verify and require_key and unprotected and r["consistent"] is not False:
            click.echo(f"REFUSED (--require-key): {unprotected} event(s) are not protected by the chain key")
    emit(report.as_dict(), as_json, text)
    if verify and until is None and (report.consistent is not True or (require_key and unprotected)):
        sys.exit(7)


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




def _roles_of(user: str, hint: str) -> set[str]:
    """The roles of a user of the users file (COMPLAINTFLOW_USERS_FILE, else the demo users)."""
    from .users import load_users
    known = load_users(os.environ.get("COMPLAINTFLOW_USERS_FILE") or None).get(user)
    if known is None:
        raise NotAllowed(f"user '{user}' is not in the users file (COMPLAINTFLOW_USERS_FILE); {hint}")
    return set(known.roles)


def _print_tasks(rows, indent=""):
    if not rows:
        click.echo(f"{indent}(no open tasks)")
    for t in rows:
        case = t.get("case_number") or ""
        mark = f"P{t['priority']}  " if t.get("priority") in (1, 2) else ""     # urgent / priority cases first
        person = f"  for {t['assignee']}" if t.get("assignee") else ""      # a task for one person (org.py)
        click.echo(f"{indent}{t['task_id']}  {mark}{t['name']}  [{t['role']}]{person}  {case}  due {_t(t['due'])}")


def _print_incidents(rows, indent=""):
    for i in rows:
        if not i.get("resolved"):
            click.echo(f"{indent}INCIDENT in task {i['task']} (handler {i['handler'] or '-'}): {i['message']} "
                       f"— fix the cause, then `complaintflow retry`")


def _describe(e) -> str:
    p = e["payload"]
    k = e["kind"]
    if k == "started":
        return f"process {p.get('process_id')} v{p.get('version')} data={json.dumps(p.get('data'), ensure_ascii=False)}"
    if k == "task_completed":
        return f"{p.get('name')} [{p.get('role')}] data={json.dumps(p.get('data'), ensure_ascii=False)}"
    if k == "handler_called":
        result = f"error={p['error']}" if "error" in p else f"outputs={json.dumps(p.get('outputs'), ensure_ascii=False)}"
        return f"{p.get('handler')} ({p.get('task')}) inputs={json.dumps(p.get('inputs'), ensure_ascii=False)} {result}"
    if k == "timer_fired":
        return f"{p.get('name') or p.get('task')} due {_t(p.get('due'))}"
    if k == "incident":
        return f"{p.get('task')}: {p.get('message')}"
    return json.dumps(p, ensure_ascii=False)


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
