"""Rows as the plain dicts that every face shows (keys documented in docs/cli.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .clock import iso
from .errors import Message, NotFound, msg

if TYPE_CHECKING:            # rows of these (or any object with their attributes, engine/sqlite_reads.py)
    from .models import Deadline, HumanTask, Incident, Instance


def task_dict(t: HumanTask) -> dict:
    return {"task_id": t.id, "instance_id": t.instance_id, "process_id": t.process_id, "task": t.task_spec,
            "name": t.name, "role": t.role, "form": t.form, "status": t.status, "created": iso(t.created_at),
            "due": iso(t.due_at), "completed": iso(t.completed_at), "completed_by": t.completed_by,
            "claimed_by": t.claimed_by, "priority": t.priority,
            "assignee": t.assignee}


def incident_dict(r: Incident) -> dict:
    return {"id": r.id, "task_id": r.task_id, "task": r.task_spec, "handler": r.handler, "message": r.message,
            "attempts": r.attempts, "created": iso(r.created_at), "resolved": iso(r.resolved_at)}


def case_dict(i: Instance) -> dict:
    return {"instance_id": i.id, "process_id": i.process_id, "version": i.version, "status": i.status,
            "case_number": i.case_number, "category": i.category, "received": iso(i.received_at),
            "closed": iso(i.closed_at), "next_due": iso(i.next_due_at), "started_by": i.started_by,
            "legal_state": i.legal_state,
            "events": i.last_event_seq, "row_version": i.row_version}


def deadline_dict(row: Deadline, now: datetime | None = None) -> dict:
    status = row.status
    overdue = status == "open" and now is not None and now >= row.due_at
    return {"name": row.name, "rule": row.rule, "seed": row.seed, "unit": row.unit, "amount": row.amount,
            "start": iso(row.start_at), "due": iso(row.due_at), "last_day": row.last_day,
            "provisional": row.provisional, "status": "breached" if overdue else status,
            "paused_days": row.paused_days, "paused_seconds": row.paused_seconds, "paused_since": iso(row.paused_at),
            "extended_by": row.extended_by, "breached_at": iso(row.breached_at), "completed": iso(row.completed_at),
            "round": row.round or 1}


def case_not_found(ref: str) -> NotFound:
    return NotFound(f"there is no case '{ref}' (give an instance id or a case number)")


def describe_driver(ev) -> Message:
    """What a step's first event did, in a few words (for conflict messages)."""
    payload = ev.payload or {}
    if ev.kind == "task_completed":
        return msg("did_complete", task=payload.get("name") or payload.get("task"))
    if ev.kind == "message_received":
        return msg("did_message", message=payload.get("message"))
    code = {"timer_fired": "did_timer", "started": "did_start", "retry": "did_retry",
            "deadlines_recomputed": "did_recompute"}.get(ev.kind)
    return msg(code) if code else msg("did_other", kind=ev.kind)
