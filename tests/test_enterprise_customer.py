"""enterprise_customer (company customer complaints): every path through the service layer,
with a controlled clock. Seeds: 000:2-25, 56-77, 101-133, 182-198, 215-237, 299-325;
001:73-125 (see docs/processes/enterprise_customer.md)."""

from __future__ import annotations

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput
from conftest import PROCESSES, open_task

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

INTAKE = {
    "channel": "hotline",
    "complainant": "王女士",
    "contact": "13800000000",
    "category": "product_quality",
    "content": "新买的电水壶漏水",
    "promised_resolution_at": "2026-05-08T17:00:00+08:00",
}


@pytest.fixture
def ec(service):
    service.deploy([PROCESSES])
    return service


def start(ec, **overrides):
    return ec.start("enterprise_customer", dict(INTAKE, **overrides), "reception_li")


def do(ec, case, task, user, data):
    row = open_task(ec, case.instance_id, task)
    return ec.complete_task(row["task_id"], user, data)


def open_names(ec, case):
    return sorted(t["task"] for t in ec.list_tasks(instance_id=case.instance_id))


def roles_of(ec, case):
    return {t["task"]: t["role"] for t in ec.list_tasks(instance_id=case.instance_id)}


def handle_through_reply(ec, case, *, satisfied="yes"):
    do(ec, case, "investigate", "dept_zhao", {"findings": "密封圈缺陷", "responsible_party": "company"})
    do(ec, case, "agree_solution", "dept_zhao", {"solution_type": "replacement", "solution": "换新",
                                                 "customer_agreed": True})
    do(ec, case, "feedback", "reception_li", {"reply": "已为您换新", "reply_channel": "phone"})
    return do(ec, case, "satisfaction_survey", "reception_li", {"satisfied": satisfied})


def close(ec, case):
    return do(ec, case, "summary_archive", "reception_li", {"summary": "已处理"})


def test_registration_gives_a_case_number_and_a_receipt(ec, notifier):
    case = start(ec)
    assert case.case_number == "KH-2026-000001"
    (receipt,) = notifier.sent
    assert receipt["kind"] == "receipt" and receipt["to"] == "13800000000"
    assert "KH-2026-000001" in receipt["message"] and "2026年05月08日 17:00" in receipt["message"]
    assert roles_of(ec, case) == {"preliminary_check": "reception"}
    assert ec.show(case.instance_id)["category"] == "product_quality"


def test_registration_refuses_missing_or_unknown_fields(ec):
    with pytest.raises(InvalidInput) as err:
        ec.start("enterprise_customer", dict(INTAKE, category="weather", promised_resolution_at="soon"), "li")
    assert {"category", "promised_resolution_at"} <= set(err.value.field_errors)
    assert ec.list_cases() == []


def test_settled_on_the_spot(ec, notifier):
    case = start(ec)
    do(ec, case, "preliminary_check", "reception_li",
       {"outcome": "settled", "severity": "general", "on_spot_resolution": "当场更换"})
    assert open_names(ec, case) == ["summary_archive"]
    done = close(ec, case)
    assert done.status == "completed"
    assert ec.show(case.instance_id)["closed"] == "2026-05-06T01:00:00+00:00"
    assert notifier.kinds() == ["receipt"]
    assert ec.replay(case.instance_id).consistent is True


def test_refused_as_malicious_tells_the_customer_why(ec, notifier):
    case = start(ec)
    with pytest.raises(InvalidInput, match="refusal_reason|不予受理理由"):
        do(ec, case, "preliminary_check", "reception_li", {"outcome": "refused", "severity": "general"})
    do(ec, case, "preliminary_check", "reception_li",
       {"outcome": "refused", "severity": "general", "refusal_reason": "重复恶意投诉，内容不实"})
    refusal = notifier.sent[-1]
    assert refusal["kind"] == "refusal" and "重复恶意投诉" in refusal["message"]
    assert close(ec, case).status == "completed"


@pytest.mark.parametrize("check", [
    {"outcome": "settled", "severity": "general", "on_spot_resolution": "当场更换"},
    {"outcome": "refused", "severity": "general", "refusal_reason": "重复恶意投诉，内容不实"},
], ids=["settled_on_the_spot", "refused"])
def test_a_case_ended_at_the_first_check_ends_its_promised_time_met(ec, clock, check):
    """The promise (000:127, 000:313) ends with a case settled on the spot or refused: closed
    cases never show it running or breached, and its timer never fires afterwards."""
    case = start(ec)
    clock.set(parse_instant("2026-05-06T10:00:00+08:00"))
    do(ec, case, "preliminary_check", "reception_li", check)
    close(ec, case)
    (promised,) = ec.show(case.instance_id)["deadlines"]
    assert promised["status"] == "met" and promised["completed"] == "2026-05-06T02:00:00+00:00"
    clock.set(parse_instant("2026-05-08T17:00:00+08:00"))      # the promised moment passes
    assert ec.tick()["timers_fired"] == 0
    assert ec.show(case.instance_id)["deadlines"][0]["status"] == "met"


