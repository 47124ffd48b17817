"""Reception hours belong to a procedure, not to the installation (issue 13).

The hospital's complaint room receives Monday to Friday 8:00-12:00 and 14:00-17:30 (000:83);
the medical insurance office has a 24-hour duty line for nights and holidays (000:247). Each
BPMN says so with the process property `receptionHours`; the installation-wide
COMPLAINTFLOW_RECEPTION_HOURS only applies to procedures that say nothing."""

from __future__ import annotations

import shutil

import pytest

from complaintflow.engine.calendar import BusinessCalendar, ReceptionHours
from complaintflow.engine.clock import parse_instant
from complaintflow.engine.service import ComplaintService
from conftest import PROCESSES, TEST_CHAIN_KEY
from test_hospital_patient import INTAKE as HOSPITAL_INTAKE
from test_medical_insurance import INTAKE as INSURANCE_INTAKE

FRIDAY_EVENING = "2026-05-08T18:30:00+08:00"    # Sat 05-09 is a make-up working day (Labour Day 2026)


def limits(service, case):
    return {d["name"]: d for d in service.show(case.instance_id)["deadlines"]}


def insurance_copy(tmp_path, old, new):
    """A private copy of the medical insurance procedure with its receptionHours property edited."""
    folder = tmp_path / "processes"
    (folder / "forms").mkdir(parents=True)
    shutil.copy(PROCESSES / "roles.json", folder)
    for forms in ("medical_insurance", "common"):
        shutil.copytree(PROCESSES / "forms" / forms, folder / "forms" / forms)
    bpmn = folder / "medical_insurance.bpmn"
    text = (PROCESSES / "medical_insurance.bpmn").read_text(encoding="utf-8")
    assert old in text
    bpmn.write_text(text.replace(old, new), encoding="utf-8")
    return bpmn


def make(db_url, clock, registry, notifier, hours=None):
    service = ComplaintService(db_url, clock=clock, handlers=registry, notifier=notifier,
                               calendar=BusinessCalendar(reception_hours=ReceptionHours.parse(hours)),
                               chain_key=TEST_CHAIN_KEY)
    service.deploy([PROCESSES / "hospital_patient.bpmn", PROCESSES / "medical_insurance.bpmn"])
    return service


@pytest.mark.parametrize("installation_hours", [None, "09:00-17:00"], ids=["no default", "a default"])
def test_each_procedure_counts_from_its_own_reception_hours(db_url, clock, registry, notifier, installation_hours):
    service = make(db_url, clock, registry, notifier, installation_hours)
    clock.set(parse_instant(FRIDAY_EVENING))
    hospital = service.start("hospital_patient", dict(HOSPITAL_INTAKE, channel="letter", received_at=FRIDAY_EVENING),
                             "nurse_zhang")
    duty_line = service.start("medical_insurance", dict(INSURANCE_INTAKE, received_at=FRIDAY_EVENING), "yb_wang")

    # the hospital's letter, opened after 17:30, counts from the next opening: Sat 05-09 08:00
    accept = limits(service, hospital)["accept"]
    assert parse_instant(accept["start"]) == parse_instant("2026-05-09T08:00") and accept["last_day"] == "2026-05-11"
    # the duty line's complaint counts from 18:30 on Friday whatever the installation says:
    # 10 working days after 05-08 end on Thu 05-21 (Sat 05-09 is the first of them)
    reply = limits(service, duty_line)["reply"]
    assert parse_instant(reply["start"]) == parse_instant(FRIDAY_EVENING) and reply["last_day"] == "2026-05-21"


def test_a_procedure_without_hours_keeps_the_installation_default(tmp_path, db_url, clock, registry, notifier):
    bpmn = insurance_copy(tmp_path, '<spiffworkflow:property name="receptionHours" value="always" />', "")
    service = ComplaintService(db_url, clock=clock, handlers=registry, notifier=notifier,
                               calendar=BusinessCalendar(reception_hours=ReceptionHours.parse("08:00-17:00")),
                               chain_key=TEST_CHAIN_KEY)
    service.deploy([bpmn])
    clock.set(parse_instant(FRIDAY_EVENING))
    case = service.start("medical_insurance", dict(INSURANCE_INTAKE, received_at=FRIDAY_EVENING), "yb_wang")
    reply = limits(service, case)["reply"]
    # counted from the next opening, Sat 05-09 08:00: one working day later than from Friday
    assert parse_instant(reply["start"]) == parse_instant("2026-05-09T08:00") and reply["last_day"] == "2026-05-22"


@pytest.mark.parametrize("value, expected", [
    ("8-12", "'8-12' is not a period like 08:00-12:00"),
    ("14:00-12:00", "'14:00-12:00' ends before it starts"),
    ("08:00-12:00,11:00-17:30", "periods overlap"),
])
def test_validate_names_a_bad_reception_hours_value(tmp_path, service, value, expected):
    bpmn = insurance_copy(tmp_path, 'name="receptionHours" value="always"', f'name="receptionHours" value="{value}"')
    problems = [str(p) for p in service.validate([bpmn]).problems]
    line = next(p for p in problems if "receptionHours" in p)
    assert "medical_insurance.bpmn:6:" in line and expected in line, problems
    with pytest.raises(Exception):
        service.deploy([bpmn])
    assert service.processes() == []               # a refused deploy stores nothing
