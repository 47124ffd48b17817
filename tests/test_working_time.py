"""`calendar.working_time`: "is it working time now?" for THIS procedure (issue 14).

The car dealer's and gas company's rule (004:268 1.4): a complaint received outside working
hours (放假、下班、周末) is judged for urgency by whoever receives it. The handler answers on the
procedure's own calendar and `receptionHours`; asked through the real service with a FixedClock,
on utility_service (08:30-17:30) and on copies of it that declare no hours, or `always`.
`always` (a 24-hour line: open on rest days and holidays too) and no hours (whole working
days) are different answers on a rest day."""

from __future__ import annotations

import json
import shutil

import pytest

from complaintflow.engine.calendar import BusinessCalendar
from complaintflow.engine.clock import parse_instant
from conftest import PROCESSES

PROCESS = "utility_service"
INTAKE = json.loads((PROCESSES / "forms" / PROCESS / "intake.json").read_text(encoding="utf-8"))["examples"][0]


def answer(service, clock, moment):
    clock.set(parse_instant(moment))
    case = service.start(PROCESS, INTAKE, "utility_receiver")
    return service.case_detail(case.instance_id)["data"]["working_time_check"]


def copy_without_hours(tmp_path, replacement=""):
    """utility_service with its `receptionHours` line replaced (by default: removed)."""
    folder = tmp_path / "processes"
    (folder / "forms").mkdir(parents=True)
    shutil.copy(PROCESSES / "roles.json", folder)
    shutil.copy(PROCESSES / f"{PROCESS}_major.dmn", folder)
    shutil.copytree(PROCESSES / "forms" / PROCESS, folder / "forms" / PROCESS)
    text = (PROCESSES / f"{PROCESS}.bpmn").read_text(encoding="utf-8")
    hours = '<spiffworkflow:property name="receptionHours" value="08:30-17:30" />'
    assert hours in text
    bpmn = folder / f"{PROCESS}.bpmn"
    bpmn.write_text(text.replace(hours, replacement), encoding="utf-8")
    return bpmn


@pytest.mark.parametrize("moment, working, next_opening", [
    ("2026-05-08T18:00:00+08:00", False, "2026-05-09T08:30:00+08:00"),   # Fri after closing; Sat 05-09 is worked (Labour Day)
    ("2026-10-09T18:00:00+08:00", False, "2026-10-10T08:30:00+08:00"),   # Fri after closing; Sat 10-10 is worked (National Day)
    ("2026-10-10T09:00:00+08:00", True, "2026-10-10T09:00:00+08:00"),    # the make-up working Saturday itself
    ("2026-10-16T18:00:00+08:00", False, "2026-10-19T08:30:00+08:00"),   # an ordinary Friday 18:00 -> Monday
    ("2026-10-19T09:00:00+08:00", True, "2026-10-19T09:00:00+08:00"),    # Monday 09:00
    ("2026-10-01T10:00:00+08:00", False, "2026-10-08T08:30:00+08:00"),   # National Day, a weekday holiday
    ("2026-10-19T08:29:00+08:00", False, "2026-10-19T08:30:00+08:00"),   # a minute before opening
    ("2026-10-19T08:30:00+08:00", True, "2026-10-19T08:30:00+08:00"),    # opening
    ("2026-10-19T17:30:00+08:00", False, "2026-10-20T08:30:00+08:00"),   # closing time is outside
])
def test_working_time_on_the_procedures_own_hours(service, clock, moment, working, next_opening):
    service.deploy([PROCESSES / f"{PROCESS}.bpmn"])
    got = answer(service, clock, moment)
    assert got["working_time"] is working
    assert parse_instant(got["next_opening"]) == parse_instant(next_opening)


@pytest.mark.parametrize("moment, working, next_opening", [
    ("2026-10-16T18:00:00+08:00", True, "2026-10-16T18:00:00+08:00"),    # a working day, at any hour
    ("2026-10-17T10:00:00+08:00", False, "2026-10-19T00:00:00+08:00"),   # Saturday -> Monday's start
    ("2026-10-10T23:00:00+08:00", True, "2026-10-10T23:00:00+08:00"),    # the make-up working Saturday
    ("2026-10-01T10:00:00+08:00", False, "2026-10-08T00:00:00+08:00"),   # National Day
])
def test_a_procedure_without_hours_works_whole_working_days(service, clock, tmp_path, moment, working, next_opening):
    service.deploy([copy_without_hours(tmp_path)])
    got = answer(service, clock, moment)
    assert got["working_time"] is working
    assert parse_instant(got["next_opening"]) == parse_instant(next_opening)


ALWAYS = '<spiffworkflow:property name="receptionHours" value="always" />'


@pytest.mark.parametrize("moment", [
    "2026-10-17T10:00:00+08:00",     # Saturday: without hours this is not working time
    "2026-10-01T03:00:00+08:00",     # National Day, at night
    "2026-10-16T18:00:00+08:00",     # a working day after the usual closing time
])
def test_always_is_working_time_at_every_moment(service, clock, tmp_path, moment):
    service.deploy([copy_without_hours(tmp_path, ALWAYS)])
    got = answer(service, clock, moment)
    assert got["working_time"] is True
    assert parse_instant(got["next_opening"]) == parse_instant(moment)


def test_always_and_no_hours_differ_on_a_rest_day_and_agree_on_a_working_day():
    calendar = BusinessCalendar()
    saturday, friday = parse_instant("2026-10-17T10:00:00+08:00"), parse_instant("2026-10-16T18:00:00+08:00")
    always, none = calendar.with_hours("always"), calendar.with_hours("")
    assert always.reception_hours is None and none.reception_hours is None      # neither has periods
    assert always.working_time(saturday) == (True, saturday)
    assert none.working_time(saturday) == (False, parse_instant("2026-10-19T00:00:00+08:00"))
    assert always.working_time(friday) == none.working_time(friday) == (True, friday)
    # the installation default read from the environment's setting keeps the difference too
    assert BusinessCalendar.from_file(reception_hours=" always ").working_time(saturday)[0] is True
    assert BusinessCalendar.from_file(reception_hours="").working_time(saturday)[0] is False
