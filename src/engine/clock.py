"""Clocks, and the hooks that make SpiffWorkflow use ours.

SpiffWorkflow reads the wall clock directly (`datetime.now` in its timer module,
`time.time` for `Task.last_state_change`) and draws task ids from `uuid4`. Two things
need those to be controlled:

* a user (and every test) can act at a chosen moment (`--now`), so timers fire then;
* replaying an instance from its event log must rebuild byte-identical engine state,
  which needs the same task ids and state-change times as the original run.

SpiffWorkflow offers no injection point for either, so we replace the module-level
names it looks up with shims that consult a context variable. Outside an
`engine_context` the shims behave exactly like the originals.
"""

from __future__ import annotations

import time as _time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator, Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc


class Clock(Protocol):
    def now(self) -> datetime:  # timezone-aware
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to; used by `--now` and by tests."""

    def __init__(self, at: datetime):
        self._at = ensure_aware(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = ensure_aware(at)

    def advance(self, **kwargs) -> datetime:
        self._at = self._at + timedelta(**kwargs)
        return self._at


def ensure_aware(at: datetime) -> datetime:
    """Naive datetimes are taken as Asia/Shanghai wall time (the users' time zone)."""
    if at.tzinfo is None:
        return at.replace(tzinfo=SHANGHAI)
    return at


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 date or datetime; a bare date means 00:00 Asia/Shanghai."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ValueError(f"'{text}' is not an ISO 8601 date or date-time (e.g. 2026-05-06T09:30:00+08:00)")
    return ensure_aware(value)


def iso(at: datetime | None) -> str | None:
    """ISO 8601 in UTC: the one form machine-readable output uses."""
    return None if at is None else ensure_aware(at).astimezone(UTC).isoformat()


def local_iso(at: datetime | None) -> str | None:
    """ISO 8601 in Asia/Shanghai, for people."""
    return None if at is None else ensure_aware(at).astimezone(SHANGHAI).isoformat(timespec="seconds")


def local_day(at: datetime):
    """The day in Beijing on which a moment falls."""
    return ensure_aware(at).astimezone(SHANGHAI).date()


def local_minute(at: datetime | None) -> str | None:
    """A moment as people read it in messages: Beijing time, to the minute."""
    return None if at is None else ensure_aware(at).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


# --- SpiffWorkflow hooks -----------------------------------------------------

@dataclass
class _EngineMoment:
    now: datetime
    next_id: Callable[[], uuid.UUID]


_moment: ContextVar[_EngineMoment | None] = ContextVar("complaintflow_engine_moment", default=None)


class _SpiffDatetime(datetime):
    """`datetime` whose `now()` answers the current engine moment when there is one."""

    @classmethod
    def now(cls, tz=None):  # noqa: D401 - same signature as datetime.now
        moment = _moment.get()
        if moment is None:
            return datetime.now(tz)
        return moment.now.astimezone(tz) if tz is not None else moment.now.replace(tzinfo=None)


class _SpiffTime:
    """Stands in for the `time` module inside SpiffWorkflow.task."""

    def __getattr__(self, name):
        return getattr(_time, name)

    @staticmethod
    def time() -> float:
        moment = _moment.get()
        return _time.time() if moment is None else moment.now.timestamp()


def _spiff_uuid4() -> uuid.UUID:
    moment = _moment.get()
    return uuid.uuid4() if moment is None else moment.next_id()


_hooks: list = []           # the hooked modules, once installed


def _install_hooks() -> None:
    """Put the shims in SpiffWorkflow's modules (again is harmless). Done when an engine
    context is first entered, not at import: a command that only reads rows (`tasks`)
    then loads no SpiffWorkflow (docs/performance.md). Outside a context the shims behave
    like the originals, so installing them later changes nothing before."""
    from SpiffWorkflow import task as spiff_task
    from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer

    spiff_timer.datetime = _SpiffDatetime
    spiff_task.time = _SpiffTime()
    spiff_task.uuid4 = _spiff_uuid4
    _hooks[:] = [spiff_timer, spiff_task]


ID_NAMESPACE = uuid.UUID("5b0e2a59-6c3e-4d61-9a43-0c6f1c1f7a10")


class IdSequence:
    """Deterministic task ids for one instance: uuid5(instance id, counter)."""

    def __init__(self, instance_id: str, start: int = 0):
        self.instance_id = instance_id
        self.counter = start

    def __call__(self) -> uuid.UUID:
        self.counter += 1
        return uuid.uuid5(ID_NAMESPACE, f"{self.instance_id}:{self.counter}")


@contextmanager
def engine_context(now: datetime, ids: IdSequence) -> Iterator[None]:
    """Run SpiffWorkflow code as of `now`, drawing task ids from `ids`."""
    if not _hooks:
        _install_hooks()
    token = _moment.set(_EngineMoment(ensure_aware(now).astimezone(UTC), ids))
    try:
        yield
    finally:
        _moment.reset(token)
