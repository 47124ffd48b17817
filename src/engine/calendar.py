"""The business calendar: working days in mainland China and how time limits are counted.

Statutory holidays and make-up working days (调休) come from the `holidays` package
(`holidays.China`, with `weekend_workdays`), corrected or extended by an operator file
(`data/calendar/china.json`, or COMPLAINTFLOW_CALENDAR_FILE) without a release.

A year is *official* when its State Council arrangement is known: the package has make-up
working days for it, or the operator file marks it `"official": true`. For other years the
calendar still answers, with weekends and the statutory holidays themselves (not the
package's guessed "observed" days off), and every deadline that touches such a year is
marked provisional.

Counting rules (docs/time-limits.md):

* minutes, hours — clock time from the start;
* same_day — the end of the start's day;
* workdays — the start's day is not counted; the limit ends at the end (24:00) of the N-th
  working day after it;
* days — N calendar days after the start's day; if that day is a holiday or rest day the
  limit rolls forward to the end of the next working day (节假日顺延, 民法典 Art. 203);
  `days_strict` does not roll;
* months — the same day N months later (clamped to the month's end), rolled forward the same way.

"The end of a day" is represented as 00:00 of the next day, Asia/Shanghai: the first moment
at which the limit has passed. `last_day` gives the day itself.
"""

from __future__ import annotations

import copy
import json
import os
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path


from .clock import SHANGHAI, ensure_aware

UNITS = ("minutes", "hours", "same_day", "workdays", "days", "days_strict", "months", "at")
DEFAULT_CALENDAR_FILE = Path(__file__).resolve().parents[2] / "data" / "calendar" / "china.json"
_GUESSED = ("observed", "substituted", "Day off")


@dataclass(frozen=True)
class YearInfo:
    year: int
    official: bool
    holidays: dict            # date -> name
    workdays: frozenset       # make-up working days (weekend days declared working days)
    source: str


@dataclass(frozen=True)
class Due:
    due: datetime              # the first moment at which the limit has passed (Asia/Shanghai)
    last_day: date | None      # for day-based units, the last day of the period
    provisional: bool
    unit: str
    amount: int
    start: datetime            # the moment counting started (after reception hours)

    def as_dict(self):
        return {"due": self.due.isoformat(), "last_day": self.last_day.isoformat() if self.last_day else None,
                "provisional": self.provisional, "unit": self.unit, "amount": self.amount,
                "start": self.start.isoformat()}


@dataclass(frozen=True)
class ReceptionHours:
    """Opening hours on working days, e.g. [("08:00", "12:00"), ("14:00", "17:30")]."""

    periods: tuple = field(default_factory=tuple)

    @classmethod
    def parse(cls, text: str | None) -> "ReceptionHours | None":
        """`08:00-12:00,14:00-17:30` -> hours; empty or `always` (a 24-hour line) -> None.
        Raises CalendarError naming what is wrong."""
        if not text or text.strip() == ALWAYS_OPEN:
            return None
        periods = []
        for part in text.split(","):
            try:
                a, b = part.strip().split("-")
                period = (time.fromisoformat(a.strip()), time.fromisoformat(b.strip()))
            except ValueError:
                raise CalendarError(f"reception hours '{text}': '{part.strip()}' is not a period like 08:00-12:00 "
                                    f"(periods are separated by commas; '{ALWAYS_OPEN}' means open all the time)") from None
            if period[0] >= period[1]:
                raise CalendarError(f"reception hours '{text}': '{part.strip()}' ends before it starts")
            periods.append(period)
        periods.sort()
        for (_, end), (start, _) in zip(periods, periods[1:]):
            if start < end:
                raise CalendarError(f"reception hours '{text}': periods overlap")
        return cls(tuple(periods))


class CalendarError(ValueError):
    pass


def _is_always(setting: str | None) -> bool:
    return (setting or "").strip() == ALWAYS_OPEN


ALWAYS_OPEN = "always"     # reception hours of a procedure that receives at any time (a 24-hour line)


