"""The deadline book: the time limits of one case, kept on the query side.

Deadline handlers (handlers/deadlines.py) reach it through `ctx.services.deadlines`; the
engine's timers only see the resulting `deadlines` variable (name -> ISO due moment).
While a limit is paused its entry in `deadlines` is PAUSED, a moment no timer reaches.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from .calendar import BusinessCalendar, Due
from .clock import iso, local_day, local_iso
from .errors import InvalidInput
from .models import Deadline, Instance

PAUSED = "9999-12-31T00:00:00+08:00"
CLOCK_UNITS = ("minutes", "hours", "at")
# Legal states in which the case ends without the work its limits govern being done: a limit
# stopped in them is `stopped` (neither met nor breached), unless it had already run out.
ENDED_UNDONE = frozenset({"withdrawn", "deemed_withdrawn"})


class DeadlineBook:
    def __init__(self, session, instance: Instance, calendar: BusinessCalendar, clock):
        self.session = session
        self.instance = instance
        self.calendar = calendar
        self.clock = clock

    # --- reading -------------------------------------------------------------
    def _book(self) -> dict[str, Deadline]:
        """The case's deadline rows by name, read once per action and kept in the session.

        Nothing is written before the action's end (service.uow), so rows added in this
        action exist only here until then; every book of the same case in the same action
        shares this one dict."""
        books = self.session.info.setdefault("deadline_books", {})
        book = books.get(self.instance.id)
        if book is None:        # a case started in this action (not written yet) has none to read
            book = {} if self.instance in self.session.new else {r.name: r for r in self.session.execute(
                select(Deadline).where(Deadline.instance_id == self.instance.id).order_by(Deadline.id)).scalars()}
            books[self.instance.id] = book
        return book

    def rows(self) -> list[Deadline]:
        return list(self._book().values())

    def get(self, name: str) -> Deadline:
        row = self._book().get(name)
        if row is None:
            raise InvalidInput(f"the case has no deadline named '{name}'")
        return row

    def as_variable(self) -> dict:
        """The `deadlines` case variable: name -> due (ISO), PAUSED while paused, plus reminders."""
        out = {}
        for row in self.rows():
            paused = row.status == "paused"
            out[row.name] = PAUSED if paused else _due_text(row)
            if row.remind_workdays and row.status in ("open", "paused"):
                remind = None if paused else self.calendar.reminder(self._due(row), row.remind_workdays)
                out[f"{row.name}.remind"] = PAUSED if paused or remind is None else remind.isoformat()
        return out

    # --- changing ------------------------------------------------------------
    def start(self, name, unit, amount, start: datetime, rule=None, seed=None,
              remind_workdays=None) -> tuple[Due, Deadline, dict | None]:
        """Start limit `name`: its due moment, its row and how the previous round ended. Started
        before for the case, it is a new round (a promise renewed, 003:235): the running round
        ends first as `stop` would end it (met before its due moment, breached at or after it)."""
        due = self.calendar.deadline(start, unit, amount)
        row = self._book().get(name)
        previous = None
        if row is None:
            row = Deadline(instance_id=self.instance.id, process_id=self.instance.process_id, name=name, round=1)
            self.session.add(row)
            self._book()[name] = row
        else:
            previous = self._end_round(row)
            row.round = (row.round or 1) + 1
        row.rule, row.seed, row.unit, row.amount = rule, seed, unit, amount
        row.start_at, row.status, row.paused_at = due.start, "open", None
        row.paused_days = row.paused_seconds = row.extended_by = 0
        row.remind_workdays = remind_workdays or None
        row.breached_at = row.completed_at = None
        self._store(row, due)
        return due, row, previous

    def stop(self, name, done: bool | None = None) -> Deadline:
        """The limit's step is done: met if in time, breached if late. `done` False: the case
        ends without the step being done (a withdrawal, an outside ruling): `stopped` if in time
        — neither met nor breached — and still breached if late. `done` None: False when the
        case's legal state is one of ENDED_UNDONE (withdrawn, deemed withdrawn), else True."""
        row = self.get(name)
        now = self.clock.now()
        if done is None:
            done = self.instance.legal_state not in ENDED_UNDONE
        if row.status in ("open", "paused"):
            row.status = ("met" if done else "stopped") if now < row.due_at else "breached"
            if row.status == "breached" and row.breached_at is None:
                row.breached_at = now
                self.instance.breached = True
        row.completed_at = row.completed_at or now
        return row

    def _end_round(self, row: Deadline) -> dict:
        """End the row's running round as `stop` does; how it ended, for the event log."""
        self.stop(row.name, done=True)
        return {"round": row.round or 1, "due": iso(row.due_at), "status": row.status,
                "at": iso(row.breached_at if row.status == "breached" else row.completed_at)}

    def pause(self, names) -> list[str]:
        now = self.clock.now()
        done = []
        for row in self._select(names):
            if row.status == "open":
                row.status, row.paused_at = "paused", now
                done.append(row.name)
        return done

    def resume(self, names) -> list[str]:
        now = self.clock.now()
        done = []
        for row in self._select(names):
            if row.status != "paused":
                continue
            if row.unit in CLOCK_UNITS:
                row.paused_seconds += int((now - row.paused_at).total_seconds())
            elif row.unit == "workdays":
                row.paused_days += self.calendar.working_days_between(local_day(row.paused_at), local_day(now))
            else:
                row.paused_days += (local_day(now) - local_day(row.paused_at)).days
            row.status, row.paused_at = "open", None
            self._store(row, self._due(row))
            done.append(row.name)
        return done

    def extend(self, name, amount: int, max_total: int | None, before_due: bool) -> tuple[bool, str]:
        row = self.get(name)
        now = self.clock.now()
        if row.status == "met":
            return False, f"the limit '{name}' was already met"
        if amount is None or amount < 1:
            return False, "an extension must be at least 1"
        if before_due and now >= row.due_at:
            return False, (f"the extension was approved at {local_iso(now)}, after the limit ran out at "
                           f"{local_iso(row.due_at)}; it must be approved before")
        if row.status not in ("open", "paused"):
            return False, f"the limit '{name}' is already {row.status}"
        total = row.amount + row.extended_by + amount
        if max_total is not None and total > max_total:
            allowed = max_total - row.amount - row.extended_by
            return False, (f"the limit may be extended to at most {max_total} {row.unit} in total; "
                           f"{amount} more would make {total} (at most {max(allowed, 0)} more allowed)")
        row.extended_by += amount
        self._store(row, self._due(row))
        return True, f"extended by {amount} {row.unit} to {local_iso(row.due_at)}"

    def breach(self, name, noticed_at: datetime, fired_due: datetime | None = None) -> Deadline | None:
        """The limit's timer fired. `fired_due` is the moment the timer waited for: a limit
        restarted in the same step (a new round, due later) is not the one that ran out."""
        row = self._book().get(name)
        if row is not None and row.status == "open":
            if fired_due is not None and row.due_at is not None and row.due_at > fired_due:
                return row
            row.status, row.breached_at = "breached", noticed_at
            self.instance.breached = True
        return row

    def recompute(self, row: Deadline) -> bool:
        """Recompute with the calendar as it is now; True if the due moment or the flag changed."""
        due = self._due(row)
        changed = due.due != row.due_at or due.provisional != row.provisional
        self._store(row, due)
        return changed

    # --- helpers -------------------------------------------------------------
    def _select(self, names):
        rows = self.rows()
        if names in (None, "*", []):
            return rows
        wanted = {names} if isinstance(names, str) else set(names)
        missing = wanted - {r.name for r in rows}
        if missing:
            raise InvalidInput(f"the case has no deadline named {', '.join(sorted(missing))}")
        return [r for r in rows if r.name in wanted]

    def _due(self, row: Deadline) -> Due:
        return self.calendar.deadline(row.start_at, row.unit, row.amount + row.extended_by,
                                      extra_days=row.paused_days, extra_seconds=row.paused_seconds)

    def _store(self, row: Deadline, due: Due):
        row.due_at = due.due
        row.last_day = due.last_day.isoformat() if due.last_day else None
        row.provisional = due.provisional


