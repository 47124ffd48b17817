"""school (小学投诉处理机制, seed 002:169-277) through the service layer with a controlled clock:
what the scenario files cannot say — form errors in Chinese with nothing stored, the legal state
the administrative meeting's finding sets, the 7 working days and the weekly report on real
holidays, extensions without a cap, the complainant's request for a reply, and who sees what.

The rules: the office records complaints by phone, visit, letter and the complaint box, the box
being opened weekly (002:185-193); it records, files and tells the leader, replies first by phone
and investigates with the related department (002:251-255); the result goes in writing to the
administrative meeting, which decides (002:257, 265); matters within the office's remit are
handled within seven working days, extended with the leader's approval and the complainant told
(002:275); the records are reported to the administrative meeting weekly (002:261).
See docs/processes/school.md."""

from __future__ import annotations

import json

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.confidentiality import identity_fields, may_see_identity
from complaintflow.engine.errors import Conflict, InvalidInput, NotAllowed
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from webapp import sign_in

PROCESS = "school"
OFFICE, LEADER, MEETING = "school_office", "school_leader", "school_admin_meeting"
# the intake form's own example: a box complaint, the box opened Mon 2026-09-28 16:00
INTAKE = json.loads((PROCESSES / "forms" / PROCESS / "intake.json").read_text(encoding="utf-8"))["examples"][0]
RECORDED = {"outcome": "within_remit", "record_note": "已填写投诉记录表和受理记录表"}
FIRST_REPLY = {"called_at": "2026-09-29T11:00:00+08:00", "first_reply_note": "已电话告知家长学校已受理"}
INVESTIGATED = {"outcome": "completed", "departments": ["德育处"], "complainant_heard": True, "respondent_heard": True,
                "progress_call": "已电话告知调查进展", "findings": "老师确有当众讽刺学生的言行",
                "written_report": "调查报告已书面上交"}
SUBSTANTIATED = {"meeting_date": "2026-10-12", "substantiated": True, "penalty": "written_self_criticism",
                 "corrective_measures": "召开师德专题会议", "apology_required": True,
                 "decision": "投诉属实，责成该教师作个人书面检查并向学生致歉"}


@pytest.fixture
def xx(service):
    service.deploy([PROCESSES / f"{PROCESS}.bpmn"])
    return service


def at(text):
    return parse_instant(text)


def start(xx, clock, registered="2026-09-29T09:00:00+08:00", **overrides):
    clock.set(at(registered))
    return xx.start(PROCESS, dict(INTAKE, **overrides), OFFICE)


def do(xx, case, task, data, user=OFFICE, **kw):
    return xx.complete_task(open_task(xx, case.instance_id, task)["task_id"], user, data, **kw)


def tasks(xx, case):
    return {t["task"]: t["role"] for t in xx.list_tasks(instance_id=case.instance_id)}


def limit(xx, case, name):
    return next(d for d in xx.show(case.instance_id)["deadlines"] if d["name"] == name)


def to_investigation(xx, case):
    do(xx, case, "record", RECORDED)
    do(xx, case, "first_reply", FIRST_REPLY)


def ask_extension(xx, case, days):
    do(xx, case, "investigate", {"outcome": "extension", "progress_call": "已电话说明", "requested_workdays": days,
                                 "extension_reason": "需调取课堂监控并听取多名学生意见"})


# --- registration -------------------------------------------------------------------------------

def test_the_intake_example_registers_a_box_complaint_counted_from_the_weekly_opening(xx, clock, notifier):
    case = start(xx, clock)                       # typed in Tue 09-29; the box was opened Mon 09-28
    assert case.case_number == "XS-2026-000001"
    assert tasks(xx, case) == {"record": OFFICE}
    handle = limit(xx, case, "handle")
    # 7 working days after Mon 09-28: 29, 30, (National Day 10-01..07), 08, 09, Sat 10 (make-up), 12, 13.
    # Counted from the typing-in (09-29) it would end a day later, 10-14.
    assert (handle["unit"], handle["amount"], handle["seed"]) == ("workdays", 7, "002:275")
    assert handle["last_day"] == "2026-10-13" and handle["due"] == "2026-10-13T16:00:00+00:00"
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == INTAKE["contact"]
    assert ack["message"] == ("您反映的问题已由学校办公室登记（特别复杂的，经主管领导批准可以适当延长，届时将向您说明情况），"
                              "编号 XS-2026-000001。作出处理：最迟于2026年10月13日。")


