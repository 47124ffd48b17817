"""utility_service (gas company 001:240-249; car dealer 004:264-268, 004:306-310) through the
service layer with a controlled clock: what the scenario files in processes/tests/utility_service
cannot say — form errors in Chinese with nothing stored, the legal states of the leader's ruling,
the two half-hour limits counted from the procedure's own opening hours on real holidays, the
major-complaint criteria one by one, and who sees the customer. See docs/processes/utility_service.md."""

from __future__ import annotations

import json
import re

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from webapp import sign_in

PROCESS = "utility_service"
INTAKE = json.loads((PROCESSES / "forms" / PROCESS / "intake.json").read_text(encoding="utf-8"))["examples"][0]
CRITERIA = ("involves_compensation", "safety_related", "large_loss", "involves_media_or_authorities",
            "adverse_influence", "transferred_by_regulator")
REGISTERED = {"complaint_summary": "燃气表读数异常", "responsible_unit": "抄表收费"}
VALID = {"valid": "yes", "ruling_reason": "属工作质量问题"}
INVESTIGATED = {"findings": "表具故障", "explained_to_customer": "yes", "remedy": "换表并重新计费"}


@pytest.fixture
def us(service, clock):
    service.deploy([PROCESSES / f"{PROCESS}.bpmn"])
    clock.set(parse_instant("2026-05-06T09:00:00+08:00"))     # Wednesday, in working hours
    return service


def start(us, clock, moment=None, **overrides):
    if moment:
        clock.set(parse_instant(moment))
    return us.start(PROCESS, dict(INTAKE, **overrides), "utility_receiver")


def do(us, case, task, data, user):
    return us.complete_task(open_task(us, case.instance_id, task)["task_id"], user, data)


def open_tasks(us, case):
    return {t["task"]: t["role"] for t in us.list_tasks(instance_id=case.instance_id)}


def staff_notices(notifier):
    return [n for n in notifier.sent if n["kind"] == "staff"]


def limits(us, case):
    return {d["name"]: d for d in us.show(case.instance_id)["deadlines"]}


# --- registration ------------------------------------------------------------------------------

def test_the_intake_forms_example_starts_a_case_in_the_offices_inbox(us, clock, notifier):
    case = start(us, clock)
    assert case.case_number == "RQ-2026-000001"
    assert open_tasks(us, case) == {"office_register": "utility_office"}
    (ack,) = notifier.sent                        # general, in working hours: nobody is phoned
    assert ack["kind"] == "acknowledgement" and ack["to"] == INTAKE["contact"]
    assert "RQ-2026-000001" in ack["message"] and "最大限度地给予您解决问题所需要的支持" in ack["message"]   # 004:268 1.2
    assert us.replay(case.instance_id).consistent is True


def test_registration_refuses_bad_data_in_chinese_and_stores_nothing(us, clock, notifier):
    data = {k: v for k, v in INTAKE.items() if k not in ("address", "safety_related")}
    with pytest.raises(InvalidInput) as err:
        us.start(PROCESS, dict(data, channel="fax"), "utility_receiver")
    zh = err.value.field_texts("zh")
    assert {"address", "safety_related", "channel"} <= set(zh)
    assert all(re.search(r"[\u4e00-\u9fff]", text) for texts in zh.values() for text in texts), zh
    assert us.list_cases() == [] and notifier.sent == []


def test_a_ruling_without_saying_valid_or_invalid_is_refused_and_nothing_moves(us, clock):
    case = start(us, clock)
    do(us, case, "office_register", REGISTERED, "utility_office")
    before = us.show(case.instance_id)
    with pytest.raises(InvalidInput) as err:
        do(us, case, "leader_review", {"ruling_reason": "待定"}, "utility_leader")
    assert "valid" in err.value.field_texts("zh")
    after = us.show(case.instance_id)
    assert after["row_version"] == before["row_version"] and after["legal_state"] is None
    assert open_tasks(us, case) == {"leader_review": "utility_leader"}


# --- legal states: the leader's ruling (001:245 二(四)) -----------------------------------------

@pytest.mark.parametrize("valid, state, next_task", [("yes", "ruled_valid", "dispatch"),
                                                      ("no", "ruled_invalid", "revisit")])
def test_the_leaders_ruling_is_the_cases_legal_state(us, clock, valid, state, next_task):
    case = start(us, clock)
    do(us, case, "office_register", REGISTERED, "utility_office")
    do(us, case, "leader_review", {"valid": valid, "ruling_reason": "鉴定"}, "utility_leader")
    assert us.show(case.instance_id)["legal_state"] == state
    assert open_tasks(us, case) == {next_task: "utility_office"}
    names = json.loads((PROCESSES / "legal_states.json").read_text(encoding="utf-8"))
    assert names[state]["zh"] in ("鉴定为有效投诉", "鉴定为无效投诉")


# --- the half hours on the procedure's own hours (08:30-17:30) ----------------------------------

