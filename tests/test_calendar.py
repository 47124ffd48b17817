"""The business calendar: the worked examples of docs/time-limits.md (shared/domain), real
holidays and make-up working days, provisional years, operator corrections, invariants."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from complaintflow.engine.calendar import BusinessCalendar, CalendarError, ReceptionHours
from complaintflow.engine.clock import SHANGHAI, parse_instant
from complaintflow.web.cli import cli

CAL = BusinessCalendar()


def due(start, unit, amount, cal=CAL):
    return cal.deadline(parse_instant(start), unit, amount)


# --- the worked examples in time-limits.md ---------------------------------------

def test_five_working_days_from_friday_before_national_day_2024():
    """Rule 2: holidays 1-7 Oct 2024 are not working days, Sun 29 Sep and Sat 12 Oct are."""
    d = due("2024-09-27T15:00", "workdays", 5)
    assert d.last_day == date(2024, 10, 10)          # not 10-04 (weekends only), not 10-11 (no make-up days)
    assert d.due == datetime(2024, 10, 11, 0, 0, tzinfo=SHANGHAI)   # rule 4: the end of its last day
    assert d.provisional is False


def test_the_day_of_the_starting_event_is_not_counted():
    """Rule 1: 'within 5 working days of receipt' on a Friday is the fifth working day after it."""
    assert due("2026-03-06T09:00", "workdays", 5).last_day == date(2026, 3, 13)
    assert due("2026-03-06T23:59", "workdays", 1).last_day == date(2026, 3, 9)


def test_calendar_days_roll_forward_over_holidays_and_rest_days():
    """Rule 3 (民法典 Art. 203, 节假日顺延): a last day on a holiday or rest day moves to the next working day."""
    assert due("2024-09-27T10:00", "days", 7).last_day == date(2024, 10, 8)     # 10-04 is National Day
    assert due("2026-05-08T10:00", "days", 1).last_day == date(2026, 5, 9)      # Sat 05-09 is a make-up working day
    assert due("2026-05-08T10:00", "days", 2).last_day == date(2026, 5, 11)     # Sun 05-10 rolls to Monday
    assert due("2026-05-08T10:00", "days_strict", 2).last_day == date(2026, 5, 10)


# --- real holidays: Qingming, Labour Day, National Day ------------------------------

@pytest.mark.parametrize("start, amount, last", [
    ("2026-04-03T10:00", 1, date(2026, 4, 7)),     # Qingming: Sun 04-05 and Mon 04-06 off
    ("2026-04-30T10:00", 2, date(2026, 5, 7)),     # Labour Day: 05-01..05-05 off
    ("2026-05-07T10:00", 2, date(2026, 5, 9)),     # Sat 05-09 is a make-up working day
    ("2026-09-19T10:00", 1, date(2026, 9, 20)),    # Sun 09-20 is a make-up working day
    ("2026-09-30T10:00", 1, date(2026, 10, 8)),    # National Day: 10-01..10-07 off
    ("2026-09-30T10:00", 3, date(2026, 10, 10)),   # ... and Sat 10-10 works
])
def test_working_days_across_2026_holidays(start, amount, last):
    assert due(start, "workdays", amount).last_day == last


def test_clock_units_same_day_and_months():
    assert due("2026-05-06T09:15:00+08:00", "hours", 2).due == parse_instant("2026-05-06T11:15:00+08:00")
    assert due("2026-05-06T09:15:00+08:00", "minutes", 30).due == parse_instant("2026-05-06T09:45:00+08:00")
    assert due("2026-04-30T22:00", "hours", 3).last_day is None          # clock time ignores holidays
    same = due("2026-05-06T09:15", "same_day", 0)
    assert same.last_day == date(2026, 5, 6) and same.due == datetime(2026, 5, 7, tzinfo=SHANGHAI)
    assert due("2026-01-31T10:00", "months", 1).last_day == date(2026, 2, 28)  # clamped; Sat 02-28 is a make-up working day
    assert due("2025-03-31T10:00", "months", 2).last_day == date(2025, 6, 3)   # 05-31..06-02 Dragon Boat Festival
    assert due("2026-06-15T10:00", "months", 3).last_day == date(2026, 9, 15)


def test_reception_hours_count_from_the_next_opening():
    """000:83 — 接待时间 周一至周五 8:00-12:00, 14:00-17:30."""
    cal = BusinessCalendar(reception_hours=ReceptionHours.parse("08:00-12:00,14:00-17:30"))
    evening = due("2026-05-08T18:30", "workdays", 1, cal)                  # Friday evening
    assert evening.start == parse_instant("2026-05-09T08:00")              # Sat 05-09 is a working day
    assert evening.last_day == date(2026, 5, 11)
    lunch = due("2026-05-06T12:30", "hours", 2, cal)
    assert lunch.start == parse_instant("2026-05-06T14:00") and lunch.due == parse_instant("2026-05-06T16:00")
    assert due("2026-05-08T18:30", "workdays", 1).last_day == date(2026, 5, 9)  # off by default


# --- provisional years and the operator file ---------------------------------------

def test_a_deadline_into_an_unpublished_year_is_provisional():
    late = due("2026-12-28T10:00", "workdays", 5)
    assert late.provisional is True and late.last_day == date(2027, 1, 5)   # 01-01 is a fixed holiday
    assert due("2026-12-14T10:00", "workdays", 5).provisional is False
    assert CAL.is_official(2026) and not CAL.is_official(2027)
    assert not CAL.is_working_day(date(2027, 2, 6))                        # Spring Festival is known


def test_operator_file_adds_a_years_arrangement(tmp_path):
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps({"years": {"2027": {
        "official": True, "source": "国务院办公厅通知（测试）",
        "holidays": {"2027-01-04": "元旦调休"}, "workdays": ["2027-01-09"]}}}), encoding="utf-8")
    cal = BusinessCalendar.from_file(path)
    late = due("2026-12-28T10:00", "workdays", 5, cal)
    assert late.provisional is False and late.last_day == date(2027, 1, 6)
    assert cal.is_working_day(date(2027, 1, 9)) and not cal.is_working_day(date(2027, 1, 4))
    assert cal.year_listing(2027)["source"] == "国务院办公厅通知（测试）"


@pytest.mark.parametrize("content, words", [
    ("{not json", "not valid JSON"),
    ('{"years": {"27": {}}}', "four-digit year"),
    ('{"years": {"2027": {"workdays": ["2027-13-01"]}}}', "'2027-13-01' is not a date"),
    ('{"years": {"2027": {"holidays": {"2028-01-01": "x"}}}}', "is not in 2027"),
])
def test_a_bad_operator_file_is_refused_with_its_place(tmp_path, content, words):
    path = tmp_path / "calendar.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CalendarError, match=words):
        BusinessCalendar.from_file(path)


def test_shipped_operator_file_loads():
    assert BusinessCalendar.from_file().is_official(2026)


# --- the calendar command ------------------------------------------------------------

def test_calendar_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    out = runner.invoke(cli, ["calendar", "deadline", "--from", "2024-09-27T10:00", "--workdays", "5", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["due"] == "2024-10-11T00:00:00+08:00"
    assert json.loads(out.output)["provisional"] is False
    late = runner.invoke(cli, ["calendar", "deadline", "--from", "2026-12-28", "--workdays", "5"])
    assert "PROVISIONAL" in late.output
    listing = runner.invoke(cli, ["calendar", "show", "2026"])
    assert "2026-10-01" in listing.output and "2026-09-20" in listing.output and "official" in listing.output
    both = runner.invoke(cli, ["calendar", "deadline", "--from", "2026-05-06", "--days", "1", "--hours", "2"])
    assert both.exit_code == 2 and "exactly one of" in both.output
    assert not (tmp_path / "var").exists()           # the calendar needs no database


# --- invariants (hypothesis) -----------------------------------------------------------

starts = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 11, 30)).map(
    lambda d: d.replace(tzinfo=SHANGHAI))


@settings(max_examples=200, deadline=None)
@given(start=starts, n=st.integers(min_value=1, max_value=40))
def test_a_working_day_deadline_lands_on_a_working_day(start, n):
    assert CAL.is_working_day(CAL.deadline(start, "workdays", n).last_day)


@settings(max_examples=200, deadline=None)
@given(start=starts, n=st.integers(min_value=0, max_value=20), m=st.integers(min_value=0, max_value=20))
def test_n_then_m_working_days_is_n_plus_m(start, n, m):
    first = CAL.deadline(start, "workdays", n)
    then = CAL.deadline(datetime.combine(first.last_day, datetime.min.time(), SHANGHAI), "workdays", m)
    assert then.last_day == CAL.deadline(start, "workdays", n + m).last_day


@settings(max_examples=200, deadline=None)
@given(start=starts, later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
       unit=st.sampled_from(["workdays", "days", "months", "hours", "same_day"]),
       n=st.integers(min_value=0, max_value=30))
def test_a_later_start_never_gives_an_earlier_deadline(start, later, unit, n):
    assert CAL.deadline(start + later, unit, n).due >= CAL.deadline(start, unit, n).due


@settings(max_examples=200, deadline=None)
@given(start=starts, n=st.integers(min_value=1, max_value=30),
       pause_after=st.integers(min_value=0, max_value=20), pause_len=st.integers(min_value=0, max_value=30))
def test_suspension_moves_a_deadline_by_exactly_the_paused_working_time(start, n, pause_after, pause_len):
    """The book adds the working days of the pause (pause day excluded, resume day included)."""
    before = CAL.deadline(start, "workdays", n)
    paused, resumed = start.date() + timedelta(days=pause_after), start.date() + timedelta(days=pause_after + pause_len)
    k = CAL.working_days_between(paused, resumed)
    after = CAL.deadline(start, "workdays", n, extra_days=k)
    assert CAL.working_days_between(before.last_day, after.last_day) == k