class BusinessCalendar:
    def __init__(self, overrides: dict | None = None, reception_hours: ReceptionHours | None = None,
                 always_open: bool = False):
        self.overrides = (overrides or {}).get("years", {})
        self.reception_hours = reception_hours
        # `always` (a 24-hour line, open on rest days and holidays too) and "no hours declared"
        # (whole working days) both leave reception_hours None: this flag tells them apart
        self.always_open = always_open
        self._years: dict[int, YearInfo] = {}

    @classmethod
    def from_file(cls, path: str | Path | None = None, reception_hours: str | None = None) -> "BusinessCalendar":
        path = Path(path or os.environ.get("COMPLAINTFLOW_CALENDAR_FILE") or DEFAULT_CALENDAR_FILE)
        data = {}
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as err:
                raise CalendarError(f"calendar file {path} is not valid JSON: {err}") from None
            check_calendar_data(data, str(path))
        hours = reception_hours if reception_hours is not None else os.environ.get("COMPLAINTFLOW_RECEPTION_HOURS")
        return cls(data, ReceptionHours.parse(hours), always_open=_is_always(hours))

    def with_hours(self, setting: str | None) -> "BusinessCalendar":
        """This calendar with a procedure's own reception hours (its BPMN's `receptionHours`).

        None: the installation's default (COMPLAINTFLOW_RECEPTION_HOURS) is kept; `always`:
        no reception hours. The copy shares the loaded years, so holidays are read once."""
        if setting is None:
            return self
        variants = self.__dict__.setdefault("_variants", {})
        cal = variants.get(setting)
        if cal is None:
            cal = copy.copy(self)
            cal.reception_hours = ReceptionHours.parse(setting)
            cal.always_open = _is_always(setting)
            variants[setting] = cal
        return cal

    # --- years -----------------------------------------------------------------
    def year(self, year: int) -> YearInfo:
        info = self._years.get(year)
        if info is None:
            info = self._years[year] = self._build_year(year)
        return info

    def _build_year(self, year: int) -> YearInfo:
        import holidays as holidays_pkg     # here, not at the top: a command that counts no days never loads it
        cn = holidays_pkg.China(years=[year])
        package_workdays = {d for d in cn.weekend_workdays if d.year == year}
        official = bool(package_workdays)
        days = {d: name for d, name in cn.items() if d.year == year}
        if not official:  # only the statutory days themselves; days off and make-up days are unknown
            days = {d: n for d, n in days.items() if not any(g in n for g in _GUESSED)}
        source = "holidays package (State Council arrangement)" if official else "provisional: weekends and statutory days only"
        override = self.overrides.get(str(year))
        if override:
            for d in override.get("not_holidays", []):
                days.pop(date.fromisoformat(d), None)
            for d, name in (override.get("holidays") or {}).items():
                days[date.fromisoformat(d)] = name
            package_workdays |= {date.fromisoformat(d) for d in override.get("workdays", [])}
            package_workdays -= {date.fromisoformat(d) for d in override.get("not_workdays", [])}
            if override.get("official"):
                official = True
            source = override.get("source") or f"operator calendar file ({'official' if official else 'provisional'})"
        return YearInfo(year, official, days, frozenset(package_workdays), source)

    def is_working_day(self, d: date) -> bool:
        info = self.year(d.year)
        if d in info.holidays:
            return False
        return d.weekday() < 5 or d in info.workdays

    def is_official(self, year: int) -> bool:
        return self.year(year).official

    def next_working_day(self, d: date) -> date:
        d += timedelta(days=1)
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    # --- counting ----------------------------------------------------------------
    def counting_start(self, start: datetime) -> datetime:
        """With reception hours set, a complaint outside them counts from the next opening."""
        local = ensure_aware(start).astimezone(SHANGHAI)
        if not self.reception_hours or not self.reception_hours.periods:
            return local
        day = local.date()
        for _ in range(400):
            if self.is_working_day(day):
                for open_t, close_t in self.reception_hours.periods:
                    opening = datetime.combine(day, open_t, SHANGHAI)
                    closing = datetime.combine(day, close_t, SHANGHAI)
                    if local < closing:
                        return max(local, opening)
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), SHANGHAI)
        raise CalendarError("no reception hours within a year")

    def working_time(self, now: datetime) -> tuple[bool, datetime]:
        """Is `now` working time, and when does the office next open (`now` itself when open)?

        Three cases, kept apart: reception hours `always` — open at every moment, rest days and
        holidays included; reception hours such as `08:30-17:30` — open within them on working
        days (closing time itself is outside); no hours at all — whole working days, so on a rest
        day the next opening is 00:00 of the next working day."""
        local = ensure_aware(now).astimezone(SHANGHAI)
        if self.always_open:
            return True, local
        if self.reception_hours and self.reception_hours.periods:
            opening = self.counting_start(local)
        elif self.is_working_day(local.date()):
            opening = local
        else:
            opening = datetime.combine(self.next_working_day(local.date()), time(0), SHANGHAI)
        return opening == local, opening

    def deadline(self, start: datetime, unit: str, amount: int, *, extra_days: int = 0,
                 extra_seconds: int = 0) -> Due:
        """The due moment of `amount` `unit`s from `start`.

        `extra_days` / `extra_seconds` add suspended time: working days for `workdays`,
        calendar days for day and month units (before rolling forward), seconds for clock
        units. `at` means the moment `start` itself (a promised time), plus any suspension."""
        if unit not in UNITS:
            raise CalendarError(f"unknown unit '{unit}'; use one of {', '.join(UNITS)}")
        if not isinstance(amount, int) or amount < 0:
            raise CalendarError(f"the amount must be a whole number of {unit} (0 or more), not {amount!r}")
        begin = self.counting_start(start) if unit != "at" else ensure_aware(start).astimezone(SHANGHAI)
        years = {begin.year}
        last_day = None
        if unit in ("minutes", "hours", "at"):
            due = begin + timedelta(**({unit: amount} if unit != "at" else {})) + timedelta(seconds=extra_seconds)
            years = set()
        elif unit == "same_day":
            last_day = begin.date()
        elif unit == "workdays":
            d = begin.date()
            for _ in range(amount + extra_days):
                d = self.next_working_day(d)
                years.add(d.year)
            last_day = d
        elif unit in ("days", "days_strict", "months"):
            if unit == "months":
                m = begin.month - 1 + amount
                y, m = begin.year + m // 12, m % 12 + 1
                d = date(y, m, min(begin.day, monthrange(y, m)[1]))
            else:
                d = begin.date() + timedelta(days=amount)
            d += timedelta(days=extra_days)
            years.add(d.year)
            if unit != "days_strict" and not self.is_working_day(d):
                d = self.next_working_day(d)
                years.add(d.year)
            last_day = d
        if last_day is not None:
            due = datetime.combine(last_day + timedelta(days=1), time(0), SHANGHAI)
        provisional = any(not self.is_official(y) for y in years)
        return Due(due.astimezone(SHANGHAI), last_day, provisional, unit, amount, begin)

    def reminder(self, due: Due, workdays_before: int) -> datetime | None:
        """When a reminder "N working days before" a day-based limit fires: the end of the
        N-th working day before its last day (N=1: at 00:00 of the last day)."""
        if due.last_day is None or workdays_before < 1:
            return None
        d = due.last_day
        for _ in range(workdays_before):
            d -= timedelta(days=1)
            while not self.is_working_day(d):
                d -= timedelta(days=1)
        return datetime.combine(d + timedelta(days=1), time(0), SHANGHAI)

    def working_days_between(self, a: date, b: date) -> int:
        """Working days d with a < d <= b."""
        n, d = 0, a
        while d < b:
            d += timedelta(days=1)
            if self.is_working_day(d):
                n += 1
        return n

    def year_listing(self, year: int) -> dict:
        info = self.year(year)
        return {"year": year, "official": info.official, "source": info.source,
                "holidays": [{"date": d.isoformat(), "name": n} for d, n in sorted(info.holidays.items())],
                "workdays": sorted(d.isoformat() for d in info.workdays)}


def check_calendar_data(data, where: str = "calendar file") -> None:
    """Refuse an operator calendar file that would be misread, with the place of the error."""
    if not isinstance(data, dict) or not isinstance(data.get("years", {}), dict):
        raise CalendarError(f"{where}: expected {{\"years\": {{\"2027\": {{...}}}}}}")
    for year, entry in data.get("years", {}).items():
        if not (year.isdigit() and len(year) == 4) or not isinstance(entry, dict):
            raise CalendarError(f"{where}: '{year}' must be a four-digit year with an object value")
        for key in ("workdays", "not_workdays", "not_holidays"):
            for d in entry.get(key, []):
                _check_day(d, year, f"{where}: {year}.{key}")
        for d in (entry.get("holidays") or {}):
            _check_day(d, year, f"{where}: {year}.holidays")


def _check_day(text, year, where):
    try:
        d = date.fromisoformat(text)
    except (TypeError, ValueError):
        raise CalendarError(f"{where}: '{text}' is not a date (YYYY-MM-DD)") from None
    if str(d.year) != year:
        raise CalendarError(f"{where}: {text} is not in {year}")


@lru_cache(maxsize=1)
def default_calendar() -> BusinessCalendar:
    return BusinessCalendar.from_file()
