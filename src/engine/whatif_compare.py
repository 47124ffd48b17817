"""How the what-if (engine/whatif.py) compares a recorded case with the candidate's run of
it: a step as comparable items and in words, each limit as the old run has it and as the
candidate has it, and the `CaseReport` they go into.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import Deadline
from .views import deadline_dict


@dataclass
class CaseReport:
    instance_id: str
    case_number: str | None
    version: int
    received: str
    status: str
    events: int
    replayed_events: int = 0
    divergence: dict | None = None
    does_not_fit: dict | None = None
    deadlines: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def path(self) -> str:
        if self.error:
            return "failed"
        if self.divergence:
            return "diverges"
        return "does_not_fit" if self.does_not_fit else "same"

    def as_dict(self) -> dict:
        return {"instance_id": self.instance_id, "case_number": self.case_number, "version": self.version,
                "received": self.received, "status": self.status, "events": self.events,
                "replayed_events": self.replayed_events, "path": self.path, "divergence": self.divergence,
                "does_not_fit": self.does_not_fit, "deadlines": self.deadlines,
                "moved": any(d["moved"] for d in self.deadlines),
                "would_breach": any(d["would_breach"] for d in self.deadlines),
                "notes": self.notes, "error": self.error}


def quote_task(task, name) -> str:
    return f"'{task}'" + (f" ({name})" if name and name != task else "")


def _signature(events) -> list[tuple]:
    """What a step did, as comparable items: its driver, the service tasks it ran, incidents."""
    items = []
    for e in events:
        p = e.payload or {}
        if e.kind == "started":
            items.append(("started",))
        elif e.kind == "task_completed":
            items.append(("task", p.get("task")))
        elif e.kind == "timer_fired":
            items.append(("timer", p.get("task")))
        elif e.kind == "message_received":
            items.append(("message", p.get("message")))
        elif e.kind == "handler_called":
            items.append(("handler", p.get("task"), p.get("handler")))
        elif e.kind == "incident":
            items.append(("incident", p.get("task")))
    return items


def same_step(old_events, new_events) -> bool:
    old, new = _signature(old_events), _signature(new_events)
    failed = {i[1] for i in old if i[0] == "incident"}
    if failed:         # an outside failure in the old run: compare up to it
        old = [i for i in old if i[0] != "incident"]
        new = [i for i in new if not (i[0] == "incident" and i[1] in failed)][:len(old)]
    return old == new


def describe_step(events) -> str:
    """One step in words: its driver, then the service tasks it ran and what failed."""
    if not events:
        return "nothing"
    parts, effects = [], []
    for e in events:
        p = e.payload or {}
        if e.kind == "started":
            parts.append(f"registered by {e.actor}")
        elif e.kind == "task_completed":
            parts.append(f"task {quote_task(p.get('task'), p.get('name'))} completed by {e.actor}")
        elif e.kind == "timer_fired":
            breach = (f" — limit '{p['deadline']}' breached"
                      if p.get("deadline") and not p["deadline"].endswith(".remind") else "")
            (parts if e is events[0] else effects).append(f"timer {quote_task(p.get('task'), p.get('name'))} fired{breach}")
        elif e.kind == "message_received":
            parts.append(f"message '{p.get('message')}' received")
        elif e.kind == "retry":
            parts.append(f"failed steps retried by {e.actor}")
        elif e.kind == "handler_called":
            failed = " (failed)" if "error" in p else ""
            effects.append(f"'{p.get('task')}' ({p.get('handler')}){failed}")
        elif e.kind == "incident" and p.get("handler") is None:
            effects.append(f"'{p.get('task')}' failed: {p.get('message')}")
    return "; ".join(parts) + (" → " + ", ".join(effects) if effects else "")


def _deadline_view(row: Deadline | None, now) -> dict | None:
    if row is None:
        return None
    d = deadline_dict(row, now)          # an open limit past due counts as breached
    return {k: d[k] for k in ("unit", "amount", "extended_by", "due", "last_day", "status", "breached_at")}


def compare_deadlines(old_rows, new_rows, now, new_now=None) -> list[dict]:
    """Each limit as the old run has it now and as the candidate has it (at `new_now`)."""
    old = {r.name: r for r in old_rows}
    new = {r.name: r for r in new_rows}
    out = []
    for name in list(old) + [n for n in new if n not in old]:
        o, n = _deadline_view(old.get(name), now), _deadline_view(new.get(name), new_now or now)
        out.append({"name": name, "old": o, "new": n,
                    "moved": bool(o and n and o["due"] != n["due"]),
                    "would_breach": bool(n and n["status"] == "breached" and (o is None or o["status"] != "breached")),
                    "no_longer_breached": bool(o and o["status"] == "breached" and n and n["status"] != "breached")})
    return out
