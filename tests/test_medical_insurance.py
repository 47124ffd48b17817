"""medical_insurance (医保办投诉接待处理制度, seed 000:238-259): every path through the service
layer with a controlled clock, on SQLite.

The rule (000:253-254): a complaint within the office's remit is answered within 10 working
days of receipt (the day of receipt is not counted); a complex matter may be extended with the
leadership group's approval, to at most 20 working days in total. Complaints arrive by phone,
on site, in writing or through the complaint mailbox, and at night and on holidays through the
24-hour duty line (000:243-247). See docs/processes/medical_insurance.md."""

from __future__ import annotations

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput
from conftest import PROCESSES, open_task

PROCESS = "medical_insurance"

INTAKE = {
    "channel": "phone",
    "received_at": "2026-05-06T09:00:00+08:00",
    "complainant": "李先生",
    "contact": "13700000000",
    "insured_id": "110101195001011234",
    "respondent": "某定点药店",
    "content": "定点药店刷医保卡购药时多收个人自付部分费用",
    "request": "退还多收的费用",
}

INVESTIGATED = {
    "outcome": "completed",
    "facts": "药店将甲类药品按乙类结算，多收个人自付费用38.5元",
    "evidence": ["结算单据", "药店销售记录", "医保结算系统明细"],
    "facts_clear": True,
}

OPINION = {
    "finding": "substantiated",
    "opinion": "责令药店退还多收费用，按协议处理",
    "policy_basis": "定点零售药店医保服务协议",
    "measures": "药店三日内退还38.5元并整改结算设置",
    "responsible_person": "张科长",
}

WRITTEN_REPLY = {"reply_form": "written", "reply_content": "经核实，药店多收费用38.5元，已责令退还并整改"}


@pytest.fixture
def mi(service):
    service.deploy([PROCESSES / "medical_insurance.bpmn"])
    return service


def at(text):
    return parse_instant(text)


def start(mi, clock, received_at=None, user="yb_wang", **overrides):
    """Register a complaint; the clock stands at the moment of registration."""
    data = dict(INTAKE, **overrides)
    data["received_at"] = received_at or clock.now().isoformat()
    return mi.start(PROCESS, data, user)


def do(mi, case, task, data, user="yb_wang"):
    return mi.complete_task(open_task(mi, case.instance_id, task)["task_id"], user, data)


def roles_of(mi, case):
    return {t["task"]: t["role"] for t in mi.list_tasks(instance_id=case.instance_id)}


def reply_limit(mi, case):
    (limit,) = mi.show(case.instance_id)["deadlines"]
    assert limit["name"] == "reply"
    return limit


def extension_outputs(mi, case):
    return [e["payload"]["outputs"] for e in mi.history(case.instance_id)
            if e["kind"] == "handler_called" and e["payload"]["handler"] == "deadline.extend"]


def to_the_investigation(mi, case):
    do(mi, case, "preliminary_review", {"remit": "within", "review_note": "涉及定点药店医保结算，属于医保办职责"})


def ask_extension(mi, case, days=10):
    do(mi, case, "investigate", {"outcome": "extension", "complexity_reason": "需调取药店近半年结算数据比对",
                                 "requested_workdays": days})


def approve(mi, case, days, approved=True, opinion="同意延长"):
    data = {"approved": approved, "approval_opinion": opinion}
    if approved:
        data["extra_workdays"] = days
    do(mi, case, "approve_extension", data, user="leader_zhou")


def answer(mi, case, reply=WRITTEN_REPLY):
    do(mi, case, "investigate", INVESTIGATED)
    do(mi, case, "handling_opinion", OPINION)
    return do(mi, case, "reply", reply)


# --- registration -------------------------------------------------------------------------