def _due_text(row: Deadline) -> str:
    from .clock import SHANGHAI
    return row.due_at.astimezone(SHANGHAI).isoformat()


def rounds(limit: dict, events: list[dict]) -> dict:
    """The rounds of a limit started more than once (a promise loop), read from the event log:
    `{"round", "max_rounds", "rounds": [{"round", "start", "due", "status", "at"}]}`, oldest
    first. Each `deadline.start` record gives its round's promised moment; the next one's
    `previous` how it ended (met or breached, when); the last round's end is the limit itself.
    `limit`: the limit as `deadline_dict` gives it; `events`: the case's history."""
    starts = [e for e in events if e["kind"] == "handler_called"
              and (e["payload"] or {}).get("handler") == "deadline.start"
              and isinstance(e["payload"].get("outputs"), dict) and e["payload"]["outputs"].get("name") == limit["name"]]
    out, max_rounds = [], None
    for e in starts:
        record = e["payload"]["outputs"]
        previous = record.get("previous")
        if previous and out:
            out[-1].update(status=previous.get("status"), at=previous.get("at"))
        out.append({"round": record.get("round", len(out) + 1), "start": record.get("start"), "due": record.get("due"),
                    "status": None, "at": None})
        max_rounds = record.get("max_rounds")
    if out:
        at = limit.get("breached_at") if limit.get("status") == "breached" else limit.get("completed")
        out[-1].update(status=limit.get("status"), at=at, due=limit.get("due"))
    return {"round": limit.get("round", 1), "max_rounds": max_rounds, "rounds": out}
