"""`complaintflow history` and `replay`: a case's event log, line by line (or, with
`--readable`, as sentences), and the case rebuilt from it (`--verify`: checked against what
is stored, one case or many). Registered in cli.py."""

from __future__ import annotations

import json
import sys

import click

from ..engine.errors import InvalidInput
from .cli_lazy import lazy

_t, emit = (lazy(".cli_common", n) for n in ("_t", "emit"))
print_readable, roles_file, user_names, verify_all_cases = (lazy(".cli_review", n) for n in
                                                            ("print_readable", "roles_file", "user_names",
                                                             "verify_all_cases"))
dump = lazy(".schemas", "dump")


@click.command()
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


@click.command()
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