def test_registration_numbers_the_case_and_tells_the_complainant_the_limit(mi, clock, notifier):
    case = start(mi, clock)                                   # Wed 2026-05-06 09:00
    assert case.case_number == "YB-2026-000001"
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == "13700000000"
    # 10 working days after Wed 05-06 (not counted): 07, 08, Sat 09 (make-up day), 11, 12, 13, 14, 15, 18, 19
    assert ack["message"] == ("您的投诉已由医保办登记（情况复杂的，经领导小组批准可以延长处理时限，但最长不超过20个工作日），"
                              "编号 YB-2026-000001。对属于医保办职责范围的投诉事项答复投诉人：最迟于2026年05月19日。")
    limit = reply_limit(mi, case)
    assert (limit["unit"], limit["amount"], limit["status"]) == ("workdays", 10, "open")
    assert limit["last_day"] == "2026-05-19" and limit["due"] == "2026-05-19T16:00:00+00:00"
    assert limit["seed"] == "000:253-254" and limit["rule"].startswith("对属于医保办职责范围的投诉事项，自收到投诉之日起10个工作日内")
    assert limit["provisional"] is False and limit["extended_by"] == 0
    assert roles_of(mi, case) == {"preliminary_review": "insurance_office"}
    assert open_task(mi, case.instance_id, "preliminary_review")["due"] == "2026-05-19T16:00:00+00:00"
    assert mi.show(case.instance_id)["status"] == "running"


@pytest.mark.parametrize("channel", ["phone", "on_site", "written", "mailbox"])
def test_every_channel_in_working_hours_is_registered(mi, clock, notifier, channel):
    case = start(mi, clock, channel=channel)
    assert roles_of(mi, case) == {"preliminary_review": "insurance_office"}
    assert reply_limit(mi, case)["last_day"] == "2026-05-19"
    assert notifier.kinds() == ["acknowledgement"]


def test_registration_refuses_unknown_or_missing_fields(mi, clock):
    with pytest.raises(InvalidInput) as err:
        mi.start(PROCESS, dict(INTAKE, channel="wechat", received_at="昨天晚上"), "yb_wang")
    assert {"channel", "received_at"} <= set(err.value.field_errors)
    with pytest.raises(InvalidInput) as err:                  # the duty line needs the duty officer
        mi.start(PROCESS, dict(INTAKE, channel="duty_phone"), "yb_wang")
    assert "duty_officer" in err.value.field_errors
    with pytest.raises(InvalidInput) as err:
        mi.start(PROCESS, {k: v for k, v in INTAKE.items() if k != "received_at"}, "yb_wang")
    assert "received_at" in err.value.field_errors
    assert mi.list_cases() == []


def test_duty_line_at_night_on_a_holiday_is_registered_and_counts_from_the_day_of_receipt(mi, clock, notifier):
    clock.set(at("2026-10-03T22:30"))                         # Sat, National Day holiday, at night
    case = start(mi, clock, channel="duty_phone", duty_officer="值班员赵", user="duty_zhao")
    assert case.case_number == "YB-2026-000001"
    assert roles_of(mi, case) == {"preliminary_review": "insurance_office"}
    limit = reply_limit(mi, case)
    # 10-03 (day of receipt) not counted; 10-05..07 holidays; Thu 10-08 is day 1, 09, Sat 10-10 (make-up),
    # 12, 13, 14, 15, 16, 19, Tue 10-20 is day 10
    assert limit["start"] == "2026-10-03T14:30:00+00:00"
    assert limit["last_day"] == "2026-10-20" and limit["due"] == "2026-10-20T16:00:00+00:00"
    assert "最迟于2026年10月20日" in notifier.sent[0]["message"]


def test_a_night_call_registered_next_morning_counts_from_the_night_it_was_received(mi, clock):
    clock.set(at("2026-05-07T08:30"))                         # registered Thu morning
    case = start(mi, clock, received_at="2026-05-06T23:30:00+08:00", channel="duty_phone", duty_officer="值班员赵")
    # counted from Wed 05-06 (not counted): 07, 08, Sat 09, 11, 12, 13, 14, 15, 18, Tue 05-19 (day 10);
    # counting from the registration day would wrongly give 05-20
    limit = reply_limit(mi, case)
    assert limit["last_day"] == "2026-05-19"
    assert mi.show(case.instance_id)["received"] == "2026-05-07T00:30:00+00:00"   # the registration moment


# --- time limits across the 2026 holidays -------------------------------------------------

