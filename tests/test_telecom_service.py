"""telecom_service (tower company 001:222-239; mobile big-customer centre 003:235-243; IT
department 002:279-331) through the service layer with a controlled clock: what the scenario
files in processes/tests/telecom_service cannot say — form errors in Chinese with nothing
stored, the legal state of requests that are not complaints, the priority of direct and
widespread complaints, the promise loop on real holidays and its bound, the rounds on the case
page, and who sees the customer. See docs/processes/telecom_service.md."""

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

PROCESS = "telecom_service"
INTAKE = json.loads((PROCESSES / "forms" / PROCESS / "intake.json").read_text(encoding="utf-8"))["examples"][0]
SMS = "尊敬的客户您好,您反映的问题我们已反馈至业务部门,有处理结果后会马上联系您,请您注意接听电话。"


@pytest.fixture
def ts(service, clock):
    service.deploy([PROCESSES / f"{PROCESS}.bpmn"])
    clock.set(parse_instant("2026-05-06T09:30:00+08:00"))     # Wednesday after Labour Day
    return service


def at(text):
    return parse_instant(text)


def start(ts, clock, moment=None, **overrides):
    if moment:
        clock.set(at(moment))
        overrides.setdefault("received_at", moment)
    return ts.start(PROCESS, dict(INTAKE, **overrides), "telecom_ops_dept")


def do(ts, clock, case, task, data, user, moment=None):
    if moment:
        clock.set(at(moment))
    return ts.complete_task(open_task(ts, case.instance_id, task)["task_id"], user, data)


def open_tasks(ts, case):
    return {t["task"]: t["role"] for t in ts.list_tasks(instance_id=case.instance_id)}


def promise(ts, case):
    return next((d for d in ts.show(case.instance_id)["deadlines"] if d["name"] == "promise"), None)


def unresolved(promised, answer="正在处理"):
    return {"answer": answer, "resolved": False, "promised_at": promised, "expected_solution": "更换设备"}


def to_the_city_unit(ts, clock, case, moment=None):
    do(ts, clock, case, "dispatch", {"responsible_unit": "西安分公司", "difficult": False}, "telecom_ops_dept", moment)


# --- registration ----------------------------------------------------------------------------

def test_the_intake_forms_example_starts_a_case_and_the_customer_gets_the_fixed_sms_at_once(ts, clock, notifier):
    case = start(ts, clock)
    assert case.case_number == "TT-2026-000001"
    assert open_tasks(ts, case) == {"dispatch": "telecom_ops_dept"}
    (sms,) = notifier.sent
    assert sms["kind"] == "acknowledgement" and sms["to"] == INTAKE["contact"]                          # 001:239
    assert sms["message"] == SMS[:-1] + "，编号 TT-2026-000001。"
    data = ts.case_detail(case.instance_id)["data"]
    assert (data["track"], data["priority"]) == ("complaint", 3)
    assert ts.replay(case.instance_id).consistent is True


def test_registration_refuses_bad_data_in_chinese_and_stores_nothing(ts, clock, notifier):
    data = {k: v for k, v in INTAKE.items() if k not in ("contact", "widespread")}
    with pytest.raises(InvalidInput) as err:
        ts.start(PROCESS, dict(data, request_type="praise", received_at="2026-05-06T10:00"), "telecom_ops_dept")
    zh = err.value.field_texts("zh")
    assert {"contact", "widespread", "request_type", "received_at"} <= set(zh), zh
    assert all(re.search(r"[\u4e00-\u9fff]", text) for texts in zh.values() for text in texts), zh
    assert "「收到诉求时间」不能晚于现在（2026-05-06 09:30）" in zh["received_at"][0]
    assert ts.list_cases() == [] and notifier.sent == []


@pytest.mark.parametrize("overrides, priority", [
    ({"complaint_level": "direct"}, 1),                                   # 002:297, 313
    ({"widespread": True}, 1),                                            # 002:313
    ({"major_or_sudden": True}, 2),                                       # 001:238: warned, not first
    ({}, 3),
])
def test_direct_and_widespread_complaints_come_first(ts, clock, overrides, priority):
    case = start(ts, clock, **overrides)
    assert ts.case_detail(case.instance_id)["data"]["priority"] == priority


def test_a_major_and_sudden_complaint_is_a_service_warning_to_the_provincial_unit(ts, clock, notifier):
    start(ts, clock, major_or_sudden=True)
    warnings = [n for n in notifier.sent if n["kind"] == "staff"]
    assert [n["to"] for n in warnings] == ["role:telecom_provincial_unit"]
    assert "服务预警" in warnings[0]["message"] and INTAKE["content"] in warnings[0]["message"]


# --- legal state: inquiries, suggestions and 督办 requests are not complaints (001:225-228) -------

