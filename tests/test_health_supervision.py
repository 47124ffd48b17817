"""health_supervision (卫生监督协管服务投诉举报接待制度, seed 000:134-145) through the service layer
with a controlled clock, on SQLite: what the scenario files in processes/tests/health_supervision
cannot say — form errors in Chinese with nothing stored, the legal states, the operator's one
number for the handling limit counted on real holidays, and who sees the complainant.

The rule (000:141): a general complaint or report (一般性的投诉举报问题) gets a reasonable handling
limit set by the institution — declared once in the BPMN (`start_handling_limit`, 10 working
days from the day of receipt) — and the complainant is told the result in time; the complainant's
private information is kept confidential (000:143). See docs/processes/health_supervision.md."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import Conflict, InvalidInput
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from webapp import sign_in

PROCESS = "health_supervision"
BPMN = PROCESSES / f"{PROCESS}.bpmn"

INTAKE = {
    "channel": "phone",
    "kind": "report",
    "received_at": "2026-09-28T10:00:00+08:00",
    "complainant": "陈女士",
    "contact": "13600000001",
    "respondent": "某小区二次供水泵房",
    "content": "小区二次供水水箱多年未清洗，自来水发黄有异味",
}
VERIFIED = {"verified_with": "phone", "verified_content": "水箱近三年未清洗，龙头出水发黄", "evidence": ["出水照片"]}
HANDLED = {"finding": "substantiated", "handling_result": "责令物业清洗消毒水箱并送检水质"}
QUESTION = {"inquiry_at": "2026-09-29T14:50:00+08:00", "inquiry_way": "phone", "inquiry_question": "何时清洗？"}
FED_BACK = {"feedback_way": "phone", "feedback_content": "已责令物业清洗消毒水箱", "complainant_opinion": "satisfied"}


@pytest.fixture
def hs(service, clock):
    service.deploy([BPMN])
    clock.set(at(INTAKE["received_at"]))          # Mon 2026-09-28, before National Day
    return service


def at(text):
    return parse_instant(text)


def start(hs, clock, received_at=None, **overrides):
    """Register a report; the clock stands at the moment of registration."""
    data = dict(INTAKE, **overrides)
    data["received_at"] = received_at or clock.now().isoformat()
    return hs.start(PROCESS, data, "health_reception")


def do(hs, case, task, data, user="health_reception"):
    return hs.complete_task(open_task(hs, case.instance_id, task)["task_id"], user, data)


def to_handling(hs, case, general=True, category="water"):
    do(hs, case, "verify", VERIFIED)
    do(hs, case, "classify", {"category": category, "general": general})


def handling_limit(hs, case):
    (limit,) = hs.show(case.instance_id)["deadlines"]
    assert limit["name"] == "handling"
    return limit


def open_tasks(hs, case):
    return {t["task"]: t["role"] for t in hs.list_tasks(instance_id=case.instance_id)}


# --- registration ------------------------------------------------------------------------------

def test_the_intake_forms_example_starts_a_case_and_the_complainant_is_told_of_confidentiality(hs, clock, notifier):
    form = json.loads((PROCESSES / "forms" / PROCESS / "intake.json").read_text(encoding="utf-8"))
    (example,) = form["examples"]
    clock.set(at(example["received_at"]))
    case = hs.start(PROCESS, example, "health_reception")
    assert case.case_number == "WS-2026-000001"
    assert open_tasks(hs, case) == {"verify": "health_reception"}    # 与投诉人核实 (000:139)
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == example["contact"]
    assert "核实投诉内容" in ack["message"] and "严格保密" in ack["message"]


def test_registration_refuses_bad_data_in_chinese_and_stores_nothing(hs, clock, notifier):
    without_contact = {k: v for k, v in INTAKE.items() if k != "contact"}
    with pytest.raises(InvalidInput) as err:
        hs.start(PROCESS, dict(without_contact, channel="fax", note="x"), "health_reception")
    zh = err.value.field_texts("zh")
    assert {"contact", "channel"} <= set(zh)
    assert all(re.search(r"[\u4e00-\u9fff]", text) for texts in zh.values() for text in texts), zh
    assert hs.list_cases() == [] and notifier.sent == []


def test_a_classification_without_saying_whether_it_is_general_is_refused_and_nothing_moves(hs, clock, notifier):
    case = start(hs, clock)
    do(hs, case, "verify", VERIFIED)
    before = hs.show(case.instance_id)
    sent = len(notifier.sent)
    with pytest.raises(InvalidInput) as err:
        do(hs, case, "classify", {"category": "sewage"})
    zh = err.value.field_texts("zh")
    assert {"category", "general"} <= set(zh)
    after = hs.show(case.instance_id)
    assert after["row_version"] == before["row_version"] and after["deadlines"] == []
    assert open_tasks(hs, case) == {"classify": "health_reception"} and len(notifier.sent) == sent


def test_a_shortcoming_must_be_named_before_a_correction_is_ordered(hs, clock):
    case = start(hs, clock)
    to_handling(hs, case)
    do(hs, case, "handle", HANDLED, user="health_department")
    do(hs, case, "feedback", FED_BACK)
    with pytest.raises(InvalidInput) as err:
        do(hs, case, "evaluate", {"evaluation": "correction_needed", "evaluation_note": "超时"}, user="health_supervisor")
    assert "shortcomings" in err.value.field_texts("zh")
    assert hs.show(case.instance_id)["legal_state"] == "transferred"


# --- legal states --------------------------------------------------------------------------------

def test_legal_states_transferred_then_correction_ordered(hs, clock):
    case = start(hs, clock)
    do(hs, case, "verify", VERIFIED)
    assert hs.show(case.instance_id)["legal_state"] is None
    do(hs, case, "classify", {"category": "school", "general": True})
    assert hs.show(case.instance_id)["legal_state"] == "transferred"          # 转交相关部门 (000:140)
    assert hs.case_detail(case.instance_id)["data"]["department"] == "学校卫生监督科"
    do(hs, case, "handle", HANDLED, user="health_department")
    do(hs, case, "feedback", FED_BACK)
    do(hs, case, "evaluate", {"evaluation": "correction_needed", "evaluation_note": "回访发现",
                              "shortcomings": "处理结果未写明复查时间"}, user="health_supervisor")
    shown = hs.show(case.instance_id)
    assert shown["legal_state"] == "correction_ordered" and shown["status"] == "running"  # 及时纠正 (000:144)
    do(hs, case, "rectify", {"rectification": "补充复查时间并通知投诉人"}, user="health_department")
    assert hs.show(case.instance_id)["status"] == "completed"
    assert hs.replay(case.instance_id).consistent is True


# --- the operator's limit on the business calendar -----------------------------------------------

@pytest.mark.parametrize("received, last_day", [
    ("2026-09-28T10:00:00+08:00", "2026-10-16"),   # Mon: 09-29, 09-30, 10-08, 09, Sat 10-10 worked, 12 .. 16
    ("2026-09-30T16:00:00+08:00", "2026-10-20"),   # Wed: National Day 10-01..07 off
    ("2026-04-29T10:00:00+08:00", "2026-05-15"),   # Wed: Labour Day 05-01..05 off, Sat 05-09 worked
    ("2026-02-13T10:00:00+08:00", "2026-03-05"),   # Fri before Spring Festival: 02-15..23 off, Sat 02-14 and 02-28 worked
])
def test_ten_working_days_from_the_day_of_receipt_across_holidays(hs, clock, received, last_day):
    clock.set(at(received))
    case = start(hs, clock)
    to_handling(hs, case)
    limit = handling_limit(hs, case)
    assert limit["unit"] == "workdays" and limit["amount"] == 10 and limit["seed"] == "000:141"
    assert limit["last_day"] == last_day and limit["status"] == "open"


def test_a_letter_counts_from_its_receipt_not_from_when_it_was_typed_in(hs, clock):
    clock.set(at("2026-10-09T09:00:00+08:00"))          # typed in Fri after National Day
    case = start(hs, clock, received_at="2026-09-30T15:00:00+08:00", channel="letter")
    to_handling(hs, case)
    assert handling_limit(hs, case)["last_day"] == "2026-10-20"


def test_the_limit_passes_at_the_first_minute_after_its_last_day_and_the_lead_supervises(hs, clock, notifier):
    case = start(hs, clock)
    to_handling(hs, case)
    clock.set(at("2026-10-16T23:59:00+08:00"))
    hs.tick()
    assert "supervise" not in open_tasks(hs, case)
    clock.set(at("2026-10-17T00:00:00+08:00"))
    hs.tick()
    assert open_tasks(hs, case) == {"handle": "health_department", "supervise": "health_supervisor"}
    assert handling_limit(hs, case)["status"] == "breached"
    assert notifier.sent[-1]["to"] == "role:health_supervisor" and "超过处理时限" in notifier.sent[-1]["message"]
    assert hs.replay(case.instance_id).consistent is True


def test_the_operator_changes_one_number_and_new_cases_count_with_it(service, clock, tmp_path):
    """The limit is one constant in the BPMN (000:141 leaves it to the institution)."""
    copy = tmp_path / "processes"
    copy.mkdir()
    # the process, its table and the shared registries beside it (roles.json, ...)
    for path in [PROCESSES / f"{PROCESS}.bpmn", PROCESSES / f"{PROCESS}_dispatch.dmn", *PROCESSES.glob("*.json")]:
        shutil.copy(path, copy / path.name)
    for folder in (PROCESS, "common"):
        shutil.copytree(PROCESSES / "forms" / folder, copy / "forms" / folder)
    clock.set(at(INTAKE["received_at"]))
    xml = (copy / f"{PROCESS}.bpmn").read_text(encoding="utf-8")
    start_task = re.search(r'<bpmn:serviceTask id="start_handling_limit".*?</bpmn:serviceTask>', xml, re.S).group(0)
    amounts = re.findall(r'<spiffworkflow:parameter id="amount" type="int" value="(\d+)" />', start_task)
    assert amounts == ["10"]
    (copy / f"{PROCESS}.bpmn").write_text(xml.replace(start_task, start_task.replace('value="10"', 'value="15"')),
                                          encoding="utf-8")
    service.deploy([copy / f"{PROCESS}.bpmn"])
    case = start(service, clock)
    to_handling(service, case)
    limit = handling_limit(service, case)
    assert limit["amount"] == 15 and limit["last_day"] == "2026-10-23"   # five more working days after 10-16


def test_a_case_that_is_not_general_runs_to_the_moment_the_lead_sets(hs, clock):
    case = start(hs, clock)
    to_handling(hs, case, general=False, category="illegal_practice")
    assert open_tasks(hs, case) == {"set_limit": "health_supervisor"} and hs.show(case.instance_id)["deadlines"] == []
    with pytest.raises(InvalidInput) as err:
        do(hs, case, "set_limit", {"handling_due_at": "十月底"}, user="health_supervisor")
    assert {"handling_due_at", "limit_reason"} <= set(err.value.field_texts("zh"))
    do(hs, case, "set_limit", {"handling_due_at": "2026-10-30T17:00", "limit_reason": "需会同公安联合调查"},
       user="health_supervisor")
    limit = handling_limit(hs, case)
    assert limit["unit"] == "at" and limit["due"] == "2026-10-30T09:00:00+00:00"


# --- the complainant's question during handling (000:142) ----------------------------------------

def test_the_complainants_question_is_answered_while_handling_goes_on_and_refused_after(hs, clock):
    case = start(hs, clock)
    to_handling(hs, case)
    question = QUESTION
    hs.send_message(case.instance_id, "complainant_inquiry", question, "health_reception")
    hs.send_message(case.instance_id, "complainant_inquiry", question, "health_reception")   # asked again
    tasks = [t["task"] for t in hs.list_tasks(instance_id=case.instance_id)]
    assert sorted(tasks) == ["answer_inquiry", "answer_inquiry", "handle"]
    assert handling_limit(hs, case)["status"] == "open" and handling_limit(hs, case)["last_day"] == "2026-10-16"
    do(hs, case, "answer_inquiry", {"progress_told": "正在现场检查", "inquiry_answer": "检查后将及时反馈您"})
    do(hs, case, "handle", HANDLED, user="health_department")
    do(hs, case, "feedback", FED_BACK)
    before = hs.show(case.instance_id)["row_version"]
    with pytest.raises(Conflict):
        hs.send_message(case.instance_id, "complainant_inquiry", question, "health_reception")
    assert hs.show(case.instance_id)["row_version"] == before
    assert hs.replay(case.instance_id).consistent is True


# --- confidentiality (000:143) -------------------------------------------------------------------

def test_only_the_desk_sees_who_complained(hs, clock):
    roles = load_roles(PROCESSES)
    assert roles["health_reception"].get("sees_identity") is True
    assert not roles["health_department"].get("sees_identity") and not roles["health_supervisor"].get("sees_identity")
    app = create_app(hs, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    case = start(hs, clock)
    to_handling(hs, case)
    hs.send_message(case.instance_id, "complainant_inquiry", QUESTION, "health_reception")
    desk = sign_in(app.test_client(), "health_reception").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "陈女士" in desk and "13600000001" in desk
    answer = open_task(hs, case.instance_id, "answer_inquiry")["task_id"]    # the desk calls back
    page = sign_in(app.test_client(), "health_reception").get(f"/tasks/{answer}").get_data(as_text=True)
    assert "13600000001" in page
    handle = open_task(hs, case.instance_id, "handle")["task_id"]
    do(hs, case, "handle", HANDLED, user="health_department")
    do(hs, case, "feedback", FED_BACK)
    evaluate = open_task(hs, case.instance_id, "evaluate")["task_id"]
    for login, path in (("health_department", f"/tasks/{handle}"), ("health_department", f"/cases/{case.instance_id}"),
                        ("health_supervisor", f"/tasks/{evaluate}"), ("health_supervisor", f"/cases/{case.instance_id}")):
        page = sign_in(app.test_client(), login).get(path).get_data(as_text=True)
        assert "陈女士" not in page and "13600000001" not in page and "（保密）" in page, (login, path)