@pytest.mark.parametrize("received, last_10, last_20", [
    # Thu 04-30, the last working day before Labour Day (05-01..05-05 off, Sat 05-09 worked):
    # 10: 05-06, 07, 08, Sat 09, 11, 12, 13, 14, 15, Mon 05-18
    # 20: 19, 20, 21, 22, 25, 26, 27, 28, 29, Mon 06-01
    ("2026-04-30T10:00", "2026-05-18", "2026-06-01"),
    # Fri 04-24, the last Friday before Labour Day:
    # 10: 04-27, 28, 29, 30, 05-06, 07, 08, Sat 09, 11, Tue 05-12
    # 20: 13, 14, 15, 18, 19, 20, 21, 22, 25, Tue 05-26
    ("2026-04-24T10:00", "2026-05-12", "2026-05-26"),
])
def test_labour_day_10_and_20_working_days(mi, clock, notifier, received, last_10, last_20):
    clock.set(at(received))
    case = start(mi, clock)
    limit = reply_limit(mi, case)
    assert limit["last_day"] == last_10 and limit["provisional"] is False
    due_10 = f"{last_10}T16:00:00+00:00"
    assert limit["due"] == due_10

    to_the_investigation(mi, case)
    clock.set(at("2026-05-11T10:00"))
    ask_extension(mi, case)
    approve(mi, case, 10)
    limit = reply_limit(mi, case)
    assert limit["extended_by"] == 10 and limit["last_day"] == last_20
    due_20 = f"{last_20}T16:00:00+00:00"
    assert limit["due"] == due_20
    assert open_task(mi, case.instance_id, "investigate")["due"] == due_20

    clock.set(at(due_10))                                     # the old limit passes: nothing fires
    assert mi.tick()["timers_fired"] == 0
    clock.set(at(f"{last_20}T23:59"))
    assert mi.tick()["timers_fired"] == 0
    clock.set(at(due_20))
    assert mi.tick()["timers_fired"] == 1
    assert roles_of(mi, case) == {"investigate": "insurance_office", "supervise": "leadership_group"}
    assert reply_limit(mi, case)["status"] == "breached"
    assert mi.replay(case.instance_id).consistent is True


@pytest.mark.parametrize("received, last_10, last_20", [
    # Wed 09-30: National Day 10-01..10-07 off, Sat 10-10 worked
    # 10: 10-08, 09, Sat 10, 12, 13, 14, 15, 16, 19, Tue 10-20
    # 20: 21, 22, 23, 26, 27, 28, 29, 30, 11-02, Tue 11-03
    ("2026-09-30T10:00", "2026-10-20", "2026-11-03"),
    # Fri 09-18: Sun 09-20 worked, Mid-Autumn Fri 09-25 off, National Day off, Sat 10-10 worked
    # 10: Sun 09-20, 21, 22, 23, 24, 28, 29, 30, 10-08, Fri 10-09
    # 20: Sat 10, 12, 13, 14, 15, 16, 19, 20, 21, Thu 10-22
    ("2026-09-18T10:00", "2026-10-09", "2026-10-22"),
])
def test_national_day_10_and_20_working_days(mi, clock, received, last_10, last_20):
    clock.set(at(received))
    case = start(mi, clock)
    assert reply_limit(mi, case)["last_day"] == last_10
    to_the_investigation(mi, case)
    clock.set(at("2026-10-08T10:00"))
    ask_extension(mi, case)
    approve(mi, case, 10)
    limit = reply_limit(mi, case)
    assert (limit["last_day"], limit["extended_by"], limit["status"]) == (last_20, 10, "open")
    assert mi.replay(case.instance_id).consistent is True


# --- the remit check and the handling -----------------------------------------------------