def test_a_phone_call_counts_from_its_registration(xx, clock):
    phone = {k: v for k, v in INTAKE.items() if k != "received_at"}
    clock.set(at("2026-09-29T09:00:00+08:00"))
    case = xx.start(PROCESS, dict(phone, channel="phone"), OFFICE)
    assert limit(xx, case, "handle")["last_day"] == "2026-10-14"


def test_intake_errors_are_named_in_chinese_and_nothing_is_registered(xx, clock, notifier):
    bad = {k: v for k, v in INTAKE.items() if k not in ("received_at", "respondent")}
    with pytest.raises(InvalidInput) as err:                 # a box complaint needs the opening time
        xx.start(PROCESS, dict(bad, category="homework"), OFFICE)
    texts = err.value.field_texts("zh")
    assert set(texts) == {"received_at", "respondent", "category"}
    assert "「收到投诉时间」必填" in texts["received_at"][0]
    assert "「被投诉部门（个人）」必填" in texts["respondent"][0]
    assert "违反师德规范" in texts["category"][0]              # the choices are named
    assert xx.list_cases() == [] and notifier.sent == []


# --- the record ---------------------------------------------------------------------------------

def test_record_errors_leave_the_case_as_it_was(xx, clock, notifier):
    case = start(xx, clock)
    before = len(xx.history(case.instance_id))
    with pytest.raises(InvalidInput) as err:
        do(xx, case, "record", {"outcome": "outside_remit", "record_note": "反映校外培训机构"})
    assert "「向投诉人作出的明确解释（查明的原因）」必填" in err.value.field_texts("zh")["explanation"][0]
    with pytest.raises(InvalidInput) as err:
        do(xx, case, "record", {"outcome": "on_spot", "record_note": "来访"})
    assert "当场解决情况" in err.value.field_texts("zh")["on_spot_resolution"][0]
    assert tasks(xx, case) == {"record": OFFICE} and len(xx.history(case.instance_id)) == before
    assert [d["name"] for d in xx.show(case.instance_id)["deadlines"]] == ["handle"]
    assert len(notifier.sent) == 1


def test_filing_tells_the_leader_and_the_week_to_the_meeting_rolls_over_national_day(xx, clock, notifier):
    case = start(xx, clock)
    clock.set(at("2026-09-29T10:00:00+08:00"))
    do(xx, case, "record", RECORDED)
    assert tasks(xx, case) == {"first_reply": OFFICE, "weekly_report": OFFICE}
    told = notifier.sent[-1]
    assert (told["kind"], told["to"]) == ("staff", f"role:{LEADER}")
    assert "XS-2026-000001" in told["message"] and "德育处" in told["message"]     # routed by the DMN table
    week = limit(xx, case, "weekly_report")
    # a week after Tue 09-29 is Tue 10-06, a National Day holiday: rolled forward to Thu 10-08
    assert (week["unit"], week["amount"], week["last_day"], week["seed"]) == ("days", 7, "2026-10-08", "002:261")
    clock.set(at("2026-10-08T23:59:00+08:00"))
    assert xx.tick()["timers_fired"] == 0
    clock.set(at("2026-10-09T00:00:00+08:00"))
    assert xx.tick()["timers_fired"] == 1
    assert limit(xx, case, "weekly_report")["status"] == "breached"
    assert "建档已满一周仍未呈报校行政会" in notifier.sent[-1]["message"]
    assert notifier.sent[-1]["to"] == f"role:{LEADER}"
    assert tasks(xx, case) == {"first_reply": OFFICE, "weekly_report": OFFICE}     # still to be reported


# --- investigation, the meeting, the legal state ---------------------------------------------------

