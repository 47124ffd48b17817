"""consumer_association (消协投诉处理工作流程, seed 004:300-304) through the service layer with a
controlled clock: what the scenario files cannot say — form errors in Chinese with nothing stored,
the legal states, the respondent's ten working days on real holidays, and who sees what.

The rules: accept, transfer or refuse in writing with reasons (004:302 (一)-(三)); the respondent
answers within ten working days of receiving the 投诉调查（调解）通知书, else a chasing letter
(催办函) and, if it still refuses, 反映建议、揭露批评、支持诉讼 (004:302 (二)); a complainant who does
not come without good reason is deemed to have withdrawn (004:302 (一)); mediation by two or more
(one for a simple case) with a record signed by both sides and the mediators, ending in an
agreement or a termination (004:304); the complainant may withdraw (004:304 终止调解（二）).
See docs/processes/consumer_association.md."""

from __future__ import annotations

import json

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.confidentiality import identity_fields, may_see_identity
from complaintflow.engine.errors import Conflict, InvalidInput, NotAllowed
from complaintflow.web.app import load_roles
from conftest import PROCESSES, open_task

PROCESS = "consumer_association"
DESK, MEDIATOR, HEAD = "consumer_complaint_desk", "consumer_mediator", "consumer_association_head"
INTAKE = json.loads((PROCESSES / "forms" / PROCESS / "intake.json").read_text(encoding="utf-8"))["examples"][0]
INVESTIGATED = {"investigation_methods": ["phone", "site_visit"], "simple_case": False,
                "investigators": ["调解员甲", "调解员乙"], "statements_heard": True, "findings": "滚筒轴承缺陷，属质量问题"}
MEDIATED = {"complainant_appeared": "appeared", "simple_mediation": False, "mediators": ["调解员甲", "调解员乙"],
            "no_conflict_of_interest": True, "mediation_result": "agreement", "record_signed": True,
            "agreement_terms": "商场办理退货，退还货款3299元", "agreement_sealed": True}


@pytest.fixture
def xh(service):
    service.deploy([PROCESSES / f"{PROCESS}.bpmn"])
    return service


def at(text):
    return parse_instant(text)


def start(xh, clock, received_at="2026-09-25T09:30:00+08:00"):
    clock.set(at(received_at))
    return xh.start(PROCESS, dict(INTAKE, received_at=received_at), DESK)


def do(xh, case, task, data, user=DESK, **kw):
    return xh.complete_task(open_task(xh, case.instance_id, task)["task_id"], user, data, **kw)


def tasks(xh, case):
    return {t["task"]: t["role"] for t in xh.list_tasks(instance_id=case.instance_id)}


def answer_limit(xh, case):
    return next(d for d in xh.show(case.instance_id)["deadlines"] if d["name"] == "answer")


def legal_state(xh, case):
    return xh.show(case.instance_id)["legal_state"]


def to_notice(xh, clock, case, received_notice_at):
    """Accept, investigate and serve the notice; the respondent received it at `received_notice_at`."""
    do(xh, case, "review_admissibility", {"decision": "accept"})
    do(xh, case, "investigate", INVESTIGATED, user=MEDIATOR)
    clock.set(at(received_notice_at))
    do(xh, case, "issue_notice", {"delivery": "in_person", "notice_received_at": received_notice_at})


def to_mediation(xh, clock, case):
    to_notice(xh, clock, case, "2026-09-28T10:00:00+08:00")
    clock.set(at("2026-09-30T10:00:00+08:00"))
    do(xh, case, "record_answer", {"answered_at": "2026-09-30T10:00:00+08:00", "answer_way": "written",
                                   "answer_content": "同意调解"})
    do(xh, case, "schedule_mediation", {"mediation_at": "2026-10-09T09:30:00+08:00",
                                        "mediation_place": "消费者协会办公室", "notify_way": "phone"}, user=MEDIATOR)
    clock.set(at("2026-10-09T11:00:00+08:00"))