def test_answered_in_writing_within_the_limit_across_qingming(mi, clock, notifier):
    clock.set(at("2026-04-02T15:00"))                         # Thu before Qingming (04-05, 04-06 off)
    case = start(mi, clock, channel="mailbox")
    # 10: Fri 04-03, 07, 08, 09, 10, 13, 14, 15, 16, Fri 04-17
    assert reply_limit(mi, case)["last_day"] == "2026-04-17"
    to_the_investigation(mi, case)
    assert roles_of(mi, case) == {"investigate": "insurance_office"}
    assert open_task(mi, case.instance_id, "investigate")["due"] == "2026-04-17T16:00:00+00:00"
    clock.set(at("2026-04-15T10:00"))
    do(mi, case, "investigate", INVESTIGATED)
    assert roles_of(mi, case) == {"handling_opinion": "insurance_office"}
    do(mi, case, "handling_opinion", OPINION)
    assert roles_of(mi, case) == {"reply": "insurance_office"}
    done = do(mi, case, "reply", WRITTEN_REPLY)

    assert done.status == "completed"
    written = notifier.sent[-1]
    assert written["kind"] == "complainant" and written["to"] == "13700000000"
    assert written["message"] == "您的投诉（编号 YB-2026-000001）处理结果答复：经核实，药店多收费用38.5元，已责令退还并整改"
    limit = reply_limit(mi, case)
    assert limit["status"] == "met" and limit["completed"] == "2026-04-15T02:00:00+00:00"
    shown = mi.show(case.instance_id)
    assert shown["closed"] == "2026-04-15T02:00:00+00:00" and shown["legal_state"] is None
    assert shown["open_tasks"] == []
    clock.set(at("2026-04-18T00:00"))                         # long after: the watch ended with the reply
    assert mi.tick()["timers_fired"] == 0
    assert mi.replay(case.instance_id).consistent is True


def test_oral_reply_is_recorded_and_nothing_is_sent(mi, clock, notifier):
    case = start(mi, clock, channel="on_site")
    to_the_investigation(mi, case)
    do(mi, case, "investigate", INVESTIGATED)
    unfounded = {k: v for k, v in OPINION.items() if k != "measures"} | {"finding": "unfounded"}
    do(mi, case, "handling_opinion", unfounded)               # no measures needed when unfounded
    task = open_task(mi, case.instance_id, "reply")
    events = len(mi.history(case.instance_id))
    with pytest.raises(InvalidInput) as err:
        do(mi, case, "reply", {"reply_form": "oral", "reply_content": "经核实，投诉不属实"})
    assert "oral_record" in err.value.field_errors
    assert len(mi.history(case.instance_id)) == events
    assert open_task(mi, case.instance_id, "reply")["task_id"] == task["task_id"]

    done = do(mi, case, "reply", {"reply_form": "oral", "reply_content": "经核实，投诉不属实",
                                  "oral_record": "2026-05-08 10:00 在投诉接待室当面答复，投诉人表示理解"})
    assert done.status == "completed"
    assert notifier.kinds() == ["acknowledgement"]           # an oral reply is recorded, not sent
    assert reply_limit(mi, case)["status"] == "met"
    assert mi.replay(case.instance_id).consistent is True


def test_outside_the_remit_the_complainant_is_told_where_to_go_and_the_case_closes(mi, clock, notifier):
    case = start(mi, clock, content="医院医生服务态度差")
    task = open_task(mi, case.instance_id, "preliminary_review")
    with pytest.raises(InvalidInput) as err:
        do(mi, case, "preliminary_review", {"remit": "outside", "review_note": "属医疗服务质量问题"})
    assert {"competent_body", "explanation"} <= set(err.value.field_errors)
    assert open_task(mi, case.instance_id, "preliminary_review")["task_id"] == task["task_id"]
    assert notifier.kinds() == ["acknowledgement"]

    clock.advance(days=1)
    done = do(mi, case, "preliminary_review", {
        "remit": "outside", "review_note": "属医疗服务质量问题",
        "competent_body": "县卫生健康局医政科", "explanation": "医务人员服务态度问题由卫生健康行政部门处理"})
    assert done.status == "completed"
    told = notifier.sent[-1]
    assert told["kind"] == "complainant" and told["to"] == "13700000000"
    assert told["message"] == ("您的投诉（编号 YB-2026-000001）所反映的事项不属于医保办职责范围。"
                               "情况说明：医务人员服务态度问题由卫生健康行政部门处理。请您向县卫生健康局医政科投诉。")
    assert reply_limit(mi, case)["status"] == "met"
    shown = mi.show(case.instance_id)
    assert shown["closed"] == "2026-05-07T01:00:00+00:00" and shown["open_tasks"] == []
    assert "investigate" not in [t["task"] for t in shown["completed_tasks"]]
    clock.set(at("2026-05-20T00:00"))
    assert mi.tick()["timers_fired"] == 0
    assert mi.replay(case.instance_id).consistent is True