def test_an_investigation_hears_both_sides_before_it_goes_to_the_meeting(xx, clock):
    case = start(xx, clock)
    to_investigation(xx, case)
    with pytest.raises(InvalidInput) as err:                 # 双方意见都要听取 (002:273)
        do(xx, case, "investigate", dict(INVESTIGATED, respondent_heard=False))
    assert set(err.value.field_texts("zh")) == {"respondent_heard"}
    assert tasks(xx, case) == {"investigate": OFFICE, "weekly_report": OFFICE}
    do(xx, case, "investigate", INVESTIGATED)
    assert tasks(xx, case) == {"meeting_decision": MEETING, "weekly_report": OFFICE}


def test_the_meetings_finding_sets_the_legal_state_and_a_substantiated_one_needs_the_penalty(xx, clock):
    case = start(xx, clock)
    to_investigation(xx, case)
    do(xx, case, "investigate", INVESTIGATED)
    clock.set(at("2026-10-12T16:00:00+08:00"))
    with pytest.raises(InvalidInput) as err:
        do(xx, case, "meeting_decision", {k: v for k, v in SUBSTANTIATED.items() if k != "penalty"}, user=MEETING)
    assert "「对被投诉者的处理」必填" in err.value.field_texts("zh")["penalty"][0]
    assert xx.show(case.instance_id)["legal_state"] is None and limit(xx, case, "handle")["status"] == "open"
    do(xx, case, "meeting_decision", SUBSTANTIATED, user=MEETING)
    shown = xx.show(case.instance_id)
    assert shown["legal_state"] == "substantiated"
    assert limit(xx, case, "handle")["status"] == "met"
    assert tasks(xx, case) == {"reply_result": OFFICE, "weekly_report": OFFICE}


def test_an_unsubstantiated_complaint_is_recorded_as_such(xx, clock):
    case = start(xx, clock)
    to_investigation(xx, case)
    do(xx, case, "investigate", INVESTIGATED)
    do(xx, case, "meeting_decision", {"meeting_date": "2026-09-30", "substantiated": False,
                                      "decision": "投诉问题不属实，向家长说明情况"}, user=MEETING)
    assert xx.show(case.instance_id)["legal_state"] == "not_substantiated"


# --- the seven working days, supervision, extension ------------------------------------------------

def test_seven_working_days_over_national_day_then_the_leader_supervises(xx, clock, notifier):
    case = start(xx, clock)
    to_investigation(xx, case)
    do(xx, case, "weekly_report", {"report_date": "2026-09-30", "report_note": "本周投诉1件，正在调查"})
    clock.set(at("2026-10-13T23:59:00+08:00"))
    assert xx.tick()["timers_fired"] == 0
    assert tasks(xx, case) == {"investigate": OFFICE}
    clock.set(at("2026-10-14T00:00:00+08:00"))
    assert xx.tick()["timers_fired"] == 1
    assert tasks(xx, case) == {"investigate": OFFICE, "supervise": LEADER}
    handle = limit(xx, case, "handle")
    assert handle["status"] == "breached" and handle["breached_at"] == "2026-10-13T16:00:00+00:00"
    assert any(n["to"] == f"role:{LEADER}" and "已超过处理时限仍未作出处理" in n["message"] for n in notifier.sent)
    # past the limit the office is still told when the complainant asks for a reply (002:275)
    xx.send_message(case.instance_id, "reply_request", {"requested_at": "2026-10-14T08:00:00+08:00",
                                                         "request_way": "visit", "request_note": "家长到校要求答复"},
                    OFFICE, roles={OFFICE})
    assert notifier.sent[-1]["to"] == f"role:{OFFICE}" and "家长到校要求答复" in notifier.sent[-1]["message"]


def test_extensions_have_no_cap_and_the_complainant_is_told_each_one(xx, clock, notifier):
    case = start(xx, clock)
    to_investigation(xx, case)
    for days, last_day in ((3, "2026-10-16"), (5, "2026-10-23"), (10, "2026-11-06")):
        ask_extension(xx, case, days)
        do(xx, case, "approve_extension", {"approved": True, "extra_workdays": days, "approval_opinion": "同意"},
           user=LEADER)
        told = notifier.sent[-1]
        assert told["kind"] == "acknowledgement" and told["to"] == INTAKE["contact"]
        assert f"处理时间延长{days}个工作日" in told["message"] and "需调取课堂监控" in told["message"]
        assert limit(xx, case, "handle")["last_day"] == last_day
    assert limit(xx, case, "handle")["extended_by"] == 18      # 7 + 18 working days, no cap
    assert xx.case_detail(case.instance_id)["data"]["extension_count"] == 3