@pytest.mark.parametrize("received, due", [
    ("2026-05-06T12:10:00+08:00", "2026-05-06T12:40:00+08:00"),   # in hours: 30 minutes of clock time
    ("2026-10-09T18:00:00+08:00", "2026-10-10T09:00:00+08:00"),   # Fri evening; Sat 10-10 is a make-up working day
    ("2026-09-30T18:00:00+08:00", "2026-10-08T09:00:00+08:00"),   # National Day 10-01..07 off
    ("2026-05-08T17:40:00+08:00", "2026-05-09T09:00:00+08:00"),   # after closing; Sat 05-09 worked (Labour Day)
    ("2026-02-13T19:00:00+08:00", "2026-02-14T09:00:00+08:00"),   # Fri before Spring Festival; Sat 02-14 worked
    ("2026-02-14T18:00:00+08:00", "2026-02-24T09:00:00+08:00"),   # Spring Festival 02-15..23 off
])
def test_the_half_hour_to_the_office_counts_from_the_next_opening(us, clock, received, due):
    case = start(us, clock, received)
    handover = limits(us, case)["handover"]
    assert handover["unit"] == "minutes" and handover["amount"] == 30
    assert parse_instant(handover["due"]) == parse_instant(due)


def test_the_half_hour_to_the_department_counts_from_the_ruling_and_is_told_to_the_leader(us, clock, notifier):
    case = start(us, clock)
    do(us, case, "office_register", REGISTERED, "utility_office")
    clock.set(parse_instant("2026-05-06T16:50:00+08:00"))
    do(us, case, "leader_review", VALID, "utility_leader")
    assert parse_instant(limits(us, case)["dispatch"]["due"]) == parse_instant("2026-05-06T17:20:00+08:00")
    clock.set(parse_instant("2026-05-06T17:19:00+08:00"))
    us.tick()
    assert staff_notices(notifier) == []
    clock.set(parse_instant("2026-05-06T17:20:00+08:00"))
    us.tick()
    (told,) = staff_notices(notifier)
    assert told["to"] == "role:utility_leader" and "超过半小时仍未转交责任部门" in told["message"]
    assert limits(us, case)["dispatch"]["status"] == "breached"
    assert open_tasks(us, case) == {"dispatch": "utility_office"}      # the task stays with the office


# --- major complaints (001:249; a DMN decision table) -------------------------------------------

@pytest.mark.parametrize("criterion", CRITERIA)
def test_each_criterion_makes_a_major_complaint_that_goes_up_and_the_general_manager_decides(us, clock, notifier, criterion):
    case = start(us, clock, **{criterion: True})
    (report,) = staff_notices(notifier)
    assert report["to"] == "role:utility_general_manager" and "重大投诉RQ-2026-000001" in report["message"]
    do(us, case, "office_register", REGISTERED, "utility_office")
    do(us, case, "leader_review", VALID, "utility_leader")
    do(us, case, "dispatch", {"department": "管网运行部"}, "utility_office")
    do(us, case, "investigate", INVESTIGATED, "utility_department")
    assert open_tasks(us, case) == {"gm_decide": "utility_general_manager"}


def test_out_of_hours_an_urgent_complaint_phones_the_leader_and_a_non_urgent_one_waits(us, clock, notifier):
    urgent = start(us, clock, "2026-10-03T21:00:00+08:00")       # National Day, evening
    assert open_tasks(us, urgent) == {"judge_urgency": "utility_receiver"}
    do(us, urgent, "judge_urgency", {"urgent": "yes", "urgency_reason": "停气影响做饭"}, "utility_receiver")
    (call,) = staff_notices(notifier)
    assert call["to"] == "role:utility_leader" and "非工作时间接到紧急投诉" in call["message"]
    calm = start(us, clock)
    do(us, calm, "judge_urgency", {"urgent": "no", "urgency_reason": "账单疑问"}, "utility_receiver")
    assert len(staff_notices(notifier)) == 1 and open_tasks(us, calm) == {"office_register": "utility_office"}


# --- who sees the customer ----------------------------------------------------------------------

def test_only_the_receiver_and_the_office_see_who_complained(us, clock):
    roles = load_roles(PROCESSES)
    assert roles["utility_receiver"]["sees_identity"] is True and roles["utility_office"]["sees_identity"] is True
    for role in ("utility_leader", "utility_general_manager", "utility_department"):
        assert not roles[role].get("sees_identity"), role
    app = create_app(us, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    case = start(us, clock, safety_related=True)
    office = sign_in(app.test_client(), "utility_office").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "王女士" in office and "13800000000" in office
    do(us, case, "office_register", REGISTERED, "utility_office")
    do(us, case, "leader_review", VALID, "utility_leader")
    do(us, case, "dispatch", {"department": "管网运行部"}, "utility_office")
    investigate = open_task(us, case.instance_id, "investigate")["task_id"]
    department_page = sign_in(app.test_client(), "utility_department").get(f"/tasks/{investigate}").get_data(as_text=True)
    do(us, case, "investigate", INVESTIGATED, "utility_department")
    decide = open_task(us, case.instance_id, "gm_decide")["task_id"]
    for login, path in (("utility_leader", f"/cases/{case.instance_id}"),
                        ("utility_general_manager", f"/tasks/{decide}"),
                        ("utility_general_manager", f"/cases/{case.instance_id}")):
        page = sign_in(app.test_client(), login).get(path).get_data(as_text=True)
        assert "RQ-2026-000001" in page, (login, path)                  # the page is shown, without the customer
        assert "王女士" not in page and "13800000000" not in page, (login, path)
    assert "王女士" not in department_page and "13800000000" not in department_page and "书面调查结果" in department_page
