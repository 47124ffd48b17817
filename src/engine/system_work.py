"""System work: what the service does by itself over many cases — the timer tick and the
recomputation of provisional deadlines — part of `ComplaintService`.

Several processes may do it at once (a CLI `tick` beside `serve`, several `serve`s): each
case is handled in its own transaction after the case is taken (PostgreSQL: FOR UPDATE SKIP
LOCKED; SQLite: a lease on the row), so a timer fires once; a case that fails is recorded
and the run goes on (docs/architecture.md, "One action = one transaction").
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, update

from . import runtime
from .clock import engine_context, iso
from .deadlines import DeadlineBook
from .errors import CaseBusy, Conflict, InvalidInput
from .models import Deadline, Instance

log = logging.getLogger("complaintflow")


class SystemWork:
    """Mixed into ComplaintService; uses its `uow`, `_load`, `_engine`, `_finish`, `_breach`,
    `clock`, `engine`, `calendar`, `worker_id` and `lease_seconds`."""

    def tick(self, *, limit: int | None = None, progress=None) -> dict:
        """Fire every due timer. Only instances whose earliest due time has passed are loaded;
        each is handled in its own transaction. Several ticks may run at once (several
        processes, or a CLI `tick` beside `serve`): a case another tick is handling is skipped
        and left to it, so each timer fires once; a case that fails is recorded and the run
        goes on."""
        now = self.clock.now()
        with self.sessions() as s:
            q = (select(Instance.id).where(Instance.next_due_at.is_not(None), Instance.next_due_at <= now,
                                           Instance.status != "completed").order_by(Instance.next_due_at))
            due_ids = list(s.execute(q.limit(limit) if limit else q).scalars())
        run = self._each_case(due_ids, lambda instance_id: self._tick_one(instance_id, now), progress)
        return {"now": iso(now), "instances": len(due_ids), "timers_fired": sum(run.pop("done").values()), **run}

    def _each_case(self, ids, work, progress=None) -> dict:
        """System work over many cases, one transaction each. A case that another process is
        handling, or that changed under this run, is skipped (the next run picks it up); a
        case the work may not touch (e.g. a moment before its last event) is refused; any other
        failure is recorded with its case and the run goes on."""
        out = {"done": {}, "skipped": [], "refused": [], "failed": []}
        for n, instance_id in enumerate(ids, start=1):
            try:
                out["done"][instance_id] = work(instance_id)
            except (CaseBusy, Conflict) as err:
                out["skipped"].append({"instance_id": instance_id, "reason": str(err)})
            except InvalidInput as err:
                out["refused"].append({"instance_id": instance_id, "error": str(err)})
            except Exception as err:        # one case must not stop the office's timers
                log.exception("system work failed on case %s", instance_id)
                out["failed"].append({"instance_id": instance_id, "error": f"{type(err).__name__}: {err}"})
            if progress:
                progress(n, len(ids))
        return out

    @contextmanager
    def _leased(self, instance_id):
        """A unit of work for system work on one case, which first takes the case so that two
        processes never run its handlers at once: PostgreSQL locks the row for the transaction
        (FOR UPDATE SKIP LOCKED); SQLite, which has no row locks, writes a lease on the row in a
        short transaction of its own, ended by the action's commit or run out after
        `lease_seconds` (a killed worker). Raises CaseBusy if another process holds it."""
        leased = False
        try:
            with self.uow() as s:
                if self.engine.dialect.name == "postgresql":
                    got = s.execute(select(Instance.id).where(Instance.id == instance_id)
                                    .with_for_update(skip_locked=True)).scalar_one_or_none()
                    if got is None:
                        raise CaseBusy(f"case {instance_id} is being handled by another process")
                else:
                    leased = self._take_lease(instance_id)
                    if not leased:
                        raise CaseBusy(f"case {instance_id} is being handled by another process")
                yield s
        finally:
            if leased:
                self._end_lease(instance_id)

    def _take_lease(self, instance_id) -> bool:
        t = Instance.__table__
        wall = datetime.now(timezone.utc)       # leases run on real time, never on --now
        with self.engine.begin() as conn:
            done = conn.execute(update(t).where(t.c.id == instance_id,
                                                or_(t.c.lease_until.is_(None), t.c.lease_until < wall))
                                .values(lease_owner=self.worker_id,
                                        lease_until=wall + timedelta(seconds=self.lease_seconds)))
        return done.rowcount == 1

    def _end_lease(self, instance_id) -> None:
        t = Instance.__table__
        with self.engine.begin() as conn:       # a no-op when the action's commit ended it
            conn.execute(update(t).where(t.c.id == instance_id, t.c.lease_owner == self.worker_id)
                         .values(lease_owner=None, lease_until=None))

    def _tick_one(self, instance_id, now) -> int:
        with self._leased(instance_id) as s:
            case = self._load(s, instance_id, now)
            inst = case.inst
            steplog = runtime.StepLog()
            with engine_context(now, case.ids):
                case.wf.script_engine = self._engine(s, inst, steplog)
                fired = runtime.fire_due_timers(case.wf, now)
                if not fired:
                    inst.next_due_at = runtime.next_due(case.wf)
                    inst.lease_owner, inst.lease_until = None, None
                    return 0
                runtime.advance(case.wf, steplog)
            case.timers_fired |= {t["task_id"] for t in fired}   # recorded here, as the step's driver
            self._breach(s, inst, fired, now)
            first, rest = fired[0], fired[1:]
            # further timers of the same tick come right after the driver, in firing order
            steplog.effects[0:0] = [runtime.Effect("timer_fired", extra, extra["task_id"]) for extra in rest]
            self._finish(s, case, steplog, now, "timer_fired", "system", first, first["task_id"])
            return len(fired)

    def recompute_provisional(self, *, progress=None) -> dict:
        """After the operator loaded a year's official arrangement: recompute every open or
        paused provisional deadline, re-arm its timers, and log the change in each case."""
        with self.sessions() as s:
            ids = list(s.execute(select(Deadline.instance_id).where(
                Deadline.provisional.is_(True), Deadline.status.in_(("open", "paused"))).distinct()).scalars())
        run = self._each_case(ids, self._recompute_one, progress)
        changes = [c for c in run.pop("done").values() if c]
        return {"cases_checked": len(ids), "cases_changed": len(changes), "changes": changes, **run}

    def _recompute_one(self, instance_id) -> dict | None:
        now = self.clock.now()
        with self._leased(instance_id) as s:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.status == "completed":
                return None
            book = DeadlineBook(s, inst, self.calendar_of(s, inst), self.clock)
            changed = {}
            for row in book.rows():
                if not row.provisional or row.status not in ("open", "paused"):
                    continue
                before = iso(row.due_at)
                if book.recompute(row):
                    changed[row.name] = {"from": before, "to": iso(row.due_at), "provisional": row.provisional}
            if not changed:
                return None
            case = self._load(s, instance_id, now)
            variable = book.as_variable()
            steplog = runtime.StepLog()
            with engine_context(now, case.ids):
                case.wf.script_engine = self._engine(s, inst, steplog)
                runtime.set_deadlines(case.wf, variable)
                runtime.advance(case.wf, steplog)
            self._finish(s, case, steplog, now, "deadlines_recomputed", "system",
                         {"changes": changed, "deadlines": variable}, None)
            return {"instance_id": inst.id, "case_number": inst.case_number, "changes": changed}