@pytest.mark.parametrize("request_type, task, role", [
    ("inquiry", "answer_request", "telecom_ops_dept"),
    ("suggestion", "answer_request", "telecom_ops_dept"),
    ("supervision_request", "supervision_check", "telecom_provincial_unit"),
])
def test_requests_that_are_not_complaints_are_marked_and_get_no_work_order(ts, clock, request_type, task, role):
    case = start(ts, clock, request_type=request_type)
    shown = ts.show(case.instance_id)
    assert shown["legal_state"] == "telecom_not_complaint"
    assert open_tasks(ts, case) == {task: role} and shown["deadlines"] == []


def test_a_complaint_has_no_legal_state(ts, clock):
    case = start(ts, clock)
    assert ts.show(case.instance_id)["legal_state"] is None


# --- the promise loop (003:235) ----------------------------------------------------------------

def test_a_promised_time_in_the_past_is_refused_in_chinese_and_nothing_changes(ts, clock, notifier):
    case = start(ts, clock)
    to_the_city_unit(ts, clock, case)
    clock.set(at("2026-05-06T11:00"))
    before = ts.show(case.instance_id)
    with pytest.raises(InvalidInput) as err:
        do(ts, clock, case, "handle", unresolved("2026-05-06T10:00"), "telecom_city_unit")
    assert err.value.field_texts("zh")["promised_at"] == ["「承诺答复时间」须晚于现在（2026-05-06 11:00），现为 2026-05-06 10:00"]
    with pytest.raises(InvalidInput) as err:                   # unresolved without a promise
        do(ts, clock, case, "handle", {"answer": "处理中", "resolved": False}, "telecom_city_unit")
    assert {"promised_at", "expected_solution"} <= set(err.value.field_texts("zh"))
    after = ts.show(case.instance_id)
    assert after["row_version"] == before["row_version"] and after["deadlines"] == []
    assert open_tasks(ts, case) == {"handle": "telecom_city_unit"}
    assert [n["kind"] for n in notifier.sent] == ["acknowledgement"]     # only the SMS at registration


def test_a_promise_over_national_day_is_due_at_its_moment_and_supervised_when_missed(ts, clock, notifier):
    case = start(ts, clock, "2026-09-30T09:00")
    to_the_city_unit(ts, clock, case)
    do(ts, clock, case, "handle", unresolved("2026-10-03T15:00"), "telecom_city_unit", "2026-09-30T16:00")
    receipt = notifier.sent[-1]
    assert receipt["kind"] == "receipt" and "2026年10月03日 15:00" in receipt["message"]
    limit = promise(ts, case)
    assert (limit["due"], limit["unit"], limit["round"]) == ("2026-10-03T07:00:00+00:00", "at", 1)
    assert open_task(ts, case.instance_id, "answer_promise")["due"] == limit["due"]
    clock.set(at("2026-10-03T14:59"))
    assert ts.tick()["timers_fired"] == 0 and "supervise" not in open_tasks(ts, case)
    clock.set(at("2026-10-03T15:00"))                          # a Saturday of National Day: no rolling forward
    assert ts.tick()["timers_fired"] == 1
    assert open_tasks(ts, case) == {"answer_promise": "telecom_city_unit", "supervise": "telecom_provincial_unit"}
    assert promise(ts, case)["status"] == "breached"


LAST_UNRESOLVED = {"answer": "合同条款存在争议，需上级协调", "resolved": False, "expected_solution": "提交联席会议"}


def to_the_last_round(ts, clock):
    case = start(ts, clock, "2027-02-03T10:00")
    to_the_city_unit(ts, clock, case)
    do(ts, clock, case, "handle", unresolved("2027-02-05T17:00"), "telecom_city_unit", "2027-02-04T09:00")
    do(ts, clock, case, "answer_promise", unresolved("2027-02-09T10:00"), "telecom_city_unit", "2027-02-05T16:00")
    do(ts, clock, case, "answer_promise", unresolved("2027-02-10T10:00"), "telecom_city_unit", "2027-02-09T09:00")
    return case


def test_three_rounds_then_the_joint_meeting(ts, clock):
    case = to_the_last_round(ts, clock)
    assert promise(ts, case)["round"] == 3
    assert ts.case_detail(case.instance_id)["data"]["promise"]["rounds_left"] == 0
    # the last round has its own task, whose form asks for no further promised time
    assert open_tasks(ts, case) == {"answer_promise_last": "telecom_city_unit"}
    do(ts, clock, case, "answer_promise_last", LAST_UNRESOLVED, "telecom_city_unit", "2027-02-10T09:00")
    assert open_tasks(ts, case) == {"difficult_review": "telecom_joint_meeting"}
    limit = promise(ts, case)
    assert (limit["round"], limit["status"]) == (3, "met")             # no fourth round
    starts = [e["payload"]["outputs"] for e in ts.history(case.instance_id)
              if e["kind"] == "handler_called" and e["payload"].get("handler") == "deadline.start"]
    assert [(s["round"], s.get("previous", {}).get("status")) for s in starts] == [(1, None), (2, "met"), (3, "met")]


