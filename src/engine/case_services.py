"""Services the engine injects into handlers, backed by the action's database session."""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
    """Case numbers from a per-(process, year) counter row, inside the action's transaction."""

    def __init__(self, session: Session):
        self.session = session

    def next(self, process_id, year, prefix):
        s = self.session
        result = s.execute(update(CaseCounter)
                           .where(CaseCounter.process_id == process_id, CaseCounter.year == year)
                           .values(last_value=CaseCounter.last_value + 1)
                           .returning(CaseCounter.last_value))
        value = result.scalar_one_or_none()
        if value is None:
            try:
                with s.begin_nested():
                    s.add(CaseCounter(process_id=process_id, year=year, last_value=1))
                value = 1
            except IntegrityError:  # another transaction created the row first
                return self.next(process_id, year, prefix)
        return f"{prefix}-{year}-{value:06d}"


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
        out = []
        with self.session.begin_nested():
            for n, part in enumerate(parts, start=1):
                try:
                    result = self.service._start_in(self.session, process_id, part, actor, now, extra=extra)
                except InvalidInput as err:
                    raise InvalidInput(f"part {n} of the split: {err}", getattr(err, "field_errors", None)) from err
                out.append({"case_number": result.case_number, "instance_id": result.instance_id})
        return out