def test_found_outside_the_remit_after_investigation(mi, clock, notifier):
    case = start(mi, clock)
    to_the_investigation(mi, case)
    with pytest.raises(InvalidInput) as err:
        do(mi, case, "investigate", {"outcome": "outside_remit", "competent_body": "市场监督管理局"})
    assert "explanation" in err.value.field_errors
    done = do(mi, case, "investigate", {"outcome": "outside_remit", "competent_body": "县市场监督管理局",
                                        "explanation": "经调查，所涉药品为自费购买，属药品价格问题"})
    assert done.status == "completed"
    assert notifier.sent[-1]["kind"] == "complainant" and "请您向县市场监督管理局投诉" in notifier.sent[-1]["message"]
    assert reply_limit(mi, case)["status"] == "met"
    assert mi.show(case.instance_id)["closed"] is not None
    assert mi.replay(case.instance_id).consistent is True


def test_an_investigation_ends_only_with_clear_facts_and_evidence(mi, clock):
    case = start(mi, clock)
    to_the_investigation(mi, case)
    events = len(mi.history(case.instance_id))
    with pytest.raises(InvalidInput) as err:                  # 事实清楚、证据确凿 (000:255)
        do(mi, case, "investigate", dict(INVESTIGATED, facts_clear=False))
    assert "facts_clear" in err.value.field_errors
    with pytest.raises(InvalidInput) as err:
        do(mi, case, "investigate", {k: v for k, v in INVESTIGATED.items() if k != "evidence"})
    assert "evidence" in err.value.field_errors
    with pytest.raises(InvalidInput) as err:
        do(mi, case, "investigate", dict(INVESTIGATED, evidence=[]))
    assert "evidence" in err.value.field_errors
    with pytest.raises(InvalidInput) as err:                  # an extension request needs its reason
        do(mi, case, "investigate", {"outcome": "extension"})
    assert {"complexity_reason", "requested_workdays"} <= set(err.value.field_errors)
    assert len(mi.history(case.instance_id)) == events
    assert roles_of(mi, case) == {"investigate": "insurance_office"}

    do(mi, case, "investigate", INVESTIGATED)
    with pytest.raises(InvalidInput) as err:                  # a substantiated complaint needs measures
        do(mi, case, "handling_opinion", {k: v for k, v in OPINION.items() if k != "measures"})
    assert "measures" in err.value.field_errors
    with pytest.raises(InvalidInput) as err:
        do(mi, case, "handling_opinion", {k: v for k, v in OPINION.items() if k != "policy_basis"})
    assert "policy_basis" in err.value.field_errors
    assert roles_of(mi, case) == {"handling_opinion": "insurance_office"}


# --- extension ----------------------------------------------------------------------------

def test_a_granted_extension_is_told_to_the_complainant(mi, clock, notifier):
    case = start(mi, clock)                                   # Wed 05-06: 10 working days end Tue 05-19
    to_the_investigation(mi, case)
    clock.set(at("2026-05-14T10:00"))
    ask_extension(mi, case, days=10)
    assert roles_of(mi, case) == {"approve_extension": "leadership_group"}
    assert open_task(mi, case.instance_id, "approve_extension")["due"] == "2026-05-19T16:00:00+00:00"
    with pytest.raises(InvalidInput) as err:                  # approved needs the number of working days
        do(mi, case, "approve_extension", {"approved": True, "approval_opinion": "同意"}, user="leader_zhou")
    assert "extra_workdays" in err.value.field_errors
    with pytest.raises(InvalidInput) as err:                  # at most 10 more (20 in total)
        do(mi, case, "approve_extension", {"approved": True, "extra_workdays": 11, "approval_opinion": "同意"},
           user="leader_zhou")
    assert "extra_workdays" in err.value.field_errors
    assert reply_limit(mi, case)["extended_by"] == 0

    approve(mi, case, 10)
    limit = reply_limit(mi, case)
    # 20 working days from Wed 05-06: 10 end Tue 05-19, then 20, 21, 22, 25, 26, 27, 28, 29, 06-01, Tue 06-02
    assert (limit["extended_by"], limit["last_day"], limit["status"]) == (10, "2026-06-02", "open")
    (granted,) = extension_outputs(mi, case)
    assert granted["granted"] is True and granted["due"] == "2026-06-03T00:00:00+08:00" and granted["last_day"] == "2026-06-02"
    notice = notifier.sent[-1]
    assert notice["kind"] == "acknowledgement" and notice["to"] == "13700000000"
    assert notice["message"] == ("您的投诉情况复杂，经医保办投诉接待处理领导小组批准，处理时限延长10个工作日，"
                                 "编号 YB-2026-000001。答复投诉人：最迟于2026年06月02日。")
    assert roles_of(mi, case) == {"investigate": "insurance_office"}
    assert open_task(mi, case.instance_id, "investigate")["due"] == "2026-06-02T16:00:00+00:00"

    clock.set(at("2026-05-20T00:00"))                         # the original limit passes: no supervision
    assert mi.tick()["timers_fired"] == 0
    clock.set(at("2026-05-28T10:00"))
    assert answer(mi, case).status == "completed"
    assert reply_limit(mi, case)["status"] == "met"
    assert mi.replay(case.instance_id).consistent is True


