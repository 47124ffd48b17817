"""Services the engine injects into handlers, backed by the action's database session."""

from __future__ import annotations

import logging

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .errors import InvalidInput
from .models import CaseCounter, Instance

log = logging.getLogger("complaintflow")


class LogNotifier:
    """Default notifier: writes each message to the log. Deployments plug in SMS/e-mail here."""

    def send(self, kind, to, message, case_number=None):
        record = {"kind": kind, "to": to, "message": message, "case_number": case_number, "channel": "log"}
        log.info("notify %s to %s: %s", kind, to, message)
        return record


class DbCaseNumbers:
    """Case numbers from a per-(process, year) counter row.

    Each number is taken in a short transaction of its own, committed at once, like a
    database sequence: the action that asked for it may run on (its handlers may wait on
    outside systems) without holding the counter's lock, so registrations never queue
    behind one another. The price, as with any sequence: an action that dies after taking
    a number (a crash, a lost race) leaves that number unused — a gap, never a duplicate.
    """

    def __init__(self, engine: Engine):
        self.engine = engine

    def next(self, process_id, year, prefix):
        t = CaseCounter.__table__
        for _ in range(3):
            with self.engine.begin() as conn:
                value = conn.execute(update(t).where(t.c.process_id == process_id, t.c.year == year)
                                     .values(last_value=t.c.last_value + 1)
                                     .returning(t.c.last_value)).scalar_one_or_none()
                if value is None:
                    try:
                        with conn.begin_nested():
                            conn.execute(insert(t).values(process_id=process_id, year=year, last_value=1))
                        value = 1
                    except IntegrityError:  # another transaction created the row first: count on it
                        continue
            return f"{prefix}-{year}-{value:06d}"
        raise RuntimeError(f"could not take a case number for {process_id} {year}")


class InstanceSummary:
    """Lets handlers set case-summary fields (case number, closed time, category)."""

    FIELDS = {"case_number", "closed_at", "category", "legal_state"}

    def __init__(self, instance: Instance):
        self.instance = instance

    def set_summary(self, **fields):
        for key, value in fields.items():
            if key not in self.FIELDS:
                raise ValueError(f"'{key}' is not a case summary field")
            setattr(self.instance, key, value)


class CaseStarter:
    """Lets a handler open new cases in the current action's transaction (case.split)."""

    def __init__(self, service, session, parent: Instance):
        self.service, self.session, self.parent = service, session, parent

    def start_all(self, process_id: str, parts: list[dict], extra: dict) -> list[dict]:
        """Start one case per part, all or none: a part the intake form refuses (or any other
        failure) rolls every new case of this call back and raises."""
        now = self.service.clock.now()
        actor = f"system (split of {self.parent.case_number or self.parent.id})"
        for n, part in enumerate(parts, start=1):     # every part checked before any case starts
            try:
                self.service.check_intake(self.session, process_id, part)
            except InvalidInput as err:
                raise InvalidInput(f"part {n} of the split: {err}", getattr(err, "field_errors", None)) from err
        before = set(self.session.new)
        # what the new cases leave to write after the flush: their events and task rows
        pending = {k: len(self.session.info.get(k, ())) for k in ("pending_events", "after_flush_checks")}
        out = []
        try:
            for part in parts:
                result = self.service._start_in(self.session, process_id, part, actor, now, extra=extra)
                out.append({"case_number": result.case_number, "instance_id": result.instance_id})
        except BaseException:
            # nothing was written yet (service.uow writes at the end): forget this call's new rows
            for obj in set(self.session.new) - before:
                self.session.expunge(obj)
            for key, n in pending.items():
                del self.session.info.get(key, [])[n:]
            raise
        return out