def test_major_complaint_is_reported_to_management_at_once(ec, notifier):
    case = start(ec)
    do(ec, case, "preliminary_check", "reception_li",
       {"outcome": "accepted", "severity": "major", "department": "售后部"})
    assert notifier.sent[-1]["kind"] == "report_major" and notifier.sent[-1]["to"] == "role:manager"
    assert roles_of(ec, case) == {"major_instruction": "manager"}
    do(ec, case, "major_instruction", "manager_wu", {"instruction": "今天内联系客户"})
    assert roles_of(ec, case) == {"investigate": "department"}
    handle_through_reply(ec, case)
    assert close(ec, case).status == "completed"
    assert ec.replay(case.instance_id).consistent is True


def test_routed_complaint_handled_and_answered_in_time(ec, clock):
    case = start(ec)
    do(ec, case, "preliminary_check", "reception_li",
       {"outcome": "accepted", "severity": "general", "department": "品质部"})
    assert roles_of(ec, case) == {"investigate": "department"}
    assert open_task(ec, case.instance_id, "investigate")["due"] == "2026-05-08T09:00:00+00:00"
    assert all(t["due"] == "2026-05-08T09:00:00+00:00" for t in ec.list_tasks(instance_id=case.instance_id))
    clock.advance(days=1)
    handle_through_reply(ec, case)
    promised = ec.show(case.instance_id)["deadlines"][0]
    assert (promised["name"], promised["status"], promised["unit"]) == ("promised", "met", "at")
    assert promised["seed"] == "000:127, 000:313"
    clock.advance(days=5)                         # long after the promise: the reply was in time
    assert ec.tick()["timers_fired"] == 0
    assert "supervise" not in open_names(ec, case)
    assert close(ec, case).status == "completed"


def test_promised_time_passing_before_the_reply_gives_the_manager_a_supervision_task(ec, clock):
    case = start(ec)
    do(ec, case, "preliminary_check", "reception_li",
       {"outcome": "accepted", "severity": "general", "department": "品质部"})
    clock.set(clock.now().replace(day=8, hour=16, minute=59))
    assert ec.tick()["timers_fired"] == 0
    clock.set(clock.now().replace(hour=17, minute=0))
    assert ec.tick()["timers_fired"] == 1
    assert roles_of(ec, case) == {"investigate": "department", "supervise": "manager"}
    fired = [e for e in ec.history(case.instance_id) if e["kind"] == "timer_fired"][0]
    assert fired["payload"]["task"] == "promised_time_passed" and fired["payload"]["deadline"] == "promised"
    (promised,) = ec.show(case.instance_id)["deadlines"]
    assert promised["status"] == "breached" and promised["breached_at"] == "2026-05-08T09:00:00+00:00"
    do(ec, case, "supervise", "manager_wu", {"supervision_note": "今天必须答复"})
    handle_through_reply(ec, case)
    assert close(ec, case).status == "completed"
    assert ec.replay(case.instance_id).consistent is True


def test_a_promised_time_passed_between_ticks_is_logged_by_the_next_action_not_lost(ec, clock):
    """SpiffWorkflow fires an overdue timer on any action's engine step. A colleague acting
    after the promised time but before the next tick: the timer's firing and the breach are
    recorded in that action's step, as a tick would have recorded them."""
    case = start(ec, promised_resolution_at="2026-05-06T09:40:00+08:00")
    clock.set(clock.now().replace(hour=10, minute=5))                      # no tick since 09:40
    do(ec, case, "preliminary_check", "reception_li",
       {"outcome": "accepted", "severity": "general", "department": "品质部"})
    assert roles_of(ec, case) == {"investigate": "department", "supervise": "manager"}
    history = ec.history(case.instance_id)
    step = [e for e in history if e["step"] == history[-1]["step"]]
    assert step[0]["kind"] == "task_completed"
    (fired,) = [e for e in step if e["kind"] == "timer_fired"]
    assert fired["actor"] == "system" and fired["payload"]["deadline"] == "promised"
    assert fired["payload"]["due"].startswith("2026-05-06T09:40:00")
    (promised,) = ec.show(case.instance_id)["deadlines"]
    assert promised["status"] == "breached" and promised["breached_at"] == "2026-05-06T02:05:00+00:00"
    assert ec.tick()["timers_fired"] == 0                                  # it fired once
    assert ec.replay(case.instance_id).consistent is True


def test_dissatisfied_customer_is_handled_again_at_most_twice(ec):
    case = start(ec)
    do(ec, case, "preliminary_check", "reception_li",
       {"outcome": "accepted", "severity": "general", "department": "品质部"})
    handle_through_reply(ec, case, satisfied="no")
    assert open_names(ec, case) == ["investigate"]          # first re-handling
    handle_through_reply(ec, case, satisfied="no")
    assert open_names(ec, case) == ["investigate"]          # second re-handling
    handle_through_reply(ec, case, satisfied="no")
    assert open_names(ec, case) == ["summary_archive"]      # the bound is reached
    investigations = [e for e in ec.history(case.instance_id)
                      if e["kind"] == "task_completed" and e["payload"]["task"] == "investigate"]
    assert len(investigations) == 3
    assert close(ec, case).status == "completed"
    assert ec.replay(case.instance_id).consistent is True