def test_an_extension_approved_after_the_limit_ran_out_is_refused_with_the_reason(xx, clock, notifier):
    case = start(xx, clock)
    to_investigation(xx, case)
    ask_extension(xx, case, 3)
    clock.set(at("2026-10-14T09:00:00+08:00"))
    do(xx, case, "approve_extension", {"approved": True, "extra_workdays": 3, "approval_opinion": "同意"}, user=LEADER)
    assert limit(xx, case, "handle")["extended_by"] == 0
    (told,) = [n for n in notifier.sent if n["to"] == f"role:{OFFICE}"]
    assert "延长答复时间未获批准" in told["message"]
    assert not any("处理时间延长" in n["message"] for n in notifier.sent)     # the complainant is told nothing
    # the limit ran out at 10-14 00:00: the action that came after it notices the breach
    assert limit(xx, case, "handle")["status"] == "breached"
    assert tasks(xx, case) == {"investigate": OFFICE, "supervise": LEADER, "weekly_report": OFFICE}


# --- the complainant asks for a reply (002:275) -----------------------------------------------------

def test_a_request_for_a_reply_tells_the_office_and_a_late_one_is_refused_without_change(xx, clock, notifier):
    case = start(xx, clock)
    do(xx, case, "record", RECORDED)
    request = {"requested_at": "2026-09-30T09:00:00+08:00", "request_way": "phone", "request_note": "家长询问调查进展"}
    with pytest.raises(InvalidInput) as err:                 # the request's own form is checked
        xx.send_message(case.instance_id, "reply_request", {"request_way": "phone"}, OFFICE)
    assert "requested_at" in err.value.field_texts("zh")
    with pytest.raises(NotAllowed):                          # recorded by the office, not the meeting
        xx.send_message(case.instance_id, "reply_request", request, MEETING, roles={MEETING})
    xx.send_message(case.instance_id, "reply_request", request, OFFICE, roles={OFFICE})
    told = notifier.sent[-1]
    assert told["to"] == f"role:{OFFICE}" and "家长询问调查进展" in told["message"] and "应及时予以答复" in told["message"]
    do(xx, case, "first_reply", FIRST_REPLY)
    do(xx, case, "investigate", INVESTIGATED)
    do(xx, case, "meeting_decision", SUBSTANTIATED, user=MEETING)
    before = len(xx.history(case.instance_id))
    with pytest.raises(Conflict) as err:                     # decided: the office now calls with the result
        xx.send_message(case.instance_id, "reply_request", request, OFFICE)
    assert "reply_request" in str(err.value)
    assert len(xx.history(case.instance_id)) == before


# --- who sees what ------------------------------------------------------------------------------

def test_the_office_sees_the_complainant_the_leader_and_the_meeting_do_not(xx, clock):
    case = start(xx, clock)
    to_investigation(xx, case)
    ask_extension(xx, case, 3)
    assert xx.inbox(roles={LEADER}).total == 1 and xx.inbox(roles={MEETING}).total == 0
    with pytest.raises(NotAllowed):                          # the office cannot approve its own extension
        do(xx, case, "approve_extension", {"approved": True, "extra_workdays": 3, "approval_opinion": "同意"},
           roles={OFFICE})
    roles = load_roles(PROCESSES)
    forms = xx.process_info(PROCESS)["forms"]
    assert identity_fields(forms) == {"complainant", "contact"}
    data = xx.case_detail(case.instance_id)["data"]
    assert may_see_identity({OFFICE}, roles, data, OFFICE)
    assert not may_see_identity({LEADER}, roles, data, OFFICE) and not may_see_identity({MEETING}, roles, data, OFFICE)
    app = create_app(xx, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    office = sign_in(app.test_client(), OFFICE).get(f"/cases/{case.instance_id}").get_data(as_text=True)
    leader = sign_in(app.test_client(), LEADER).get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "陈女士" in office and INTAKE["contact"] in office
    assert "陈女士" not in leader and INTAKE["contact"] not in leader and "（保密）" in leader
