"""`complaintflow`'s case commands: register a case (`start`), list and read cases and tasks
(`tasks`, `cases`, `show`), act on a case (`complete`, `retry`, `message`) and fire the
timers that are due (`tick`), with the text output of tasks and incidents they share.
Registered in cli.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..engine.errors import InvalidInput, NotAllowed
from .cli_lazy import lazy

local_iso, parse_instant = (lazy("..engine.clock", n) for n in ("local_iso", "parse_instant"))
_t, emit, report_cases, system_work_exit = (lazy(".cli_common", n) for n in
                                            ("_t", "emit", "report_cases", "system_work_exit"))
dump = lazy(".schemas", "dump")


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


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
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
