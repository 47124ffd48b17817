"""Instances, human tasks, concurrency, handlers and incidents, timers — through the service layer."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from complaintflow.engine.errors import Conflict, InvalidInput, NotFound
from complaintflow.engine.models import CaseCounter, Event, Instance
from conftest import open_task

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

INTAKE = {"subject": "发票开错", "due_at": "2026-05-07T12:00:00+08:00"}


def count(service, model):
    with service.sessions() as s:
        return s.execute(select(func.count()).select_from(model)).scalar()


def test_start_assigns_sequential_case_numbers_per_process_and_year(mini, clock):
    first = mini.start("mini", INTAKE, "alice")
    second = mini.start("mini", INTAKE, "alice")
    assert first.case_number == "MINI-2026-000001"
    assert second.case_number == "MINI-2026-000002"
    clock.set(clock.now().replace(year=2027, month=1, day=4))
    assert mini.start("mini", INTAKE, "alice").case_number == "MINI-2027-000001"
    shown = mini.show("MINI-2026-000002")
    assert shown["instance_id"] == second.instance_id and shown["version"] == 1


def test_start_with_bad_intake_is_refused_and_stores_nothing(mini):
    with pytest.raises(InvalidInput) as err:
        mini.start("mini", {"subject": "", "due_at": "next tuesday", "colour": "red"}, "alice")
    fields = err.value.field_errors
    assert "due_at" in fields and "subject" in fields and "colour" in fields
    assert count(mini, Instance) == 0 and count(mini, Event) == 0 and count(mini, CaseCounter) == 0


def test_start_unknown_process_names_the_deployed_ones(mini):
    with pytest.raises(NotFound, match="deployed processes: mini"):
        mini.start("nope", {}, "alice")


def test_open_task_rows_carry_role_and_due_from_the_bpmn(mini):
    case = mini.start("mini", INTAKE, "alice")
    (task,) = case.open_tasks
    assert task["name"] == "Review" and task["role"] == "reception"
    assert task["due"] == "2026-05-07T04:00:00+00:00"
    assert mini.list_tasks(role="manager") == []
    assert [t["task"] for t in mini.list_tasks(role="reception")] == ["review"]


def test_completing_a_task_twice_is_refused_and_changes_nothing(mini, switch):
    switch.fail = False
    case = mini.start("mini", INTAKE, "alice")
    task = open_task(mini, case.instance_id, "review")
    mini.complete_task(task["task_id"], "bob", {"verdict": "ok"})
    before = mini.show(case.instance_id)
    with pytest.raises(Conflict, match="already completed by bob"):
        mini.complete_task(task["task_id"], "carol", {"verdict": "ok"})
    assert mini.show(case.instance_id) == before


def test_invalid_form_data_is_refused_and_changes_nothing(mini):
    case = mini.start("mini", INTAKE, "alice")
    task = open_task(mini, case.instance_id, "review")
    before = mini.show(case.instance_id)
    with pytest.raises(InvalidInput) as err:
        mini.complete_task(task["task_id"], "bob", {"verdict": "maybe"})
    assert "verdict" in err.value.field_errors
    assert mini.show(case.instance_id) == before
    assert open_task(mini, case.instance_id, "review")["status"] == "open"


def test_acting_on_a_stale_version_is_refused(mini, switch):
    switch.fail = False
    case = mini.start("mini", INTAKE, "alice")
    seen = mini.show(case.instance_id)["row_version"]
    task = open_task(mini, case.instance_id, "review")
    mini.complete_task(task["task_id"], "bob", {"verdict": "ok"})
    close = open_task(mini, case.instance_id, "close")
    with pytest.raises(Conflict, match="has changed since you loaded it"):
        mini.complete_task(close["task_id"], "carol", {}, expected_version=seen)
    assert open_task(mini, case.instance_id, "close")["status"] == "open"


def test_concurrent_writers_are_detected_by_the_row_version(mini):
    """Two transactions that both loaded the case: the second commit is refused."""
    case = mini.start("mini", INTAKE, "alice")
    with Session(mini.engine) as a, Session(mini.engine) as b:
        row_a = a.get(Instance, case.instance_id)
        row_b = b.get(Instance, case.instance_id)
        row_a.step_count += 1
        a.commit()
        row_b.step_count += 1
        with pytest.raises(StaleDataError):
            b.commit()


def test_failing_handler_becomes_an_incident_and_retry_completes_it(mini, switch):
    case = mini.start("mini", INTAKE, "alice")
    task = open_task(mini, case.instance_id, "review")
    result = mini.complete_task(task["task_id"], "bob", {"verdict": "ok"})
    assert result.status == "incident"
    (incident,) = result.incidents
    assert incident["handler"] == "test.flaky" and incident["task"] == "flaky"
    assert "upstream system unavailable" in incident["message"]
    # the person's work is kept: the review is done, nothing else is open in reception
    assert [t["task"] for t in mini.list_tasks(instance_id=case.instance_id)] == []
    with pytest.raises(Conflict, match="no open incident"):
        mini.retry(mini.start("mini", INTAKE, "x").instance_id, "ops")

    # retrying while the cause persists counts the attempt
    again = mini.retry(case.instance_id, "ops")
    assert again.status == "incident" and again.incidents[0]["attempts"] == 2

    switch.fail = False
    fixed = mini.retry(case.instance_id, "ops")
    assert fixed.status == "running" and fixed.incidents == []
    assert [t["task"] for t in fixed.open_tasks] == ["close"]
    kinds = [e["kind"] for e in mini.history(case.instance_id)]
    assert kinds.count("incident") == 2 and kinds.count("retry") == 2
    shown = mini.show(case.instance_id)
    assert shown["incidents"][0]["resolved"] is not None


def test_tick_fires_due_timers_only_in_due_cases(mini, clock):
    soon = mini.start("mini", dict(INTAKE, due_at="2026-05-06T12:00:00+08:00"), "alice")
    later = mini.start("mini", dict(INTAKE, due_at="2026-05-09T12:00:00+08:00"), "alice")
    assert mini.show(soon.instance_id)["next_due"] == "2026-05-06T04:00:00+00:00"

    assert mini.tick()["instances"] == 0                     # nothing due at 09:00
    clock.advance(hours=4)                                     # 13:00: only `soon` is due
    later_events = mini.show(later.instance_id)["events"]
    result = mini.tick()
    assert result == {"now": "2026-05-06T05:00:00+00:00", "instances": 1, "timers_fired": 1, "skipped": [], "refused": [], "failed": []}
    assert [t["task"] for t in mini.list_tasks(role="manager")] == ["supervise"]
    assert mini.show(later.instance_id)["events"] == later_events
    assert mini.show(soon.instance_id)["next_due"] is None
    assert mini.tick()["timers_fired"] == 0                  # a timer fires once


def test_overdue_timers_fire_on_the_first_tick_after_a_restart(make_service, mini_dir, clock):
    first = make_service()
    first.deploy([mini_dir])
    case = first.start("mini", INTAKE, "alice")
    del first                                                  # "the service stops"
    clock.advance(days=3)
    restarted = make_service()
    assert restarted.tick()["timers_fired"] == 1
    assert [t["task"] for t in restarted.list_tasks(instance_id=case.instance_id)] == ["review", "supervise"]
    fired = [e for e in restarted.history(case.instance_id) if e["kind"] == "timer_fired"]
    assert fired[0]["payload"]["due"] == "2026-05-07T04:00:00+00:00"
    assert fired[0]["at"] == "2026-05-09T01:00:00+00:00"


def test_message_reaches_a_waiting_case_and_completes_it(mini, switch):
    switch.fail = False
    case = mini.start("mini", INTAKE, "alice")
    mini.complete_task(open_task(mini, case.instance_id, "review")["task_id"], "bob", {"verdict": "ok"})
    with pytest.raises(Conflict, match="not waiting for message 'wrong'"):
        mini.send_message(case.instance_id, "wrong", {}, "bob")
    mini.complete_task(open_task(mini, case.instance_id, "close")["task_id"], "bob", {"note": "done"})
    done = mini.send_message(case.instance_id, "customer_reply", {"reply": "thanks"}, "bob")
    assert done.status == "completed"
    shown = mini.show(case.instance_id)
    assert shown["closed"] == "2026-05-06T01:00:00+00:00"
    with pytest.raises(Conflict, match="is closed"):
        mini.send_message(case.instance_id, "customer_reply", {}, "bob")


def test_listing_tasks_and_cases_never_loads_engine_state(mini, monkeypatch):
    for _ in range(3):
        mini.start("mini", INTAKE, "alice")

    def forbidden(*args, **kwargs):
        raise AssertionError("engine state was deserialized for a query")
    monkeypatch.setattr(mini.serializer, "state_from_dict", forbidden)
    assert len(mini.list_tasks()) == 3
    assert len(mini.list_cases()) == 3
    case = mini.list_cases()[0]
    assert mini.show(case["instance_id"])["open_tasks"][0]["task"] == "review"
    assert mini.history(case["instance_id"])[0]["kind"] == "started"


THREE_TIMERS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d3" targetNamespace="http://x">
  <bpmn:process id="three_timers" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="split"><bpmn:incoming>f0</bpmn:incoming>
      <bpmn:outgoing>f1</bpmn:outgoing><bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:parallelGateway>
    TIMERS
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="split" />
  </bpmn:process>
</bpmn:definitions>"""
TIMER = """<bpmn:intermediateCatchEvent id="t{n}"><bpmn:incoming>f{n}</bpmn:incoming><bpmn:outgoing>g{n}</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">"2026-05-06T1{n}:00:00+08:00"</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="e{n}"><bpmn:incoming>g{n}</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f{n}" sourceRef="split" targetRef="t{n}" />
    <bpmn:sequenceFlow id="g{n}" sourceRef="t{n}" targetRef="e{n}" />"""


def test_timers_firing_in_one_tick_are_logged_in_firing_order(service, clock, tmp_path):
    from conftest import PROCESSES
    (tmp_path / "roles.json").write_text((PROCESSES / "roles.json").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "three.bpmn").write_text(
        THREE_TIMERS.replace("TIMERS", "\n    ".join(TIMER.format(n=n) for n in (1, 2, 3))), encoding="utf-8")
    service.deploy([tmp_path])
    case = service.start("three_timers", {}, "alice")
    clock.set(clock.now().replace(hour=14))
    assert service.tick()["timers_fired"] == 3
    fired = [e["payload"]["task"] for e in service.history(case.instance_id) if e["kind"] == "timer_fired"]
    assert fired == ["t1", "t2", "t3"]
    assert service.show(case.instance_id)["status"] == "completed"