# --- registration and the acceptance decision -------------------------------------------------

def test_the_intake_forms_example_registers_a_case_and_tells_the_complainant(xh, clock, notifier):
    case = start(xh, clock)
    assert case.case_number == "XH-2026-000001"
    assert tasks(xh, case) == {"review_admissibility": DESK}
    assert legal_state(xh, case) is None and xh.show(case.instance_id)["deadlines"] == []
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == INTAKE["contact"]
    assert "XH-2026-000001" in ack["message"] and "消费者协会已登记您的投诉" in ack["message"]


def test_intake_errors_are_named_in_chinese_and_nothing_is_registered(xh, clock):
    bad = {k: v for k, v in INTAKE.items() if k != "respondent"}
    with pytest.raises(InvalidInput) as err:
        xh.start(PROCESS, dict(bad, received_at="下周一", channel="wechat"), DESK)
    texts = err.value.field_texts("zh")
    assert set(texts) == {"respondent", "received_at", "channel"}
    assert "「被投诉方（经营者）」必填" in texts["respondent"][0]
    assert "收到投诉时间" in texts["received_at"][0]
    assert "来访" in texts["channel"][0]                    # the choices are named
    assert xh.list_cases() == []


def test_a_refusal_needs_its_written_reason_and_the_returned_letter(xh, clock, notifier):
    case = start(xh, clock)
    with pytest.raises(InvalidInput) as err:
        do(xh, case, "review_admissibility", {"decision": "refuse"})
    texts = err.value.field_texts("zh")
    assert set(texts) == {"refusal_reason", "letter_returned"}
    assert "不予受理的理由" in texts["refusal_reason"][0]
    assert tasks(xh, case) == {"review_admissibility": DESK} and legal_state(xh, case) is None
    assert len(notifier.sent) == 1                         # only the acknowledgement
    do(xh, case, "review_admissibility", {"decision": "refuse", "refusal_reason": "不属于消费者权益争议",
                                          "letter_returned": True})
    shown = xh.show(case.instance_id)
    assert shown["legal_state"] == "not_accepted" and shown["closed"] is not None
    refusal = notifier.sent[-1]
    assert refusal["kind"] == "refusal" and "不属于消费者权益争议" in refusal["message"]


def test_a_transfer_tells_the_other_body_and_the_consumer(xh, clock, notifier):
    case = start(xh, clock)
    do(xh, case, "review_admissibility", {"decision": "transfer", "transfer_to": "某区市场监督管理局",
                                          "transfer_mode": "transferred"})
    assert legal_state(xh, case) == "transferred" and xh.show(case.instance_id)["closed"] is not None
    assert [(m["kind"], m["to"]) for m in notifier.sent[1:]] == [("external", "某区市场监督管理局"),
                                                                ("complainant", INTAKE["contact"])]


# --- the respondent's ten working days (004:302) --------------------------------------------

@pytest.mark.parametrize("received_notice_at, last_day, due, provisional", [
    # Labour Day 2026: 04-29, 04-30, (05-01..05-05 off), 05-06 .. 05-08, Sat 05-09 make-up, 05-11 .. 05-14
    ("2026-04-28T10:00:00+08:00", "2026-05-14", "2026-05-15T00:00:00+08:00", False),
    # National Day 2026: 09-29, 09-30, (10-01..10-07 off), 10-08, 10-09, Sat 10-10 make-up, 10-12 .. 10-16
    ("2026-09-28T10:00:00+08:00", "2026-10-16", "2026-10-17T00:00:00+08:00", False),
    # Spring Festival 2027 (arrangement not yet published: provisional): 02-04, (02-05..02-08), 02-09 .. 02-19
    ("2027-02-03T10:00:00+08:00", "2027-02-19", "2027-02-20T00:00:00+08:00", True),
])
def test_ten_working_days_from_receiving_the_notice_across_holidays(xh, clock, received_notice_at, last_day, due,
                                                                   provisional):
    case = start(xh, clock, received_at=received_notice_at)
    to_notice(xh, clock, case, received_notice_at)
    limit = answer_limit(xh, case)
    assert (limit["last_day"], limit["provisional"], limit["status"]) == (last_day, provisional, "open")
    assert at(limit["due"]) == at(due)
    (task,) = xh.list_tasks(instance_id=case.instance_id)
    assert task["task"] == "record_answer" and at(task["due"]) == at(due)


