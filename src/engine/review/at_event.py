"""A case as it was after event N, rebuilt from its log (docs/review.md).

case_at(service, instance_id, until: int) -> dict
    {"instance_id", "case_number", "until": N, "events": total, "step_end": the last event of
     N's step, "at": ISO UTC of event N, "at_local", "kind": event N's kind,
     "completed": bool,
     "open_tasks": [{"task", "name", "role", "due"}],
     "waiting_timers": [{"task", "name", "due", "deadline"}],
     "deadlines": [{"name", "rule", "seed", "unit", "amount", "start", "due", "last_day",
                    "provisional", "status" (open | paused | met | breached, as at event N),
                    "paused_since", "extended", "breached_at", "completed"}],
     "data": the case data, "path": {"done", "current", "flows"} (as inbox.case_detail's),
     "problem": None, or why the log could not be replayed as far as N,
     "chain_problem": None, or the first broken link of the log's chain (an edited event
                      can still replay: this is what warns)}
With may_see_identity=False the identity fields of the data (and their values wherever they
appear in it) are masked as （保密）, as in the readable history.

The events of one action (one step) happen at the same moment and the engine state exists
only between steps: the state shown is the one after the whole step event N belongs to.
The engine state comes from `service.replay(id, until=N)`; the deadlines as they stood then
are followed from the events themselves (deadline handlers' records, fired timers,
recomputations), since the deadline rows keep only their latest state.
"""

from __future__ import annotations

from sqlalchemy import select

from .. import runtime
from ..clock import iso, parse_instant
from ..deadlines import PAUSED
from ..errors import InvalidInput
from ..eventlog import event_dict
from ..inbox import _path
from ..models import Event, ProcessVersion
from ..confidentiality import identity_fields, identity_values, redact
from .history import MASK, local_text


def case_at(service, instance_id: str, until: int, *, may_see_identity: bool = True) -> dict:
    with service.sessions() as s:
        inst = service._find_case(s, instance_id)
        total = inst.last_event_seq
        case_id, case_number, version_id = inst.id, inst.case_number, inst.version_id
        try:
            n = int(until)
        except (TypeError, ValueError):
            raise InvalidInput(f"the event number must be a whole number, not '{until}'") from None
        if not 1 <= n <= total:
            raise InvalidInput(f"case {case_number or case_id} has events 1 to {total}; there is no event {until}")
        events = [event_dict(e) for e in s.execute(select(Event).where(Event.instance_id == case_id)
                                                   .order_by(Event.seq)).scalars()]
        xml = s.execute(select(ProcessVersion.bpmn_xml).where(ProcessVersion.id == version_id)).scalar_one()
        pv = service.version_info(s, version_id)
    if n > len(events):
        raise InvalidInput(f"case {case_number or case_id}: the log holds {len(events)} events, not {n}")
    report = service.replay(case_id, until=n)
    wf = report.workflow
    event = events[n - 1]
    step_end = max(e["seq"] for e in events if e["step"] == event["step"])
    at = parse_instant(event["at"])
    out = {"instance_id": case_id, "case_number": case_number, "until": n, "events": total,
           "step_end": step_end, "at": event["at"], "at_local": local_text(at), "kind": event["kind"],
           "completed": False, "open_tasks": [], "waiting_timers": [], "data": {},
           "path": {"done": [], "current": [], "flows": []},
           "deadlines": deadlines_at(events[:step_end], at), "problem": None, "chain_problem": None}
    if report.consistent is False and report.first_difference and report.replayed_until >= step_end:
        out["chain_problem"] = report.first_difference.get("reason")
    if wf is None or report.replayed_until < step_end:
        reason = (report.first_difference or {}).get("reason") or "the log could not be replayed"
        out["problem"] = f"replayed {report.replayed_until} of {step_end} events: {reason}"
        if wf is None:
            return out
    tasks_meta = pv.meta.get("tasks") or {}
    for t in runtime.ready_user_tasks(wf):
        meta = tasks_meta.get(t.task_spec.name, {})
        out["open_tasks"].append({"task_id": str(t.id), "task": t.task_spec.name,
                                  "name": meta.get("name") or t.task_spec.bpmn_name or t.task_spec.name,
                                  "role": meta.get("role") or getattr(t.task_spec, "lane", None),
                                  "due": iso(runtime.evaluate_due(wf, t, meta.get("due")))})
    for t, due in runtime.waiting_timers(wf):
        element = runtime.timer_element(t)
        names = [runtime.deadline_name(d.expression) for d in runtime._timer_definitions(t.task_spec.event_definition)]
        out["waiting_timers"].append({"task": element.name, "name": element.bpmn_name or element.name,
                                      "due": iso(due), "deadline": next((x for x in names if x), None)})
    out["completed"] = bool(report.state.get("completed"))
    data = report.state.get("data") or {}
    if not may_see_identity:
        secret = identity_fields(pv.forms)
        data = redact(data, secret, MASK, identity_values(data, secret))
    out["data"] = data
    out["path"] = _path(wf, xml)
    return out


