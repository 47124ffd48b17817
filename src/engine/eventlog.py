"""The per-instance event log: append-only, strictly ordered, hash-chained.

Each event's `hash` covers its content and the previous event's hash, so an edited,
removed or reordered event is found by `verify_chain` at its position. The first event of
each step (the *driver*: started, task_completed, timer_fired, message_received, retry)
carries `state_after`, the hash of the engine state that action produced; replay compares
its own state against it step by step.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from .clock import UTC, ensure_aware, iso
from .models import Event
from .spec import canonical_json

GENESIS = "0" * 64
DRIVERS = {"started", "task_completed", "timer_fired", "message_received", "retry", "deadlines_recomputed"}


def event_digest(prev_hash: str, seq: int, step: int, kind: str, at: datetime, actor, task_id, payload,
                 state_after) -> str:
    body = canonical_json({"seq": seq, "step": step, "kind": kind, "at": ensure_aware(at).astimezone(UTC).isoformat(), "actor": actor,
                           "task_id": task_id, "payload": payload, "state_after": state_after})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


class EventWriter:
    def __init__(self, session, instance, prev_hash: str):
        self.session = session
        self.instance = instance
        self.prev = prev_hash

    @classmethod
    def for_instance(cls, session, instance):
        return cls(session, instance, instance.last_event_hash or GENESIS)

    def append(self, *, step, kind, at, actor=None, task_id=None, payload=None, state_after=None) -> Event:
        seq = self.instance.last_event_seq + 1
        payload = payload or {}
        digest = event_digest(self.prev, seq, step, kind, at, actor, task_id, payload, state_after)
        ev = Event(instance_id=self.instance.id, seq=seq, step=step, kind=kind, at=at, actor=actor,
                   task_id=task_id, payload=payload, state_after=state_after, prev_hash=self.prev, hash=digest)
        self.session.add(ev)
        self.instance.last_event_seq = seq
        self.instance.last_event_hash = digest
        self.prev = digest
        return ev


def verify_chain(events: list[Event]) -> tuple[int, str] | None:
    """Return (position, reason) of the first broken link, or None if the chain holds."""
    prev = GENESIS
    for expected_seq, ev in enumerate(events, start=1):
        if ev.seq != expected_seq:
            return expected_seq, f"event {expected_seq} is missing (the next stored event is {ev.seq})"
        if ev.prev_hash != prev:
            return ev.seq, f"event {ev.seq} does not follow event {ev.seq - 1} (its link to the previous event is wrong)"
        digest = event_digest(prev, ev.seq, ev.step, ev.kind, ev.at, ev.actor, ev.task_id, ev.payload, ev.state_after)
        if digest != ev.hash:
            return ev.seq, f"event {ev.seq} ({ev.kind}) was changed after it was written (its hash does not match)"
        prev = ev.hash
    return None


def event_dict(ev: Event) -> dict:
    return {"seq": ev.seq, "step": ev.step, "kind": ev.kind, "at": iso(ev.at), "actor": ev.actor,
            "task_id": ev.task_id, "payload": ev.payload, "state_after": ev.state_after}