def test_a_silent_respondent_gets_a_chasing_letter_at_the_due_moment_not_before(xh, clock, notifier):
    case = start(xh, clock)
    to_notice(xh, clock, case, "2026-09-28T10:00:00+08:00")
    clock.set(at("2026-10-16T23:59:00+08:00"))
    assert xh.tick()["timers_fired"] == 0
    assert tasks(xh, case) == {"record_answer": DESK}
    clock.set(at("2026-10-17T00:00:00+08:00"))
    assert xh.tick()["timers_fired"] == 1
    assert tasks(xh, case) == {"await_after_chasing": DESK}
    limit = answer_limit(xh, case)
    assert limit["status"] == "breached" and at(limit["breached_at"]) == at("2026-10-17T00:00:00+08:00")
    letter = notifier.sent[-1]
    assert (letter["kind"], letter["to"]) == ("external", INTAKE["respondent"])
    assert "催办函" in letter["message"] and "2026-10-16" in letter["message"]


@pytest.mark.parametrize("function, state, words", [
    ("suggestion", "reported_to_authority", "反映并提出建议"),
    ("exposure", "publicly_disclosed", "公开披露"),
    ("lawsuit_support", "lawsuit_supported", "支持消费者提起诉讼"),
])
def test_a_respondent_refusing_the_investigation_meets_a_legal_function(xh, clock, notifier, function, state, words):
    case = start(xh, clock)
    to_notice(xh, clock, case, "2026-09-28T10:00:00+08:00")
    clock.set(at("2026-10-17T00:00:00+08:00"))
    xh.tick()
    do(xh, case, "await_after_chasing", {"respondent_response": "refuses", "refusal_facts": "拒收通知和催办函"})
    assert legal_state(xh, case) == "respondent_uncooperative"
    assert tasks(xh, case) == {"decide_legal_function": HEAD}
    assert "拒不接受消费者协会调查" in notifier.sent[-1]["message"]       # the consumer is told at once
    do(xh, case, "decide_legal_function", {"legal_function": function, "function_target": "某机构",
                                           "function_reason": "拒不接受调查"}, user=HEAD)
    assert legal_state(xh, case) == state
    assert all(words in m["message"] for m in notifier.sent[-2:])


# --- mediation (004:304) ---------------------------------------------------------------------

def test_mediation_needs_two_different_mediators_and_the_signed_record(xh, clock, notifier):
    case = start(xh, clock)
    to_mediation(xh, clock, case)
    sent = len(notifier.sent)
    with pytest.raises(InvalidInput) as err:
        do(xh, case, "mediate", dict(MEDIATED, mediators=["调解员甲", "调解员甲"]), user=MEDIATOR)
    assert "「调解人员（不同的人）」有重复的项：调解员甲" in err.value.field_texts("zh")["mediators"][0]
    with pytest.raises(InvalidInput) as err:
        do(xh, case, "mediate", dict(MEDIATED, mediators=["调解员甲"]), user=MEDIATOR)
    assert "至少填写 2 项" in err.value.field_texts("zh")["mediators"][0]
    with pytest.raises(InvalidInput) as err:
        do(xh, case, "mediate", dict(MEDIATED, record_signed=False), user=MEDIATOR)
    assert "须勾选确认" in err.value.field_texts("zh")["record_signed"][0]
    with pytest.raises(InvalidInput) as err:
        do(xh, case, "mediate", {k: v for k, v in MEDIATED.items() if k != "agreement_sealed"}, user=MEDIATOR)
    assert set(err.value.field_texts("zh")) == {"agreement_sealed"}
    assert tasks(xh, case) == {"mediate": MEDIATOR} and legal_state(xh, case) == "accepted"
    assert len(notifier.sent) == sent                      # nothing sent, nothing stored
    do(xh, case, "mediate", dict(MEDIATED, simple_mediation=True, mediators=["调解员甲"]), user=MEDIATOR)
    assert legal_state(xh, case) == "mediation_agreement"
    assert all("投诉调解协议书" in m["message"] for m in notifier.sent[-2:])