def test_the_last_rounds_form_asks_for_no_promised_time_and_refuses_one(ts, clock, notifier):
    case = to_the_last_round(ts, clock)
    task = open_task(ts, case.instance_id, "answer_promise_last")
    form = ts.case_detail(case.instance_id)["forms"][task["form"]]
    assert "promised_at" not in form["properties"] and "不再承诺答复时间" in form["description"]
    assert "promised_at" in ts.case_detail(case.instance_id)["forms"]["telecom_service/answer.json"]["properties"]
    before = (ts.show(case.instance_id), len(ts.history(case.instance_id)), len(notifier.sent))
    clock.set(at("2027-02-10T09:00"))
    with pytest.raises(InvalidInput) as err:       # a fourth promise would start nothing: not taken
        ts.complete_task(task["task_id"], "telecom_city_unit", dict(LAST_UNRESOLVED, promised_at="2027-02-12T10:00"))
    assert "promised_at" in str(err.value)
    with pytest.raises(InvalidInput) as err:       # unresolved: the joint meeting needs the expected solution
        ts.complete_task(task["task_id"], "telecom_city_unit", {"answer": "仍在处理", "resolved": False})
    assert set(err.value.field_texts("zh")) == {"expected_solution"}
    assert (ts.show(case.instance_id), len(ts.history(case.instance_id)), len(notifier.sent)) == before


def test_resolved_in_the_last_round_goes_to_feedback_and_its_promise_is_met(ts, clock):
    case = to_the_last_round(ts, clock)
    do(ts, clock, case, "answer_promise_last", {"answer": "已出具更正账单", "resolved": True}, "telecom_city_unit",
       "2027-02-10T09:00")
    assert open_tasks(ts, case) == {"feedback": "telecom_city_unit"}
    assert (promise(ts, case)["round"], promise(ts, case)["status"]) == (3, "met")


def test_the_last_rounds_promised_time_passing_is_supervised(ts, clock):
    case = to_the_last_round(ts, clock)
    clock.set(at("2027-02-10T10:00"))
    assert ts.tick()["timers_fired"] == 1
    assert open_tasks(ts, case) == {"answer_promise_last": "telecom_city_unit", "supervise": "telecom_provincial_unit"}
    assert promise(ts, case)["status"] == "breached"


def test_the_case_page_lists_the_rounds(ts, clock):
    roles = load_roles(PROCESSES)
    app = create_app(ts, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    case = start(ts, clock, "2026-09-29T09:00")
    to_the_city_unit(ts, clock, case)
    do(ts, clock, case, "handle", unresolved("2026-09-30T17:00"), "telecom_city_unit", "2026-09-29T10:00")
    do(ts, clock, case, "answer_promise", unresolved("2026-10-08T10:00"), "telecom_city_unit", "2026-09-30T16:00")
    page = sign_in(app.test_client(), "telecom_ops_dept").get(f"/cases/{case.case_number}").get_data(as_text=True)
    block = re.search(r'<div class="rounds" data-deadline="promise">(.*?)</div>', page, re.S).group(1)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", block))
    assert "承诺答复时间：第 2 轮（最多 3 轮）" in text, text
    assert "第 1 轮：承诺 2026-09-30 17:00 · 2026-09-30 16:00 已答复" in text, text
    assert "第 2 轮：承诺 2026-10-08 10:00 · 进行中" in text, text


# --- who sees the customer ------------------------------------------------------------------------

def test_the_joint_meeting_does_not_see_who_complained_the_city_unit_does(ts, clock):
    roles = load_roles(PROCESSES)
    assert roles["telecom_ops_dept"]["sees_identity"] is True and roles["telecom_city_unit"]["sees_identity"] is True
    app = create_app(ts, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    case = start(ts, clock)
    do(ts, clock, case, "dispatch", {"responsible_unit": "西安分公司", "difficult": True}, "telecom_ops_dept")
    meeting = open_task(ts, case.instance_id, "joint_meeting")["task_id"]
    for login, path, sees in (("telecom_ops_dept", f"/cases/{case.instance_id}", True),
                              ("telecom_joint_meeting", f"/tasks/{meeting}", False),
                              ("telecom_joint_meeting", f"/cases/{case.instance_id}", False)):
        page = sign_in(app.test_client(), login).get(path).get_data(as_text=True)
        assert case.case_number in page, (login, path)
        assert ("王经理" in page and "13800000000" in page) is sees, (login, path)
    do(ts, clock, case, "joint_meeting", {"meeting_resolution": "省建维部协调"}, "telecom_joint_meeting")
    handle = open_task(ts, case.instance_id, "handle")["task_id"]
    page = sign_in(app.test_client(), "telecom_city_unit").get(f"/tasks/{handle}").get_data(as_text=True)
    assert "王经理" in page and "13800000000" in page          # the city unit phones the customer