def test_extensions_beyond_20_working_days_in_total_are_refused_with_the_reason(mi, clock, notifier):
    case = start(mi, clock)
    to_the_investigation(mi, case)
    ask_extension(mi, case, days=6)
    approve(mi, case, 6)
    assert reply_limit(mi, case)["extended_by"] == 6
    told = len(notifier.sent)

    ask_extension(mi, case, days=5)
    approve(mi, case, 5, opinion="同意再延长5个工作日")
    refused = extension_outputs(mi, case)[-1]
    assert refused["granted"] is False
    assert refused["reason"] == ("the limit may be extended to at most 20 workdays in total; "
                                 "5 more would make 21 (at most 4 more allowed)")
    assert reply_limit(mi, case)["extended_by"] == 6
    staff = notifier.sent[-1]
    assert len(notifier.sent) == told + 1                     # the office is told; the complainant is not
    assert staff["kind"] == "staff" and staff["to"] == "role:insurance_office"
    assert staff["message"] == (f"投诉YB-2026-000001延长处理时限未获准（{refused['reason']}）；"
                                "领导小组意见：同意再延长5个工作日")
    assert roles_of(mi, case) == {"investigate": "insurance_office"}

    ask_extension(mi, case, days=4)
    approve(mi, case, 4)
    limit = reply_limit(mi, case)
    # exactly 20 working days from Wed 05-06: Tue 06-02
    assert (limit["extended_by"], limit["last_day"]) == (10, "2026-06-02")
    assert notifier.sent[-1]["kind"] == "acknowledgement"
    assert mi.replay(case.instance_id).consistent is True


def test_an_extension_the_leadership_group_does_not_approve(mi, clock, notifier):
    case = start(mi, clock)
    to_the_investigation(mi, case)
    ask_extension(mi, case)
    with pytest.raises(InvalidInput) as err:
        do(mi, case, "approve_extension", {"approved": False}, user="leader_zhou")
    assert "approval_opinion" in err.value.field_errors
    approve(mi, case, 0, approved=False, opinion="事实已基本清楚，应按期答复")
    (refused,) = extension_outputs(mi, case)
    assert refused == {"name": "reply", "granted": False, "reason": "the extension was not approved",
                       "due": "2026-05-20T00:00:00+08:00", "last_day": "2026-05-19", "provisional": False}
    limit = reply_limit(mi, case)
    assert (limit["extended_by"], limit["last_day"]) == (0, "2026-05-19")
    assert notifier.kinds() == ["acknowledgement", "staff"]
    assert "事实已基本清楚，应按期答复" in notifier.sent[-1]["message"]
    assert roles_of(mi, case) == {"investigate": "insurance_office"}
    assert answer(mi, case).status == "completed"
    assert mi.replay(case.instance_id).consistent is True


def test_extension_requests_are_bounded(mi, clock, notifier):
    case = start(mi, clock)
    to_the_investigation(mi, case)
    for _ in range(3):
        ask_extension(mi, case)
        approve(mi, case, 0, approved=False, opinion="不同意")
    ask_extension(mi, case)                                   # the fourth request goes no further
    assert roles_of(mi, case) == {"investigate": "insurance_office"}
    assert len(extension_outputs(mi, case)) == 3
    bound = notifier.sent[-1]
    assert bound["to"] == "role:insurance_office" and "已申请延长处理时限3次" in bound["message"]
    assert answer(mi, case).status == "completed"
    assert mi.replay(case.instance_id).consistent is True


