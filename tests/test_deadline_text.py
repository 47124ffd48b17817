"""Time limits as staff and complainants read them (engine/deadline_text.py), against a controlled
clock and the real business calendar (China's holidays from the `holidays` package)."""

from __future__ import annotations

from datetime import datetime

import pytest

from complaintflow.engine.calendar import BusinessCalendar
from complaintflow.engine.clock import SHANGHAI, FixedClock, parse_instant
from complaintflow.engine.deadline_text import due_text, left_text, limit_label, notice_text, size_text
from conftest import PROCESSES


@pytest.fixture(scope="module")
def calendar():
    return BusinessCalendar.from_file()


def at(text):
    return parse_instant(text)


def limit(calendar, start, unit, amount):
    """A deadline as `show` gives it, started at `start`."""
    due = calendar.deadline(at(start), unit, amount)
    return {"unit": unit, "amount": amount, "due": due.due.isoformat(),
            "last_day": due.last_day.isoformat() if due.last_day else None, "status": "open"}


def test_a_workday_limit_over_national_day_reads_as_its_last_day_with_workdays_left(calendar):
    # 5 working days from Friday 27 September 2024: 1-7 October are holidays, so the last day
    # is Thursday 10 October, and the engine's due moment is 00:00 on the 11th
    accept = limit(calendar, "2024-09-27T15:00", "workdays", 5)
    assert accept["due"].startswith("2024-10-11T00:00")
    clock = FixedClock(at("2024-09-30T10:00"))
    assert due_text(accept, "zh", clock.now()) == "10月10日（周四）当日内"
    assert left_text(accept, clock.now(), calendar) == "还剩 3 个工作日"      # 8, 9, 10 October
    clock.set(at("2024-10-04T10:00"))                                          # inside the holiday
    assert left_text(accept, clock.now(), calendar) == "还剩 3 个工作日"
    clock.set(at("2024-10-10T23:59"))
    assert left_text(accept, clock.now(), calendar) == "今日到期"
    clock.set(at("2024-10-11T00:00"))                                          # the due moment
    assert left_text(accept, clock.now(), calendar) == "已超期 1 个工作日"
    clock.set(at("2024-10-12T09:00"))              # Saturday 12 October 2024 was a make-up working day
    assert left_text(accept, clock.now(), calendar) == "已超期 2 个工作日"
    assert due_text(accept, "en", clock.now()) == "by the end of 10 Oct (Thu)"


def test_a_calendar_day_limit_rolls_past_the_holiday_and_counts_calendar_days(calendar):
    reply = limit(calendar, "2024-09-25T10:00", "days", 10)          # 5 October is a holiday: rolls to the 8th
    now = at("2024-10-06T12:00")
    assert due_text(reply, "zh", now) == "10月08日（周二）当日内"
    assert left_text(reply, now, calendar) == "还剩 2 天"
    assert left_text(reply, at("2024-10-10T08:00"), calendar) == "已超期 2 天"
    assert size_text("days", 10) == "10 日"


def test_an_hour_limit_reads_as_its_moment_with_hours_and_minutes_left(calendar):
    handover = limit(calendar, "2026-05-06T09:00", "hours", 2)
    assert handover["last_day"] is None
    assert due_text(handover, "zh", at("2026-05-06T09:40")) == "05月06日（周三）11:00"
    assert left_text(handover, at("2026-05-06T09:40"), calendar) == "还剩 1 小时 20 分钟"
    assert left_text(handover, at("2026-05-06T10:59:30"), calendar) == "还剩 1 分钟"
    assert left_text(handover, at("2026-05-06T11:30"), calendar) == "已超期 30 分钟"
    assert left_text(handover, at("2026-05-07T12:00"), calendar) == "已超期 1 天 1 小时"
    assert size_text("hours", 2) == "2 小时" and size_text("minutes", 30, "en") == "30 minute(s)"


def test_a_promised_moment_and_the_year_when_it_is_not_this_year(calendar):
    promised = limit(calendar, "2027-01-04T17:00", "at", 0)
    now = datetime(2026, 12, 30, 9, 0, tzinfo=SHANGHAI)
    assert due_text(promised, "zh", now) == "2027年01月04日（周一）17:00"
    assert left_text(promised, now, calendar) == "还剩 5 天 8 小时"
    assert size_text("at", 0) == "约定时刻"
    month = limit(calendar, "2026-12-01T10:00", "months", 1)
    assert due_text(month, "zh", now) == "2027年01月04日（周一）当日内"     # 1 January is a holiday, then a weekend


def test_a_limit_no_longer_running_says_nothing_about_what_is_left(calendar):
    accept = limit(calendar, "2026-05-06T09:00", "workdays", 1)
    now = at("2026-05-06T10:00")
    assert left_text(dict(accept, status="paused"), now, calendar) is None
    assert left_text(dict(accept, status="met"), now, calendar) is None
    assert left_text(dict(accept, status="breached", completed="2026-05-08T02:00:00+00:00"), now, calendar) is None
    assert size_text("workdays", 1) == "1 个工作日" and size_text("workdays", 5, extended_by=3) == "5 个工作日（延长 3 个工作日）"


def test_the_complainant_is_told_the_same_last_day_staff_see(calendar):
    accept = limit(calendar, "2026-11-30T10:00", "workdays", 2)
    assert accept["due"].startswith("2026-12-03T00:00")
    assert notice_text(accept) == "2026年12月02日"
    assert due_text(accept, "zh", at("2026-11-30T10:00")) == "12月02日（周三）当日内"
    assert notice_text(dict(accept, provisional=True)) == "2026年12月02日（暂定）"
    assert notice_text("2026-05-08T09:00:00+00:00") == "2026年05月08日 17:00"


def test_each_limit_is_named_by_its_bpmn():
    hospital = (PROCESSES / "hospital_patient.bpmn").read_text(encoding="utf-8")
    assert limit_label("accept", hospital, "workdays", 1) == "受理决定时限"
    assert limit_label("first_reply", hospital) == "首次答复时限"
    property_ = (PROCESSES / "property_management.bpmn").read_text(encoding="utf-8")
    # one limit started in four ways: the start with the same unit and amount names it
    assert limit_label("resolve", property_, "days", 2) == "轻微投诉处理时限"
    assert limit_label("resolve", property_, "at", 0) == "住户要求的处理期限"
    assert limit_label("resolve", property_, "days", 10) == "重大投诉解决时限"
    assert limit_label("unknown", property_) == "unknown"
    labelled = hospital.replace('<spiffworkflow:parameter id="name" type="any" value="&quot;accept&quot;" />',
                                '<spiffworkflow:parameter id="name" type="any" value="&quot;accept&quot;" />'
                                '<spiffworkflow:parameter id="label" type="any" value="&quot;受理期限&quot;" />')
    assert labelled != hospital
    assert limit_label("accept", labelled, "workdays", 1) == "受理期限"


@pytest.mark.parametrize("path", sorted(PROCESSES.glob("*.bpmn")), ids=lambda p: p.stem)
def test_every_limit_of_the_shipped_procedures_has_a_chinese_name(path):
    from complaintflow.engine.deadline_text import limit_names
    names = limit_names(path.read_text(encoding="utf-8"))
    assert names
    for name, unit, amount, label in names:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in label), (name, label)
        assert not label.startswith("起算"), label