def test_not_coming_without_good_reason_is_deemed_a_withdrawal(xh, clock, notifier):
    case = start(xh, clock)
    to_mediation(xh, clock, case)
    do(xh, case, "mediate", {"complainant_appeared": "absent_without_reason"}, user=MEDIATOR)
    assert legal_state(xh, case) == "deemed_withdrawn"
    assert "视为撤回投诉" in notifier.sent[-1]["message"]
    do(xh, case, "archive", {"archive_note": "存档备案"})
    shown = xh.show(case.instance_id)
    assert shown["status"] == "completed" and shown["legal_state"] == "deemed_withdrawn"
    assert answer_limit(xh, case)["status"] == "met"


# --- withdrawal (message `withdrawal`, 004:304) -----------------------------------------------

WITHDRAWAL = {"withdrawn_at": "2026-10-08T09:00:00+08:00", "withdrawal_way": "written",
              "withdrawal_reason": "商场已同意退货"}


def test_a_withdrawal_while_the_respondent_may_answer_ends_the_case_and_its_limit(xh, clock, notifier):
    case = start(xh, clock)
    to_notice(xh, clock, case, "2026-09-28T10:00:00+08:00")
    clock.set(at("2026-10-08T09:00:00+08:00"))
    xh.send_message(case.instance_id, "withdrawal", WITHDRAWAL, DESK)
    assert legal_state(xh, case) == "withdrawn" and tasks(xh, case) == {"archive": DESK}
    assert answer_limit(xh, case)["status"] == "stopped"      # no answer came: ended, not met on time
    assert notifier.sent[-1]["to"] == INTAKE["respondent"] and "撤回" in notifier.sent[-1]["message"]
    clock.set(at("2026-10-17T00:00:00+08:00"))
    assert xh.tick()["timers_fired"] == 0                 # no chasing letter for a withdrawn complaint


def test_a_withdrawal_before_acceptance_is_refused_and_changes_nothing(xh, clock):
    case = start(xh, clock)
    with pytest.raises(Conflict):
        xh.send_message(case.instance_id, "withdrawal", WITHDRAWAL, DESK)
    assert tasks(xh, case) == {"review_admissibility": DESK} and legal_state(xh, case) is None


# --- who sees what --------------------------------------------------------------------------

def test_each_role_sees_its_own_tasks_and_only_the_desk_and_mediators_see_identity(xh, clock):
    case = start(xh, clock)
    do(xh, case, "review_admissibility", {"decision": "accept"})
    assert xh.inbox(roles={MEDIATOR}).total == 1 and xh.inbox(roles={DESK}).total == 0
    assert xh.inbox(roles={"reception", "tourism_authority"}).total == 0     # other institutions' roles
    with pytest.raises(NotAllowed):
        do(xh, case, "investigate", INVESTIGATED, user=DESK, roles={DESK})
    assert tasks(xh, case) == {"investigate": MEDIATOR}
    roles = load_roles(PROCESSES)
    forms = xh.process_info(PROCESS)["forms"]
    assert {"complainant", "contact", "address"} <= identity_fields(forms)
    data = dict(INTAKE)
    assert may_see_identity({DESK}, roles, data, DESK) and may_see_identity({MEDIATOR}, roles, data, DESK)
    assert not may_see_identity({HEAD}, roles, data, DESK)
    assert not may_see_identity({"reviewer"}, roles, data, DESK)