def test_an_extension_approved_after_the_limit_ran_out_is_refused(mi, clock, notifier):
    case = start(mi, clock)
    to_the_investigation(mi, case)
    clock.set(at("2026-05-19T16:00"))
    ask_extension(mi, case)
    clock.set(at("2026-05-20T00:00"))                         # the limit passes while the approval waits
    assert mi.tick()["timers_fired"] == 1
    assert roles_of(mi, case) == {"approve_extension": "leadership_group", "supervise": "leadership_group"}
    clock.set(at("2026-05-20T09:00"))
    approve(mi, case, 5)
    refused = extension_outputs(mi, case)[-1]
    assert refused["granted"] is False and "after the limit ran out" in refused["reason"]
    limit = reply_limit(mi, case)
    assert (limit["status"], limit["extended_by"]) == ("breached", 0)
    assert notifier.sent[-1]["to"] == "role:insurance_office"
    assert "acknowledgement" not in notifier.kinds()[1:]      # the complainant is not told of an extension
    assert mi.replay(case.instance_id).consistent is True


# --- the limit passes ---------------------------------------------------------------------

def test_no_reply_within_the_limit_the_leadership_group_supervises(mi, clock, notifier):
    case = start(mi, clock)                                   # Wed 05-06: last day Tue 05-19
    to_the_investigation(mi, case)
    clock.set(at("2026-05-19T23:59"))
    assert mi.tick()["timers_fired"] == 0
    assert "supervise" not in roles_of(mi, case)
    clock.set(at("2026-05-20T00:00"))
    assert mi.tick()["timers_fired"] == 1

    assert roles_of(mi, case) == {"investigate": "insurance_office", "supervise": "leadership_group"}
    fired = [e for e in mi.history(case.instance_id) if e["kind"] == "timer_fired"][0]
    assert fired["payload"]["task"] == "reply_limit_passed" and fired["payload"]["deadline"] == "reply"
    limit = reply_limit(mi, case)
    assert limit["status"] == "breached" and limit["breached_at"] == "2026-05-19T16:00:00+00:00"
    report = notifier.sent[-1]
    assert report["kind"] == "staff" and report["to"] == "role:leadership_group"
    assert report["message"] == "投诉YB-2026-000001已超过答复时限仍未答复投诉人，请领导小组督办"

    with pytest.raises(InvalidInput) as err:
        do(mi, case, "supervise", {"supervision_note": "三日内答复"}, user="leader_zhou")
    assert "supervision_responsible" in err.value.field_errors
    do(mi, case, "supervise", {"supervision_note": "三日内答复投诉人", "supervision_responsible": "张科长"},
       user="leader_zhou")
    assert roles_of(mi, case) == {"investigate": "insurance_office"}

    clock.set(at("2026-05-21T10:00"))
    assert answer(mi, case).status == "completed"
    limit = reply_limit(mi, case)
    assert limit["status"] == "breached" and limit["completed"] == "2026-05-21T02:00:00+00:00"
    shown = mi.show(case.instance_id)
    assert shown["closed"] == "2026-05-21T02:00:00+00:00" and shown["legal_state"] is None
    assert mi.replay(case.instance_id).consistent is True


def test_a_stalled_remit_check_is_supervised_too(mi, clock):
    case = start(mi, clock)
    clock.set(at("2026-05-20T00:00"))
    assert mi.tick()["timers_fired"] == 1
    assert roles_of(mi, case) == {"preliminary_review": "insurance_office", "supervise": "leadership_group"}
    do(mi, case, "supervise", {"supervision_note": "立即审查", "supervision_responsible": "王主任"}, user="leader_zhou")
    do(mi, case, "preliminary_review", {"remit": "outside", "review_note": "不属于", "competent_body": "县税务局",
                                         "explanation": "医保费征缴问题由税务部门负责"})
    assert reply_limit(mi, case)["status"] == "breached"
    assert mi.show(case.instance_id)["status"] == "completed"
    assert mi.replay(case.instance_id).consistent is True