def deadlines_at(events: list[dict], now) -> list[dict]:
    """The case's deadlines as the given events leave them, with their status at `now`."""
    book: dict[str, dict] = {}
    for e in events:
        p = e["payload"] or {}
        at = e["at"]
        if e["kind"] == "handler_called" and "error" not in p:
            handler, out, inputs = p.get("handler"), p.get("outputs"), p.get("inputs") or {}
            if handler == "deadline.start" and isinstance(out, dict):
                book[out["name"]] = {"name": out["name"], "rule": inputs.get("rule"), "seed": inputs.get("seed"),
                                     "unit": out.get("unit"), "amount": out.get("amount"),
                                     "start": _utc(out.get("start")), "due": _utc(out.get("due")),
                                     "last_day": out.get("last_day"), "provisional": bool(out.get("provisional")),
                                     "status": "open", "paused_since": None, "extended": 0,
                                     "breached_at": None, "completed": None}
            elif handler == "deadline.stop" and isinstance(out, dict) and out.get("name") in book:
                row = book[out["name"]]
                if row["status"] in ("open", "paused"):
                    row["status"] = out.get("status") or row["status"]
                    if row["status"] == "breached" and not row["breached_at"]:
                        row["breached_at"] = at
                row["completed"] = row["completed"] or at
            elif handler == "deadline.pause" and isinstance(out, dict):
                for name in out.get("paused") or []:
                    if name in book:
                        book[name].update(status="paused", paused_since=at)
            elif handler == "deadline.resume" and isinstance(out, dict):
                for name in out.get("resumed") or []:
                    if name in book:
                        book[name].update(status="open", paused_since=None)
            elif handler == "deadline.extend" and isinstance(out, dict) and out.get("granted"):
                row = book.get(out.get("name"))
                if row is not None:
                    row["extended"] += int(inputs.get("amount") or 0)
                    row["last_day"] = out.get("last_day")
            _follow_variable(book, (p.get("updates") or {}).get("deadlines"))
        elif e["kind"] == "timer_fired":
            name = p.get("deadline")
            if name and not name.endswith(".remind") and name in book and book[name]["status"] == "open":
                book[name].update(status="breached", breached_at=at)
        elif e["kind"] == "deadlines_recomputed":
            for name, change in (p.get("changes") or {}).items():
                if name in book:
                    book[name]["due"] = _utc(change.get("to"))
                    book[name]["provisional"] = bool(change.get("provisional"))
            _follow_variable(book, p.get("deadlines"))
    for row in book.values():     # an open limit whose due moment has passed is breached by then
        if row["status"] == "open" and row["due"] and parse_instant(row["due"]) <= now:
            row["status"] = "breached"
    return list(book.values())


def _follow_variable(book, variable):
    """The `deadlines` variable a handler left: each open limit's due moment as it now stands."""
    for name, due in (variable or {}).items():
        row = book.get(name)
        if row is not None and due and due != PAUSED and row["status"] == "open":
            row["due"] = _utc(due)


def _utc(text):
    return iso(parse_instant(str(text))) if text else None
