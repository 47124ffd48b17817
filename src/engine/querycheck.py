"""The query side checked against the event log (`replay --verify`).

The rows lists and pages read — `human_tasks`, `deadlines` and the case's summary columns on
`instances` — are written by the live run beside the log, not from it. A database writer can
change them without touching the log (who completed a task, whether a limit was met, the
case's status). `Expectations` follows the replay step by step and works out, from the
events and the rebuilt engine state, what each row must say and which event says so;
`compare` names every row and field that says otherwise.

What the log does not record is not checked: claims, due times of task rows (they follow
the deadlines, which are checked), categories of task rows, the times a handler read from
the clock itself (a deadline's completed_at, breached_at when noticed by deadline.stop,
paused_at), incidents' attempt counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from . import runtime
from .clock import ensure_aware, iso, parse_instant
from .deadlines import PAUSED
from .models import Deadline, HumanTask

# Of the handlers shipped with complaintflow, case_number.assign, case.close and
# case.set_state set case-summary fields (`services.case.set_summary`), and their recorded
# outputs say to what. A handler from elsewhere may set them without the log showing it.
SHIPPED_PREFIX = "complaintflow.handlers."
UNKNOWN = object()          # a stored value the log does not give (a paused limit's due moment)


@dataclass
class Fact:
    """What a field must hold, and the event that says so."""

    value: object
    event: int


@dataclass
class Difference:
    table: str
    row: object
    field: str | None
    stored: object
    expected: object
    event: int | None
    reason: str

    def as_dict(self) -> dict:
        return {"event": self.event, "reason": self.reason, "table": self.table, "row": self.row,
                "field": self.field, "stored": _plain(self.stored), "log": _plain(self.expected)}


@dataclass
class Expectations:
    """The query side as the log says it must be, built up one replayed step at a time."""

    pv: object                                  # the VersionInfo the case runs on
    handlers: object = None                     # the service's HandlerRegistry
    tasks: dict[str, dict[str, Fact]] = field(default_factory=dict)
    deadlines: dict[str, dict[str, Fact]] = field(default_factory=dict)
    case: dict[str, Fact] = field(default_factory=dict)
    custom_handlers: set[str] = field(default_factory=set)
    steps: int = 0

    def after_step(self, wf, group) -> None:
        """Apply one replayed step (its events, the engine state it produced), in the order
        the live run wrote the rows (service._finish, _tick_one, _recompute_one)."""
        driver = group[0]
        at, seq = driver.at, driver.seq
        payload = driver.payload or {}
        self.steps += 1
        if driver.kind == "started":
            data = payload.get("data") or {}
            category = data.get("category")
            self.case.update(process_id=Fact(payload.get("process_id"), seq), version=Fact(payload.get("version"), seq),
                             received_at=Fact(at, seq), started_by=Fact(driver.actor, seq),
                             category=Fact(None if category is None else str(category)[:100], seq),
                             case_number=Fact(None, seq), legal_state=Fact(None, seq), closed_at=Fact(None, seq))
        if driver.kind == "task_completed":
            task = self.tasks.get(driver.task_id)
            if task is not None and task["status"].value == "open":
                task.update(status=Fact("completed", seq), completed_at=Fact(at, seq),
                            completed_by=Fact(driver.actor, seq))
        if driver.kind == "deadlines_recomputed":      # the rows were recomputed before the step ran
            self._deadline_values(payload.get("deadlines") or {}, seq)
            for name, change in (payload.get("changes") or {}).items():
                if name in self.deadlines and change.get("to"):
                    self.deadlines[name]["due_at"] = Fact(_instant(change["to"]), seq)
        breaches = []
        for ev in group:
            if ev.kind == "handler_called":
                self._handler(ev)
            elif ev.kind == "timer_fired":
                name = (ev.payload or {}).get("deadline")
                if name and not name.endswith(".remind"):
                    breaches.append((name, ev.seq))
        for name, ev_seq in breaches:                  # the tick records breaches after the step ran
            row = self.deadlines.get(name)
            if row is not None and row["status"].value == "open":
                row["status"] = Fact("breached", ev_seq)
        # the case row (service._finish)
        if wf.is_completed():
            self.case["status"] = Fact("completed", seq)
            if self.case.get("closed_at") is None or self.case["closed_at"].value is None:
                self.case["closed_at"] = Fact(at, seq)
        else:
            self.case["status"] = Fact("incident" if runtime.error_tasks(wf) else "running", seq)
        self.case["next_due_at"] = Fact(runtime.next_due(wf), seq)
        self._human_tasks(wf, at, seq)

    def _handler(self, ev) -> None:
        rec = ev.payload or {}
        name = rec.get("handler")
        if "error" in rec:
            return
        info = self.handlers.get(name) if self.handlers is not None and name else None
        module = getattr(getattr(info, "func", None), "__module__", "") or ""
        if not module.startswith(SHIPPED_PREFIX):
            self.custom_handlers.add(name or "?")
        out = rec.get("outputs")
        updates = rec.get("updates") or {}
        if name == "case_number.assign":
            self.case["case_number"] = Fact(out, ev.seq)
        elif name == "case.close" and isinstance(out, dict):
            self.case["closed_at"] = Fact(_instant(out.get("closed_at")), ev.seq)
        elif name == "case.set_state" and isinstance(out, dict):
            self.case["legal_state"] = Fact(out.get("legal_state"), ev.seq)
        elif name == "deadline.start" and isinstance(out, dict) and out.get("name"):
            self.deadlines[out["name"]] = {"status": Fact("open", ev.seq), "due_at": Fact(_instant(out.get("due")), ev.seq),
                                           "started": Fact(True, ev.seq)}
        elif name == "deadline.stop" and isinstance(out, dict) and out.get("name") in self.deadlines:
            self.deadlines[out["name"]]["status"] = Fact(out.get("status"), ev.seq)
        elif name == "deadline.pause" and isinstance(out, dict):
            for n in out.get("paused") or []:
                if n in self.deadlines:
                    self.deadlines[n]["status"] = Fact("paused", ev.seq)
        elif name == "deadline.resume" and isinstance(out, dict):
            for n in out.get("resumed") or []:
                if n in self.deadlines:
                    self.deadlines[n]["status"] = Fact("open", ev.seq)
        if "deadlines" in updates and isinstance(updates["deadlines"], dict):
            self._deadline_values(updates["deadlines"], ev.seq)

    def _deadline_values(self, variable: dict, seq: int) -> None:
        """The `deadlines` variable holds each limit's stored due moment, or PAUSED while it is
        paused (the stored due moment is then not in the log until it resumes)."""
        for name, value in variable.items():
            row = self.deadlines.get(name)
            if row is None:
                continue
            row["due_at"] = Fact(UNKNOWN if value == PAUSED else _instant(value), seq)

    def _human_tasks(self, wf, at, seq) -> None:
        """service._sync_tasks: open rows no longer ready are cancelled; new ready user tasks
        get a row."""
        ready = {str(t.id): t for t in runtime.ready_user_tasks(wf)}
        for tid, row in self.tasks.items():
            if row["status"].value == "open" and tid not in ready:
                row.update(status=Fact("cancelled", seq), completed_at=Fact(at, seq))
        for tid, task in ready.items():
            if tid in self.tasks:
                continue
            meta = self.pv.meta["tasks"].get(task.task_spec.name, {})
            self.tasks[tid] = {"task_spec": Fact(task.task_spec.name, seq), "status": Fact("open", seq),
                               "role": Fact(meta.get("role") or task.task_spec.lane, seq),
                               "created_at": Fact(at, seq), "completed_at": Fact(None, seq),
                               "completed_by": Fact(None, seq)}


def compare(session, inst, events, exp: Expectations) -> tuple[list[Difference], list[str]]:
    """Every difference between the stored query side and `exp`, and notes on what was not checked."""
    diffs: list[Difference] = []
    notes: list[str] = []
    last = events[-1] if events else None

    # the case row
    number = exp.case.get("case_number")
    case_row = f"instances row {inst.id}" + (f" (case {number.value})" if number is not None and number.value else "")
    fields = ["status", "process_id", "version", "received_at", "started_by", "next_due_at"]
    if exp.custom_handlers:
        notes.append("case_number, legal_state, category and closed_at were not checked against the log: it records "
                     f"handler(s) not shipped with complaintflow ({', '.join(sorted(exp.custom_handlers))}), "
                     "which may set them")
    else:
        fields += ["case_number", "legal_state", "category", "closed_at"]
    for name in fields:
        fact = exp.case.get(name)
        if fact is not None:
            _field(diffs, "instances", inst.id, case_row, name, getattr(inst, name), fact)
    if exp.case.get("version") and (exp.pv.process_id, exp.pv.version) != (exp.case["process_id"].value,
                                                                           exp.case["version"].value):
        diffs.append(Difference("instances", inst.id, "version_id", f"{exp.pv.process_id} v{exp.pv.version}",
                                None, exp.case["version"].event, f"{case_row}: version_id refers to "
                                f"{exp.pv.process_id} version {exp.pv.version} but the log says "
                                f"{exp.case['process_id'].value} version {exp.case['version'].value} "
                                f"(event {exp.case['version'].event})"))
    if inst.step_count != exp.steps:
        diffs.append(Difference("instances", inst.id, "step_count", inst.step_count, exp.steps,
                                last.seq if last else None,
                                f"{case_row}: step_count is {inst.step_count} but the log "
                                f"holds {exp.steps} step(s)"))
    if last is not None and inst.last_event_hash != last.hash:
        diffs.append(Difference("instances", inst.id, "last_event_hash", inst.last_event_hash, last.hash,
                                last.seq, f"{case_row}: last_event_hash is not the hash of "
                                f"the log's last event (event {last.seq})"))

    # human tasks
    rows = {r.id: r for r in session.execute(select(HumanTask).where(HumanTask.instance_id == inst.id)).scalars()}
    for tid, facts in exp.tasks.items():
        row = rows.pop(tid, None)
        spec = facts["task_spec"].value
        if row is None:
            diffs.append(Difference("human_tasks", tid, None, None, spec, facts["task_spec"].event,
                                    f"the log has task '{spec}' ({tid}, from event {facts['task_spec'].event}) but "
                                    "there is no human_tasks row for it"))
            continue
        for name in ("task_spec", "status", "completed_by", "completed_at", "created_at", "role"):
            _field(diffs, "human_tasks", tid, f"human_tasks row {tid} (task '{spec}')", name, getattr(row, name),
                   facts[name])
    for tid, row in rows.items():
        diffs.append(Difference("human_tasks", tid, None, row.task_spec, None, None,
                                f"human_tasks row {tid} (task '{row.task_spec}') is not in the log: the case never "
                                "had such a task"))

    # deadlines
    rows = {r.name: r for r in session.execute(select(Deadline).where(Deadline.instance_id == inst.id)).scalars()}
    for name, facts in exp.deadlines.items():
        row = rows.pop(name, None)
        if row is None:
            diffs.append(Difference("deadlines", name, None, None, name, facts["started"].event,
                                    f"the log starts deadline '{name}' (event {facts['started'].event}) but there is "
                                    "no deadlines row for it"))
            continue
        for fname in ("status", "due_at"):
            if facts[fname].value is not UNKNOWN:
                _field(diffs, "deadlines", row.id, f"deadlines row {row.id} ('{name}')", fname, getattr(row, fname),
                       facts[fname])
    for name, row in rows.items():
        diffs.append(Difference("deadlines", row.id, None, name, None, None,
                                f"deadlines row {row.id} ('{name}') is not in the log: no event starts it"))
    return diffs, notes


def _field(diffs, table, row_id, label, name, stored, fact: Fact) -> None:
    if _same(stored, fact.value):
        return
    diffs.append(Difference(table, row_id, name, stored, fact.value, fact.event,
                            f"{label}: {name} is {_show(stored)} but the log says {_show(fact.value)} "
                            f"(event {fact.event})"))


def _same(a, b) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return ensure_aware(a) == ensure_aware(b)
    return a == b


def _instant(value):
    if value is None or isinstance(value, datetime):
        return value
    try:
        return parse_instant(str(value))
    except ValueError:
        return value


def _show(value) -> str:
    if value is None:
        return "empty"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def _plain(value):
    if isinstance(value, datetime):
        return iso(value)
    if value is UNKNOWN:
        return None
    return value
