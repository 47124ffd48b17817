"""Rebuild a case from its event log alone, against its stored process version.

First the chain is checked (eventlog.check_chain, with the service's chain key). Handlers
are not called: their recorded outputs (or recorded failures) are fed back in order. After
every step the rebuilt engine state is hashed and compared with the hash the live run
recorded on that step's first event; at the end it is compared with the stored state, and
the first differing path is reported. Then the query side (task rows, deadlines, the case's
summary columns) is compared with what the log says (querycheck.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import groupby
from uuid import UUID

from sqlalchemy import select
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from . import runtime
from .clock import IdSequence, engine_context, iso
from .compaction import UnreadableState, events_used, state_text, unpack_view
from .eventlog import DRIVERS, check_chain
from .expressions import ComplaintScriptEngine
from .models import ClosedCase, Event, InstanceState
from .querycheck import Expectations, compare


@dataclass
class ReplayReport:
    instance_id: str
    events: int
    replayed_until: int
    consistent: bool | None = None
    first_difference: dict | None = None
    state: dict = field(default_factory=dict)
    chain: dict = field(default_factory=dict)          # eventlog.ChainCheck.as_dict()
    chain_summary: str = ""                             # ChainCheck.describe()
    differences: list[dict] = field(default_factory=list)   # every query-side difference
    notes: list[str] = field(default_factory=list)          # what could not be checked, and why
    # the rebuilt workflow itself (review/at_event.py draws its path); not part of as_dict
    workflow: object = field(default=None, repr=False, compare=False)

    def as_dict(self):
        return {"instance_id": self.instance_id, "events": self.events, "replayed_until": self.replayed_until,
                "consistent": self.consistent, "first_difference": self.first_difference, "state": self.state,
                "chain": self.chain, "chain_summary": self.chain_summary, "differences": self.differences,
                "notes": self.notes}


def first_difference(a, b, path="$"):
    """Return (path, left, right) of the first place two JSON values differ, or None."""
    if type(a) is not type(b):
        return path, a, b
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}.{key}", a.get(key, "<missing>"), b.get(key, "<missing>")
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{path}.length", len(a), len(b)
        return None
    return None if a == b else (path, a, b)


def _summarise(wf, pv) -> dict:
    tasks = []
    for t in runtime.ready_user_tasks(wf):
        meta = pv.meta["tasks"].get(t.task_spec.name, {})
        tasks.append({"task_id": str(t.id), "task": t.task_spec.name, "name": meta.get("name"), "role": meta.get("role")})
    return {
        "completed": wf.is_completed(),
        "open_tasks": tasks,
        "waiting_timers": [{"task": runtime.timer_element(t).name, "due": iso(d)} for t, d in runtime.waiting_timers(wf)],
        "errored_tasks": [t.task_spec.name for t in runtime.error_tasks(wf)],
        "data": latest_data(wf),
    }


def latest_data(wf) -> dict:
    """The case data as it stands: each task's own changes (its data against its parent's),
    applied in the order the tasks changed state. A watch branch that ends late carries the
    data of when it split off, but changes nothing, so it cannot bring old values back."""
    tasks = [t for t in wf.get_tasks(state=TaskState.FINISHED_MASK | TaskState.READY | TaskState.WAITING)]
    tasks.sort(key=lambda t: t.last_state_change)
    data = {}
    for t in tasks:
        parent = t.parent.data if t.parent is not None else {}
        for key, value in t.data.items():
            if key not in parent or parent[key] != value or key not in data:
                data[key] = value
    return json.loads(json.dumps(data, default=str))


def replay_instance(service, session, inst, *, until: int | None = None) -> ReplayReport:
    events = list(session.execute(select(Event).where(Event.instance_id == inst.id).order_by(Event.seq)).scalars())
    report = ReplayReport(inst.id, len(events), 0)

    chain = check_chain(events, getattr(service, "chain_key", None))
    report.chain, report.chain_summary = chain.as_dict(), chain.describe()
    if chain.broken is not None:
        report.consistent = False
        report.first_difference = {"event": chain.broken[0], "reason": chain.broken[1]}
        if chain.wrong_key:
            report.first_difference["key"] = "not verifiable with this key"
        if until is None:
            return report

    pv = service.version_info(session, inst.version_id)
    expected = Expectations(pv, getattr(service, "handlers", None))
    spec, subs = pv.specs
    ids = IdSequence(inst.id)
    wf = text = None
    for step, group in groupby(events, key=lambda e: e.step):
        group = list(group)
        driver = group[0]
        if until is not None and driver.seq > until:
            break
        if driver.kind not in DRIVERS:
            return _fail(report, driver.seq, f"event {driver.seq} ({driver.kind}) cannot start a step")
        records = [(e.seq, e.payload) for e in group if e.kind == "handler_called"]
        dispatcher = runtime.ReplayDispatcher(records)
        steplog = runtime.StepLog()
        if text is not None:
            # every live action starts from the state text the one before stored, so replay does
            # too: the same text restored gives the same task data, in the same key order, and
            # so the same stored text (and `state_after`) after the step
            wf = service.serializer.state_from_dict(json.loads(text), spec, subs)
        try:
            with engine_context(driver.at, ids):
                if driver.kind == "started":
                    if wf is not None:
                        return _fail(report, driver.seq, f"event {driver.seq}: a second 'started' event")
                    wf = BpmnWorkflow(spec, subs)
                    wf.script_engine = ComplaintScriptEngine(dispatcher)
                    runtime.begin(wf, driver.payload.get("data") or {})
                elif wf is None:
                    return _fail(report, driver.seq, f"event {driver.seq}: the log does not begin with 'started'")
                else:
                    wf.script_engine = ComplaintScriptEngine(dispatcher)
                    if driver.kind == "task_completed":
                        task = wf.get_task_from_id(UUID(driver.task_id)) if driver.task_id else None
                        if task is None or not task.has_state(TaskState.READY):
                            return _fail(report, driver.seq, f"event {driver.seq}: task {driver.task_id} "
                                                             "is not waiting for input at this point of the replay")
                        runtime.complete_user_task(wf, driver.task_id, driver.payload.get("data") or {})
                    elif driver.kind == "timer_fired":
                        runtime.fire_due_timers(wf, driver.at)
                    elif driver.kind == "retry":
                        runtime.retry_errors(wf)
                    elif driver.kind == "deadlines_recomputed":
                        runtime.set_deadlines(wf, driver.payload.get("deadlines") or {})
                    elif driver.kind == "message_received":
                        runtime.deliver_message(wf, driver.payload["message"], driver.payload.get("payload") or {})
                runtime.advance(wf, steplog)
        except runtime.ReplayDivergence as err:
            return _fail(report, driver.seq, str(err))
        except Exception as err:  # the log drove the engine somewhere it cannot go
            return _fail(report, driver.seq, f"event {driver.seq} ({driver.kind}) could not be replayed: {err}")
        if dispatcher.records:
            seq = dispatcher.records[0][0]
            return _fail(report, seq, f"event {seq}: the log records a handler call the process did not make")
        state = service.serializer.state_to_dict(wf)
        text = runtime.state_text(state)
        report.replayed_until = group[-1].seq
        if driver.state_after and not runtime.matches_state_after(driver.state_after, text, state):
            return _fail(report, driver.seq, f"after event {driver.seq} ({driver.kind}) the rebuilt state differs "
                                             "from the state recorded by the live run")
        if until is None:
            expected.after_step(wf, group)
    if wf is not None:
        report.state = _summarise(wf, pv)
    report.workflow = wf
    if until is not None:
        return report
    if report.consistent is False:
        return report
    kept = session.get(ClosedCase, inst.id)
    try:        # a closed case keeps its state's hash and view (compaction.py), older ones the state
        if kept is not None:
            stored = unpack_view(kept.view, [e.payload for e in events[:events_used(kept.view)]])
        else:
            stored = json.loads(state_text(session.get(InstanceState, inst.id)))
    except UnreadableState as err:
        return _fail(report, report.replayed_until, str(err))
    state = service.serializer.state_to_dict(wf) if wf is not None else {}
    if kept is not None:
        if wf is None or not runtime.matches_state_after(kept.state_hash, text, state):
            return _fail(report, report.replayed_until, f"the state rebuilt from {report.events} events is not "
                                                        "the state the case was closed with (its kept hash differs)")
        from .inbox import case_view          # (inbox reads latest_data from here)
        rebuilt, what = json.loads(json.dumps(case_view(wf), default=str)), "what is kept of the closed case"
    else:
        rebuilt, what = json.loads(json.dumps(state, default=str)), "the stored state"
    diff = first_difference(rebuilt, stored)
    if diff is not None:
        report.consistent = False
        report.first_difference = {"event": report.replayed_until, "path": diff[0],
                                   "rebuilt": _clip(diff[1]), "stored": _clip(diff[2]),
                                   "reason": f"the state rebuilt from {report.events} events differs from {what} at {diff[0]}"}
        return report
    if inst.last_event_seq != len(events):
        report.consistent = False
        report.first_difference = {"event": len(events) + 1,
                                   "reason": f"the case records {inst.last_event_seq} events but the log holds {len(events)}"}
        return report
    differences, report.notes = compare(session, inst, events, expected)
    if differences:
        report.consistent = False
        report.differences = [d.as_dict() for d in differences]
        report.first_difference = report.differences[0]
        return report
    report.consistent = True
    return report


def _fail(report, seq, reason):
    report.consistent = False
    report.first_difference = {"event": seq, "reason": reason}
    return report


def _clip(value, n=200):
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= n else text[:n] + "…"
