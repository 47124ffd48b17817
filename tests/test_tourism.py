"""tourism (旅游投诉处理办法): every path through the service layer with a controlled clock.
Seed: 003:415-543, items missing from the seed filled from 国家旅游局令第32号 (see
docs/processes/tourism.md). Dates crossing Qingming, Labour Day and National Day 2026 are
counted by hand in the comments and confirmed with `complaintflow calendar deadline`."""

from __future__ import annotations

import pytest

from complaintflow.engine.calendar import BusinessCalendar, ReceptionHours
from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import Conflict, InvalidInput
from complaintflow.engine.service import ComplaintService
from conftest import PROCESSES, TEST_CHAIN_KEY, open_task

STAFF, SUPERIOR, ADMIN = "staff_wang", "superior_li", "admin_zhao"

INTAKE = {
    "complaint_form": "written",
    "received_at": "2026-04-28T09:00",
    "complainant": "张三",
    "gender": "male",
    "nationality": "中国",
    "address": "北京市东城区东四北大街1号",
    "postcode": "100010",
    "contact": "13800000000",
    "respondent": "杭州某国际旅行社",
    "respondent_location": "杭州市西湖区",
    "respondent_type": "travel_agency",
    "request": "退还未履行行程的团费1200元",
    "facts_and_reasons": "合同约定游览千岛湖，旅行社擅自取消该行程",
    "needs_immediate_stop": False,
}

REVIEW_OK = {
    "matter_type": "contract_breach",
    "jurisdiction_basis": "respondent_location",
    "handled_by_other_body": False,
    "handled_before_no_new_facts": False,
    "direct_interest": True,
    "clear_respondent_request_facts": True,
}

AGREEMENT = {
    "mediation_plan": "旅行社退还千岛湖段费用",
    "mediation_outcome": "agreement",
    "complaint_request": "退还团费1200元",
    "facts_found": "旅行社擅自取消千岛湖行程",
    "process_summary": "组织双方面对面调解一次",
    "mediation_result": "被投诉人于7日内退还投诉人800元",
    "signed_by_both": True,
    "sealed": True,
    "claims_changed": False,
}


@pytest.fixture
def ly(service):
    service.deploy([PROCESSES / "tourism.bpmn"])
    return service


def at(text):
    return parse_instant(text)


def start(ly, clock, **overrides):
    data = dict(INTAKE, **overrides)
    clock.set(at(data["received_at"]))
    return ly.start("tourism", data, "registrar_chen")


def do(ly, case, task, data, user=STAFF):
    return ly.complete_task(open_task(ly, case.instance_id, task)["task_id"], user, data)


def tasks(ly, case):
    return {t["task"]: t["role"] for t in ly.list_tasks(instance_id=case.instance_id)}


def deadline(ly, case, name):
    return next(d for d in ly.show(case.instance_id)["deadlines"] if d["name"] == name)


def deadline_names(ly, case):
    return [d["name"] for d in ly.show(case.instance_id)["deadlines"]]


def data(ly, case):
    return ly.replay(case.instance_id).state["data"]


def messages(notifier, kind=None):
    return [m for m in notifier.sent if kind is None or m["kind"] == kind]


def accept(ly, case, **review):
    return do(ly, case, "review_admissibility", dict(REVIEW_OK, **review))


def file_and_serve(ly, clock, case, served_at):
    do(ly, case, "file_case", {"filing_no": "LA-2026-001", "filing_summary": "擅自取消行程", "materials_attached": True})
    clock.set(at(served_at))
    do(ly, case, "confirm_service", {"served_at": served_at, "service_method": "post"})


def answer(ly, case, **extra):
    do(ly, case, "record_answer", dict({"answer_status": "answered", "answer_received_at": "2026-05-06T10:00",
                                        "answer_facts_reasons": "因天气原因取消"}, **extra))


def to_mediation(ly, clock, case, served_at="2026-04-30T10:00"):
    accept(ly, case)
    file_and_serve(ly, clock, case, served_at)
    answer(ly, case)
    do(ly, case, "review_evidence", {"findings": "取消行程属实", "violation_found": "none", "next_step": "mediate"})


def archive(ly, case):
    result = do(ly, case, "archive", {"archive_no": "DA-2026-001", "materials": "投诉书、立案表、答复书、调解书"})
    assert result.status == "completed"
    return result


# --- registration, the acceptance limit (第十五条) ----------------------------------------

def test_registration_numbers_the_case_and_tells_the_acceptance_limit_across_qingming(ly, clock, notifier):
    case = start(ly, clock, received_at="2026-04-02T10:00")          # Thursday before Qingming
    assert case.case_number == "LY-2026-000001"
    accept_limit = deadline(ly, case, "accept")
    # 5 working days from Thu 04-02: Fri 04-03 (1); Sat-Mon 04-04..04-06 off (Qingming 04-05/04-06);
    # Tue 04-07 (2), Wed 04-08 (3), Thu 04-09 (4), Fri 04-10 (5)
    assert accept_limit["last_day"] == "2026-04-10" and accept_limit["due"] == "2026-04-10T16:00:00+00:00"
    assert (accept_limit["unit"], accept_limit["amount"], accept_limit["status"]) == ("workdays", 5, "open")
    assert accept_limit["seed"] == "003:487 (第十五条)" and "5个工作日内" in accept_limit["rule"]
    (ack,) = messages(notifier)
    assert ack["kind"] == "acknowledgement" and ack["to"] == "13800000000"
    assert ack["message"] == ("您的旅游投诉已登记，编号 LY-2026-000001。"
                              "作出受理、不予受理或者转办的决定：最迟于2026年04月10日。")
    assert tasks(ly, case) == {"review_admissibility": "tourism_authority"}
    assert open_task(ly, case.instance_id, "review_admissibility")["due"] == "2026-04-10T16:00:00+00:00"
    facts = data(ly, case)
    assert facts["joint_complaint"] is False
    assert facts["beyond_complaint_window"] is False and facts["complaint_window_last_day"] == ""
    assert ly.show(case.instance_id)["legal_state"] is None


def test_acceptance_limit_passing_gives_the_superior_a_supervision_task(ly, clock):
    case = start(ly, clock, received_at="2026-04-02T10:00")
    clock.set(at("2026-04-10T23:59"))
    assert ly.tick()["timers_fired"] == 0
    assert "supervise_accept" not in tasks(ly, case)
    clock.set(at("2026-04-11T00:00"))
    assert ly.tick()["timers_fired"] == 1
    assert tasks(ly, case) == {"review_admissibility": "tourism_authority",
                               "supervise_accept": "tourism_authority_superior"}
    late = deadline(ly, case, "accept")
    assert late["status"] == "breached" and late["breached_at"] == "2026-04-10T16:00:00+00:00"
    do(ly, case, "supervise_accept", {"instruction": "今日内作出受理决定"}, user=SUPERIOR)
    accept(ly, case)
    assert deadline(ly, case, "accept")["status"] == "breached"       # deciding late does not undo the breach
    assert ly.show(case.instance_id)["legal_state"] == "accepted"
    assert "file_case" in tasks(ly, case)
    assert ly.replay(case.instance_id).consistent is True


def test_intake_form_errors_name_each_field_and_create_nothing(ly, clock):
    bad = dict(INTAKE, received_at="2026-04-28T01:00:00Z", complainant_count=4, representatives=["甲", "乙", "丙", "丁"],
               agent_name="李律师", needs_immediate_stop=True)
    for field in ("gender", "nationality", "address", "postcode", "respondent_location"):
        bad.pop(field)
    with pytest.raises(InvalidInput) as err:
        ly.start("tourism", bad, "registrar_chen")
    assert {"received_at", "gender", "nationality", "address", "postcode", "respondent_location", "same_cause",
            "representatives", "authorization_scope", "power_of_attorney_submitted",
            "harm_place"} <= set(err.value.field_errors)
    with pytest.raises(InvalidInput) as err:               # representatives only for a joint complaint (第十四条)
        ly.start("tourism", dict(INTAKE, complainant_count=2, representatives=["甲"]), "registrar_chen")
    assert set(err.value.field_errors) == {"representatives"}
    assert ly.list_cases() == []


def test_oral_complaint_is_recorded_and_told_to_the_respondent(ly, clock, notifier):
    oral = {k: v for k, v in INTAKE.items() if k not in ("gender", "nationality", "address", "postcode",
                                                          "respondent_location")}
    case = start(ly, clock, **dict(oral, complaint_form="oral"))
    told = messages(notifier, "external")
    assert [m["to"] for m in told] == ["杭州某国际旅行社"]
    assert told[0]["message"] == ("旅游投诉处理机构已记录、登记对贵方的口头投诉（编号LY-2026-000001）："
                                  "退还未履行行程的团费1200元")
    assert tasks(ly, case) == {"review_admissibility": "tourism_authority"}


def test_a_joint_complaint_is_recognised_from_the_intake(ly, clock):
    case = start(ly, clock, complainant_count=5, same_cause=True, representatives=["张三", "李四"])
    assert data(ly, case)["joint_complaint"] is True
    other = start(ly, clock, complainant_count=5, same_cause=False)
    assert data(ly, other)["joint_complaint"] is False


# --- admissibility (第九条, 第十条) -----------------------------------------------------

@pytest.mark.parametrize("review, intake, ground, text", [
    ({"handled_by_other_body": True, "other_body": "西湖区人民法院"}, {}, "一",
     "人民法院、仲裁机构、其他行政管理部门或者社会调解机构已经受理或者处理"),
    ({"handled_before_no_new_facts": True}, {}, "二", "旅游投诉处理机构已经作出处理，且没有新情况、新理由"),
    ({}, {"contract_end_date": "2026-01-20"}, "四", "超过旅游合同结束之日90天"),
    ({"direct_interest": False}, {}, "五", "投诉人与投诉事项没有直接利害关系"),
    ({"clear_respondent_request_facts": False}, {}, "五", "没有明确的被投诉人、具体的投诉请求、事实和理由"),
    ({"matter_type": "other_economic_dispute"}, {}, "六", "属于本办法规定情形之外的其他经济纠纷"),
], ids=["ground1-other-body", "ground2-already-handled", "ground4-over-90-days", "ground5-no-interest",
        "ground5-unclear", "ground6-other-dispute"])
def test_refusal_grounds_send_a_refusal_notice_with_the_ground(ly, clock, notifier, review, intake, ground, text):
    case = start(ly, clock, **intake)
    result = accept(ly, case, **review)
    assert result.status == "completed"
    refusal = messages(notifier, "refusal")[-1]
    assert refusal["to"] == "13800000000"
    assert f"《旅游投诉不予受理通知书》：依据《旅游投诉处理办法》第九条第（{ground}）项" in refusal["message"]
    assert text in refusal["message"] and "有管辖权" not in refusal["message"]
    shown = ly.show(case.instance_id)
    assert shown["legal_state"] == "not_accepted" and shown["closed"] is not None
    assert deadline_names(ly, case) == ["accept"] and deadline(ly, case, "accept")["status"] == "met"
    assert [m["kind"] for m in notifier.sent] == ["acknowledgement", "refusal"]
    assert ly.replay(case.instance_id).consistent is True


def test_the_ninety_days_are_counted_from_the_contract_end_to_the_receipt(ly, clock, notifier):
    # contract ended Sat 2026-01-10: 21 days left in January + 28 + 31 + 10 = 90 days to Fri 04-10
    in_time = start(ly, clock, received_at="2026-04-10T09:00", contract_end_date="2026-01-10")
    facts = data(ly, in_time)
    assert facts["complaint_window_last_day"] == "2026-04-10" and facts["beyond_complaint_window"] is False
    accept(ly, in_time)
    assert ly.show(in_time.instance_id)["legal_state"] == "accepted" and "file_case" in tasks(ly, in_time)

    late = start(ly, clock, received_at="2026-04-11T09:00", contract_end_date="2026-01-10")
    assert data(ly, late)["beyond_complaint_window"] is True
    accept(ly, late)
    assert ly.show(late.instance_id)["legal_state"] == "not_accepted"
    assert "第九条第（四）项，超过旅游合同结束之日90天" in messages(notifier, "refusal")[-1]["message"]


@pytest.mark.parametrize("received_at, legal_state", [
    ("2026-10-03T10:00", "accepted"),       # the 90th day itself, a holiday
    ("2026-10-08T10:00", "accepted"),       # the first working day after the holiday: the last day
    ("2026-10-08T23:59", "accepted"),
    ("2026-10-09T00:01", "not_accepted"),   # the day after the rolled-forward last day
], ids=["day-90-holiday", "rolled-last-day", "rolled-last-minute", "day-after"])
def test_a_ninetieth_day_on_national_day_rolls_forward_to_the_next_working_day(ly, clock, received_at, legal_state):
    # contract ended 2026-07-05; +90 days = Sat 10-03, a National Day holiday (10-01..10-07): the period
    # runs to Thu 10-08 (民法典 Art. 203; `calendar deadline --from 2026-07-05 --days 90` -> end of 10-08).
    # Computed from the calendar at registration; staff confirm nothing.
    case = start(ly, clock, received_at=received_at, contract_end_date="2026-07-05")
    assert data(ly, case)["complaint_window_last_day"] == "2026-10-08"
    accept(ly, case)
    assert ly.show(case.instance_id)["legal_state"] == legal_state


def test_reception_hours_do_not_move_the_start_of_the_ninety_days(db_url, clock, registry, notifier):
    # With reception hours on, a contract that ended on Sat 2026-01-10 still counts from 01-10 (not
    # from Monday's opening): the last day stays Fri 04-10, and a complaint on Sat 04-11 is refused.
    hours = BusinessCalendar(reception_hours=ReceptionHours.parse("08:30-12:00,14:00-17:30"))
    ly = ComplaintService(db_url, clock=clock, handlers=registry, notifier=notifier, calendar=hours,
                          chain_key=TEST_CHAIN_KEY)
    ly.deploy([PROCESSES / "tourism.bpmn"])
    case = start(ly, clock, received_at="2026-04-11T09:00", contract_end_date="2026-01-10")
    assert data(ly, case)["complaint_window_last_day"] == "2026-04-10"
    assert deadline(ly, case, "accept")["last_day"] == "2026-04-20"   # the hours still apply to receipt
    accept(ly, case)
    assert ly.show(case.instance_id)["legal_state"] == "not_accepted"


def test_staff_cannot_roll_the_ninety_days_forward_by_hand(ly, clock):
    # the review form no longer has a roll-forward checkbox: sending one is refused and changes nothing
    case = start(ly, clock, received_at="2026-10-09T10:00", contract_end_date="2026-07-05")
    with pytest.raises(InvalidInput) as err:
        accept(ly, case, window_rolled_forward=True)
    assert "window_rolled_forward" in str(err.value)
    assert tasks(ly, case) == {"review_admissibility": "tourism_authority"}
    assert ly.show(case.instance_id)["legal_state"] is None
    accept(ly, case)
    assert ly.show(case.instance_id)["legal_state"] == "not_accepted"


def test_review_form_errors_change_nothing(ly, clock, notifier):
    case = start(ly, clock)
    with pytest.raises(InvalidInput) as err:
        accept(ly, case, jurisdiction_basis="none", handled_by_other_body=True)
    assert set(err.value.field_errors) == {"competent_body", "competent_body_kind", "no_jurisdiction_action",
                                           "other_body"}
    assert tasks(ly, case) == {"review_admissibility": "tourism_authority"}
    assert deadline(ly, case, "accept")["status"] == "open" and len(notifier.sent) == 1
    assert ly.show(case.instance_id)["legal_state"] is None


# --- jurisdiction (第五—七条), transfer (第十五条第（三）项) ----------------------------------

def test_no_jurisdiction_tells_the_complainant_where_to_complain(ly, clock, notifier):
    case = start(ly, clock)
    accept(ly, case, jurisdiction_basis="none", competent_body="黄山市旅游投诉处理机构",
           competent_body_kind="tourism_authority", no_jurisdiction_action="direct")
    refusal = messages(notifier, "refusal")[-1]["message"]
    assert "第九条第（三）项，不属于旅游投诉处理机构职责范围或者管辖范围" in refusal
    assert refusal.endswith("请向有管辖权的旅游投诉处理机构或者有关行政管理部门投诉：黄山市旅游投诉处理机构。")
    assert ly.show(case.instance_id)["legal_state"] == "not_accepted"
    assert ly.show(case.instance_id)["status"] == "completed"


def test_no_jurisdiction_transfers_the_materials_and_tells_the_complainant_in_writing(ly, clock, notifier):
    case = start(ly, clock)
    result = accept(ly, case, jurisdiction_basis="none", competent_body="杭州市市场监督管理局",
                    competent_body_kind="other_department", no_jurisdiction_action="transfer")
    assert result.status == "completed"
    (letter,) = messages(notifier, "external")
    assert letter["to"] == "杭州市市场监督管理局"
    assert letter["message"].startswith("《旅游投诉转办函》：投诉LY-2026-000001（投诉人：张三；被投诉人：杭州某国际旅行社）")
    told = messages(notifier, "complainant")[-1]
    assert told["to"] == "13800000000" and "已将投诉材料转交杭州市市场监督管理局处理，特此书面告知" in told["message"]
    assert ly.show(case.instance_id)["legal_state"] == "transferred"
    assert deadline(ly, case, "accept")["status"] == "met"
    assert not messages(notifier, "refusal")


def test_a_jurisdiction_dispute_settled_by_agreement_reruns_the_rule_table(ly, clock):
    case = start(ly, clock)
    accept(ly, case, jurisdiction_basis="disputed")
    assert tasks(ly, case) == {"resolve_jurisdiction": "tourism_authority"}
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "resolve_jurisdiction", {"disputing_authority": "杭州市旅游投诉处理机构", "dispute_method": "negotiate"})
    assert set(err.value.field_errors) == {"negotiated_result"}
    do(ly, case, "resolve_jurisdiction", {"disputing_authority": "杭州市旅游投诉处理机构", "dispute_method": "negotiate",
                                          "negotiated_result": "ours"})
    assert data(ly, case)["jurisdiction_basis"] == "agreed_or_designated"
    assert ly.show(case.instance_id)["legal_state"] == "accepted" and "file_case" in tasks(ly, case)


def test_a_jurisdiction_dispute_designated_elsewhere_by_the_superior_is_transferred(ly, clock, notifier):
    case = start(ly, clock)
    accept(ly, case, jurisdiction_basis="disputed")
    do(ly, case, "resolve_jurisdiction", {"disputing_authority": "杭州市旅游投诉处理机构", "dispute_method": "designate"})
    assert tasks(ly, case) == {"designate_jurisdiction": "tourism_authority_superior"}
    assert open_task(ly, case.instance_id, "designate_jurisdiction")["due"] == deadline(ly, case, "accept")["due"]
    do(ly, case, "designate_jurisdiction", {"designation_result": "other", "competent_body": "杭州市旅游投诉处理机构",
                                            "designation_reason": "被投诉人所在地"}, user=SUPERIOR)
    (letter,) = messages(notifier, "external")
    assert letter["to"] == "杭州市旅游投诉处理机构" and letter["message"].startswith("《旅游投诉转办通知书》")
    assert ly.show(case.instance_id)["legal_state"] == "transferred"
    assert ly.show(case.instance_id)["status"] == "completed"
    assert ly.replay(case.instance_id).consistent is True


def test_a_jurisdiction_dispute_agreed_in_favour_of_the_other_authority_is_transferred(ly, clock, notifier):
    case = start(ly, clock)
    accept(ly, case, jurisdiction_basis="disputed")
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "resolve_jurisdiction", {"disputing_authority": "杭州市旅游投诉处理机构", "dispute_method": "negotiate",
                                              "negotiated_result": "other"})
    assert set(err.value.field_errors) == {"competent_body"}
    do(ly, case, "resolve_jurisdiction", {"disputing_authority": "杭州市旅游投诉处理机构", "dispute_method": "negotiate",
                                          "negotiated_result": "other", "competent_body": "杭州市旅游投诉处理机构"})
    (letter,) = messages(notifier, "external")
    assert letter["to"] == "杭州市旅游投诉处理机构" and letter["message"].startswith("《旅游投诉转办通知书》")
    assert ly.show(case.instance_id)["legal_state"] == "transferred"


def test_the_superior_designating_this_authority_leads_to_acceptance(ly, clock):
    case = start(ly, clock)
    accept(ly, case, jurisdiction_basis="disputed", handled_before_no_new_facts=True)
    assert tasks(ly, case) == {"resolve_jurisdiction": "tourism_authority"}   # jurisdiction is settled first
    do(ly, case, "resolve_jurisdiction", {"disputing_authority": "杭州市旅游投诉处理机构", "dispute_method": "designate"})
    do(ly, case, "designate_jurisdiction", {"designation_result": "ours", "designation_reason": "合同签订地"},
       user=SUPERIOR)
    # the rule table runs again with the jurisdiction settled and now applies 第九条第（二）项
    assert ly.show(case.instance_id)["legal_state"] == "not_accepted"
    assert deadline(ly, case, "accept")["status"] == "met"


# --- fast path (第五条第二款, 第十七条第二款) -------------------------------------------------

FAST = {"needs_immediate_stop": True, "harm_place": "西湖景区断桥", "respondent_type": "tour_guide",
        "respondent": "导游王某"}


def test_conduct_stopped_at_once_is_recorded_without_filing_and_a_crime_goes_to_the_judicial_organs(
        ly, clock, notifier):
    case = start(ly, clock, **FAST)
    assert tasks(ly, case) == {"immediate_action": "tourism_authority"}
    assert open_task(ly, case.instance_id, "immediate_action")["due"] == deadline(ly, case, "accept")["due"]
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "immediate_action", {"fast_applicable": "yes"})
    assert set(err.value.field_errors) == {"action_taken", "fast_outcome", "violation_found"}
    do(ly, case, "immediate_action", {"fast_applicable": "yes", "action_taken": "当场制止强迫购物，退还购物款",
                                      "fast_outcome": "resolved", "violation_found": "crime"})
    assert ly.show(case.instance_id)["legal_state"] == "handled_immediately"
    assert deadline(ly, case, "accept")["status"] == "met"
    assert tasks(ly, case) == {"handle_violation": "tourism_authority"}
    with pytest.raises(InvalidInput) as err:            # a suspected crime is transferred, not fined
        do(ly, case, "handle_violation", {"violation_type": "crime", "violation_facts": "强迫交易",
                                          "violation_action": "penalty", "penalty_case_no": "CF-1"})
    assert set(err.value.field_errors) == {"violation_action"}
    do(ly, case, "handle_violation", {"violation_type": "crime", "violation_facts": "导游以暴力威胁强迫交易",
                                      "violation_action": "judicial", "violation_body": "杭州市公安局西湖区分局"})
    (transfer,) = messages(notifier, "external")
    assert transfer["to"] == "杭州市公安局西湖区分局"
    assert transfer["message"] == "移送司法机关（旅游投诉LY-2026-000001，被投诉人：导游王某）：导游以暴力威胁强迫交易"
    told = messages(notifier, "complainant")[-1]
    assert told["message"] == "您的投诉（编号LY-2026-000001）已即时处理：当场制止强迫购物，退还购物款"
    assert tasks(ly, case) == {"archive": "tourism_authority"}
    archive(ly, case)
    assert deadline_names(ly, case) == ["accept"]               # no 立案表, no 受理通知书, no 60 days
    assert not [m for m in notifier.sent if "受理通知书" in m["message"]]
    assert ly.replay(case.instance_id).consistent is True


def test_conduct_stopped_at_once_without_a_violation_is_recorded_and_archived(ly, clock, notifier):
    case = start(ly, clock, **FAST)
    do(ly, case, "immediate_action", {"fast_applicable": "yes", "action_taken": "责令导游恢复被取消的景点",
                                      "fast_outcome": "resolved", "violation_found": "none"})
    assert tasks(ly, case) == {"archive": "tourism_authority"}
    assert messages(notifier, "complainant")[-1]["message"] == "您的投诉（编号LY-2026-000001）已即时处理：责令导游恢复被取消的景点"
    assert not messages(notifier, "external")
    archive(ly, case)
    assert ly.show(case.instance_id)["legal_state"] == "handled_immediately"


def test_conduct_stopped_at_once_that_still_needs_mediation_skips_filing_and_service(ly, clock, notifier):
    case = start(ly, clock, **FAST)
    do(ly, case, "immediate_action", {"fast_applicable": "yes", "action_taken": "责令导游停止甩团",
                                      "fast_outcome": "continue", "violation_found": "none"})
    assert ly.show(case.instance_id)["legal_state"] == "handled_immediately"
    assert tasks(ly, case) == {"review_evidence": "tourism_authority"}
    assert deadline_names(ly, case) == ["accept", "outcome"]
    # 60 days from Tue 04-28: 06-27 is a Saturday -> Mon 06-29
    assert deadline(ly, case, "outcome")["last_day"] == "2026-06-29"
    assert messages(notifier, "acknowledgement")[-1]["message"].endswith("作出处理（制作调解书或者终止调解）：最迟于2026年06月29日。")
    do(ly, case, "review_evidence", {"findings": "甩团属实", "violation_found": "none", "next_step": "mediate"})
    do(ly, case, "mediate", AGREEMENT)
    assert ly.show(case.instance_id)["legal_state"] == "mediation_agreement"
    (agreement,) = messages(notifier, "external")          # no 受理通知书 was served: only the 调解书
    assert agreement["message"].startswith("《旅游投诉调解书》")
    archive(ly, case)


def test_immediate_handling_not_applicable_goes_to_the_admissibility_review(ly, clock):
    case = start(ly, clock, **FAST)
    do(ly, case, "immediate_action", {"fast_applicable": "no", "reason_not_applicable": "事实尚不清楚"})
    assert tasks(ly, case) == {"review_admissibility": "tourism_authority"}
    assert deadline(ly, case, "accept")["status"] == "open"
    assert ly.show(case.instance_id)["legal_state"] is None


# --- filing, service, answer (第十七、十八条) ---------------------------------------------------

def test_accepted_complaint_across_labour_day_to_a_mediation_agreement(ly, clock, notifier):
    case = start(ly, clock, received_at="2026-04-28T09:00")
    # acceptance: 5 working days from Tue 04-28: 04-29 (1), 04-30 (2), 05-01..05-05 off, 05-06 (3), 05-07 (4), 05-08 (5)
    assert deadline(ly, case, "accept")["last_day"] == "2026-05-08"
    clock.set(at("2026-04-29T10:00"))
    accept(ly, case)
    assert ly.show(case.instance_id)["legal_state"] == "accepted"
    assert deadline(ly, case, "accept")["status"] == "met"
    serve = deadline(ly, case, "serve")
    # service: 5 working days from Wed 04-29: 04-30 (1), 05-06 (2), 05-07 (3), 05-08 (4), Sat 05-09 make-up day (5)
    assert (serve["last_day"], serve["unit"], serve["seed"]) == ("2026-05-09", "workdays", "003:497 (第十七条)")
    outcome = deadline(ly, case, "outcome")
    # 60 days from 04-29: 06-28 is a Sunday -> Mon 06-29
    assert (outcome["last_day"], outcome["unit"], outcome["amount"]) == ("2026-06-29", "days", 60)
    assert outcome["seed"] == "003:519 (第二十五条)"
    assert messages(notifier, "acknowledgement")[-1]["message"] == (
        "您的旅游投诉已受理，编号 LY-2026-000001。作出处理（制作调解书或者终止调解）：最迟于2026年06月29日。")
    assert tasks(ly, case) == {"file_case": "tourism_authority"}
    assert open_task(ly, case.instance_id, "file_case")["due"] == serve["due"]

    do(ly, case, "file_case", {"filing_no": "LA-2026-001", "filing_summary": "擅自取消行程", "materials_attached": True})
    notice = messages(notifier, "external")[-1]
    assert notice["to"] == "杭州某国际旅行社" and notice["message"].startswith("《旅游投诉受理通知书》（附投诉书副本）")
    clock.set(at("2026-04-30T15:00"))
    do(ly, case, "confirm_service", {"served_at": "2026-04-30T10:00", "service_method": "direct"})
    assert deadline(ly, case, "serve")["status"] == "met"
    answer_limit = deadline(ly, case, "answer")
    # 10 days from Thu 04-30 (the day the notice was received): Sun 05-10 -> Mon 05-11
    assert (answer_limit["last_day"], answer_limit["unit"], answer_limit["seed"]) == ("2026-05-11", "days",
                                                                                      "003:501 (第十八条)")
    assert open_task(ly, case.instance_id, "record_answer")["due"] == answer_limit["due"]
    clock.set(at("2026-05-08T10:00"))
    answer(ly, case)
    assert deadline(ly, case, "answer")["status"] == "met"
    assert open_task(ly, case.instance_id, "review_evidence")["due"] == outcome["due"]
    do(ly, case, "review_evidence", {"findings": "取消行程属实", "violation_found": "none", "next_step": "mediate"})
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "mediate", dict(AGREEMENT, signed_by_both=False, sealed=None))
    assert {"signed_by_both", "sealed"} <= set(err.value.field_errors)
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "mediate", {"mediation_plan": "p", "mediation_outcome": "failed"})
    assert set(err.value.field_errors) == {"failure_reason"}
    clock.set(at("2026-05-20T10:00"))
    do(ly, case, "mediate", AGREEMENT)
    assert ly.show(case.instance_id)["legal_state"] == "mediation_agreement"
    assert deadline(ly, case, "outcome")["status"] == "met"
    to_complainant = messages(notifier, "complainant")[-1]["message"]
    assert to_complainant.startswith("《旅游投诉调解书》（编号LY-2026-000001）：被投诉人于7日内退还投诉人800元。")
    assert "调解书生效后被投诉人没有执行的，您可以按照国家法律、法规的规定，向仲裁机构申请仲裁或者向人民法院提起诉讼" in to_complainant
    assert messages(notifier, "external")[-1]["message"] == "《旅游投诉调解书》（编号LY-2026-000001）：被投诉人于7日内退还投诉人800元。"
    assert tasks(ly, case) == {"archive": "tourism_authority"}
    archive(ly, case)
    assert [d["status"] for d in ly.show(case.instance_id)["deadlines"]] == ["met", "met", "met", "met"]
    clock.set(at("2026-07-01T00:00"))                         # long after: nothing is left to fire
    assert ly.tick()["timers_fired"] == 0
    assert ly.replay(case.instance_id).consistent is True


def test_service_limit_across_national_day_and_its_supervision(ly, clock):
    case = start(ly, clock, received_at="2026-09-28T09:00")   # Monday
    accept(ly, case)
    # 5 working days from Mon 09-28: 09-29 (1), 09-30 (2), 10-01..10-07 off, 10-08 (3), 10-09 (4), Sat 10-10 make-up (5)
    assert deadline(ly, case, "serve")["last_day"] == "2026-10-10"
    clock.set(at("2026-10-10T23:59"))
    assert ly.tick()["timers_fired"] == 0
    clock.set(at("2026-10-11T00:00"))
    assert ly.tick()["timers_fired"] == 1
    assert tasks(ly, case) == {"file_case": "tourism_authority", "supervise_serve": "tourism_authority_superior"}
    assert deadline(ly, case, "serve")["breached_at"] == "2026-10-10T16:00:00+00:00"
    do(ly, case, "supervise_serve", {"instruction": "立即送达"}, user=SUPERIOR)
    file_and_serve(ly, clock, case, "2026-10-12T10:00")
    assert deadline(ly, case, "serve")["status"] == "breached"
    assert tasks(ly, case) == {"record_answer": "tourism_authority"}
    assert ly.replay(case.instance_id).consistent is True


def test_acceptance_across_mid_autumn_and_national_day(ly, clock):
    case = start(ly, clock, received_at="2026-09-24T10:00")   # Thursday
    # 09-25 Mid-Autumn, 09-26/27 weekend; 09-28 (1), 09-29 (2), 09-30 (3), 10-01..10-07 off, 10-08 (4), 10-09 (5)
    assert deadline(ly, case, "accept")["last_day"] == "2026-10-09"


def test_respondent_not_answering_within_ten_days(ly, clock):
    case = start(ly, clock, received_at="2026-04-20T09:00")
    clock.set(at("2026-04-21T09:00"))
    accept(ly, case)
    file_and_serve(ly, clock, case, "2026-04-23T10:00")
    # 10 days from Thu 04-23: Sun 05-03, a Labour Day holiday -> first working day Wed 05-06
    assert deadline(ly, case, "answer")["last_day"] == "2026-05-06"
    clock.set(at("2026-05-06T23:59"))
    assert ly.tick()["timers_fired"] == 0
    clock.set(at("2026-05-07T00:00"))
    assert ly.tick()["timers_fired"] == 1
    assert tasks(ly, case) == {"answer_overdue": "tourism_authority"}
    late = deadline(ly, case, "answer")
    assert late["status"] == "breached" and late["breached_at"] == "2026-05-06T16:00:00+00:00"
    do(ly, case, "answer_overdue", {"urged": True, "handling_note": "电话催告未果，依现有证据处理"})
    assert tasks(ly, case) == {"review_evidence": "tourism_authority"}
    assert ly.replay(case.instance_id).consistent is True


# --- the 60 days (第二十五条): reminder and supervision ----------------------------------------

def test_sixty_days_across_national_day_remind_then_supervision(ly, clock, notifier):
    case = start(ly, clock, received_at="2026-08-03T09:00")
    clock.set(at("2026-08-04T09:00"))
    to_mediation(ly, clock, case, served_at="2026-08-05T10:00")
    # 60 days from Tue 08-04: 27 days to 08-31, 30 in September, 3 in October = Sat 10-03, National Day -> Thu 10-08
    outcome = deadline(ly, case, "outcome")
    assert outcome["last_day"] == "2026-10-08" and outcome["due"] == "2026-10-08T16:00:00+00:00"
    # reminder: the end of the 5th working day before 10-08 -- 09-30 (1), 09-29 (2), 09-28 (3),
    # 09-25 Mid-Autumn and the weekend skipped, 09-24 (4), 09-23 (5) -> 09-24 00:00
    assert data(ly, case)["deadlines"]["outcome.remind"] == "2026-09-24T00:00:00+08:00"
    staff_before = len(messages(notifier, "staff"))
    clock.set(at("2026-09-23T23:59"))
    assert ly.tick()["timers_fired"] == 0
    clock.set(at("2026-09-24T00:00"))
    assert ly.tick()["timers_fired"] == 1
    (reminder,) = messages(notifier, "staff")[staff_before:]
    assert reminder["to"] == "role:tourism_authority" and "2026-10-08，还有5个工作日" in reminder["message"]
    assert deadline(ly, case, "outcome")["status"] == "open"         # a reminder is not a breach

    clock.set(at("2026-10-08T23:59"))
    assert ly.tick()["timers_fired"] == 0
    clock.set(at("2026-10-09T00:00"))
    assert ly.tick()["timers_fired"] == 1
    assert tasks(ly, case) == {"mediate": "tourism_authority", "supervise_outcome": "tourism_authority_superior"}
    assert deadline(ly, case, "outcome")["status"] == "breached"
    assert ly.show(case.instance_id)["legal_state"] == "accepted"   # the seed attaches no legal effect to the overrun
    do(ly, case, "supervise_outcome", {"instruction": "立即出具终止调解书"}, user=SUPERIOR)
    do(ly, case, "mediate", {"mediation_plan": "退还部分费用", "mediation_outcome": "failed",
                             "failure_reason": "双方对退款金额分歧较大"})
    assert ly.show(case.instance_id)["legal_state"] == "mediation_terminated"
    assert deadline(ly, case, "outcome")["status"] == "breached"
    assert tasks(ly, case) == {"deposit_review": "tourism_authority"}
    assert ly.replay(case.instance_id).consistent is True


# --- evidence (第十九—二十二条), violations (第四条) -------------------------------------------

def test_further_evidence_entrustment_and_appraisal_do_not_pause_the_sixty_days(ly, clock, notifier):
    case = start(ly, clock)
    accept(ly, case)
    file_and_serve(ly, clock, case, "2026-04-30T10:00")
    answer(ly, case)
    before = deadline(ly, case, "outcome")
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "review_evidence", {"findings": "待查", "violation_found": "none", "next_step": "entrust_investigation"})
    assert set(err.value.field_errors) == {"entrusted_authority", "entrusted_matters"}
    do(ly, case, "review_evidence", {"findings": "待查", "violation_found": "none", "next_step": "entrust_investigation",
                                     "entrusted_authority": "淳安县旅游投诉处理机构", "entrusted_matters": "核实千岛湖码头当日是否停航"})
    letter = messages(notifier, "external")[-1]
    assert letter["to"] == "淳安县旅游投诉处理机构"
    assert letter["message"] == "《旅游投诉调查取证委托书》（投诉LY-2026-000001）：请协助调查、取证：核实千岛湖码头当日是否停航"
    do(ly, case, "entrusted_result", {"entrusted_result": "当日码头正常开航"})
    do(ly, case, "review_evidence", {"findings": "码头正常开航", "violation_found": "none", "next_step": "appraisal",
                                     "appraisal_matter": "行程单签字笔迹"})
    assert tasks(ly, case) == {"appraisal": "tourism_authority"}
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "appraisal", {"body_basis": "statutory", "appraisal_body": "司法鉴定中心", "cost_agreed": False,
                                   "appraisal_result": "签字非本人所写"})
    assert set(err.value.field_errors) == {"applicant"}
    clock.set(at("2026-06-10T10:00"))                          # the appraisal took six weeks
    do(ly, case, "appraisal", {"body_basis": "statutory", "appraisal_body": "司法鉴定中心", "cost_agreed": False,
                               "applicant": "complainant", "appraisal_result": "签字非本人所写"})
    after = deadline(ly, case, "outcome")
    assert (after["due"], after["paused_days"], after["status"]) == (before["due"], 0, "open")
    do(ly, case, "review_evidence", {"findings": "x", "violation_found": "none", "next_step": "collect_evidence"})
    do(ly, case, "collect_evidence", {"collection_method": "convene", "collection_result": "召集双方调查"})
    assert data(ly, case)["evidence_rounds"] == 3
    do(ly, case, "review_evidence", {"findings": "x", "violation_found": "none", "next_step": "collect_evidence"})
    assert tasks(ly, case) == {"mediate": "tourism_authority"}          # the fourth round is not opened
    assert ly.replay(case.instance_id).consistent is True


def test_violation_found_in_review_is_proposed_to_the_competent_department_once(ly, clock, notifier):
    case = start(ly, clock)
    accept(ly, case)
    file_and_serve(ly, clock, case, "2026-04-30T10:00")
    answer(ly, case)
    do(ly, case, "review_evidence", {"findings": "未经许可经营出境游", "violation_found": "administrative",
                                     "next_step": "collect_evidence"})
    assert tasks(ly, case) == {"handle_violation": "tourism_authority"}
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "handle_violation", {"violation_type": "administrative", "violation_facts": "超范围经营",
                                          "violation_action": "propose"})
    assert set(err.value.field_errors) == {"violation_body"}
    do(ly, case, "handle_violation", {"violation_type": "administrative", "violation_facts": "超范围经营出境旅游业务",
                                      "violation_action": "propose", "violation_body": "浙江省文化和旅游厅"})
    proposal = messages(notifier, "external")[-1]
    assert proposal["to"] == "浙江省文化和旅游厅"
    assert proposal["message"] == "行政处罚建议（旅游投诉LY-2026-000001，被投诉人：杭州某国际旅行社）：超范围经营出境旅游业务"
    assert tasks(ly, case) == {"collect_evidence": "tourism_authority"}   # the complaint itself goes on
    do(ly, case, "collect_evidence", {"collection_method": "self", "collection_result": "调取经营许可证"})
    sent = len(notifier.sent)
    do(ly, case, "review_evidence", {"findings": "x", "violation_found": "administrative", "next_step": "mediate"})
    assert tasks(ly, case) == {"mediate": "tourism_authority"} and len(notifier.sent) == sent


def test_a_penalty_by_the_authority_itself_sends_nothing_out(ly, clock, notifier):
    case = start(ly, clock)
    accept(ly, case)
    file_and_serve(ly, clock, case, "2026-04-30T10:00")
    answer(ly, case)
    do(ly, case, "review_evidence", {"findings": "x", "violation_found": "administrative", "next_step": "mediate"})
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "handle_violation", {"violation_type": "administrative", "violation_facts": "未签订书面合同",
                                          "violation_action": "penalty"})
    assert set(err.value.field_errors) == {"penalty_case_no"}
    sent = len(notifier.sent)
    do(ly, case, "handle_violation", {"violation_type": "administrative", "violation_facts": "未签订书面合同",
                                      "violation_action": "penalty", "penalty_case_no": "浙旅罚〔2026〕12号"})
    assert len(notifier.sent) == sent and tasks(ly, case) == {"mediate": "tourism_authority"}


# --- mediation failed, quality deposit (第二十五条第（二）项, 第二十六条) ------------------------

def fail_mediation(ly, clock, case):
    to_mediation(ly, clock, case)
    do(ly, case, "mediate", {"mediation_plan": "退还部分费用", "mediation_outcome": "failed",
                             "failure_reason": "旅行社已停业"})


def test_failed_mediation_issues_the_termination_and_the_authority_decides_the_deposit(ly, clock, notifier):
    case = start(ly, clock)
    fail_mediation(ly, clock, case)
    assert ly.show(case.instance_id)["legal_state"] == "mediation_terminated"
    assert deadline(ly, case, "outcome")["status"] == "met"
    termination = messages(notifier, "complainant")[-1]["message"]
    assert termination == ("《旅游投诉终止调解书》（编号LY-2026-000001）：调解不成，终止调解。旅行社已停业。"
                           "您可以按照国家法律、法规的规定，向仲裁机构申请仲裁或者向人民法院提起诉讼。")
    assert messages(notifier, "external")[-1]["message"] == "《旅游投诉终止调解书》（编号LY-2026-000001）：调解不成，终止调解。"
    assert tasks(ly, case) == {"deposit_review": "tourism_authority"}
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "deposit_review", {"deposit_situation": "stranded_costs"})
    assert set(err.value.field_errors) == {"deposit_mode", "deposit_amount", "deposit_basis"}
    do(ly, case, "deposit_review", {"deposit_situation": "stranded_costs", "deposit_mode": "decide",
                                    "deposit_amount": 2600, "deposit_basis": "滞留期间食宿和返程机票"})
    assert messages(notifier, "complainant")[-1]["message"] == (
        "本机构已作出划拨旅行社质量保证金赔偿的决定（投诉编号LY-2026-000001），赔偿金额2600元。")
    assert messages(notifier, "external")[-1]["to"] == "杭州某国际旅行社"
    archive(ly, case)
    assert ly.replay(case.instance_id).consistent is True


def test_deposit_proposal_rejected_by_the_tourism_administration(ly, clock, notifier):
    case = start(ly, clock)
    fail_mediation(ly, clock, case)
    do(ly, case, "deposit_review", {"deposit_situation": "agency_prepaid_loss", "deposit_mode": "propose",
                                    "deposit_amount": 1200, "deposit_basis": "旅行社解散，预交团费未退"})
    assert tasks(ly, case) == {"deposit_proposal_review": "tourism_administration"}
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "deposit_proposal_review", {"approved": True, "decision_reason": "同意"}, user=ADMIN)
    assert set(err.value.field_errors) == {"approved_amount"}
    do(ly, case, "deposit_proposal_review", {"approved": False, "decision_reason": "旅行社已足额退款"}, user=ADMIN)
    assert messages(notifier, "complainant")[-1]["message"] == (
        "旅游行政管理部门未采纳划拨旅行社质量保证金的建议（投诉编号LY-2026-000001）：旅行社已足额退款。"
        "您可以向仲裁机构申请仲裁或者向人民法院提起诉讼。")
    archive(ly, case)


def test_deposit_proposal_approved_by_the_tourism_administration(ly, clock, notifier):
    case = start(ly, clock)
    fail_mediation(ly, clock, case)
    do(ly, case, "deposit_review", {"deposit_situation": "agency_prepaid_loss", "deposit_mode": "propose",
                                    "deposit_amount": 1200, "deposit_basis": "旅行社解散，预交团费未退"})
    do(ly, case, "deposit_proposal_review", {"approved": True, "approved_amount": 1200, "decision_reason": "属实"},
       user=ADMIN)
    assert messages(notifier, "complainant")[-1]["message"] == (
        "旅游行政管理部门已决定划拨旅行社质量保证金赔偿（投诉编号LY-2026-000001），金额1200元。")
    archive(ly, case)


def test_failed_mediation_outside_the_two_deposit_cases_goes_to_the_archive(ly, clock, notifier):
    agency = start(ly, clock)
    fail_mediation(ly, clock, agency)
    do(ly, agency, "deposit_review", {"deposit_situation": "none"})
    assert tasks(ly, agency) == {"archive": "tourism_authority"}
    archive(ly, agency)

    hotel = start(ly, clock, respondent="西湖某酒店", respondent_type="accommodation")
    fail_mediation(ly, clock, hotel)
    assert tasks(ly, hotel) == {"archive": "tourism_authority"}      # 第二十六条 concerns travel agencies only
    archive(ly, hotel)


# --- settlement and withdrawal (第二十三条), joint complaints (第十四条) --------------------------

def test_settlement_reported_with_the_answer_is_verified_and_recorded(ly, clock, notifier):
    case = start(ly, clock)
    accept(ly, case)
    file_and_serve(ly, clock, case, "2026-04-30T10:00")
    do(ly, case, "record_answer", {"answer_status": "settlement_or_withdrawal"})
    assert tasks(ly, case) == {"record_settlement": "tourism_authority"}
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "record_settlement", {"settlement_kind": "settlement", "settlement_result": "退款1000元",
                                           "all_complainants_consent": True})
    assert set(err.value.field_errors) == {"verified", "signed"}
    do(ly, case, "record_settlement", {"settlement_kind": "settlement", "settlement_result": "退款1000元",
                                       "verified": True, "signed": True, "all_complainants_consent": True})
    assert ly.show(case.instance_id)["legal_state"] == "settled"
    assert deadline(ly, case, "outcome")["status"] == "met"
    assert messages(notifier, "complainant")[-1]["message"] == (
        "您与杭州某国际旅行社的和解结果已经核实并记录（编号LY-2026-000001）：退款1000元。")
    archive(ly, case)
    assert ly.replay(case.instance_id).consistent is True


def test_withdrawal_during_the_evidence_review(ly, clock, notifier):
    case = start(ly, clock)
    accept(ly, case)
    file_and_serve(ly, clock, case, "2026-04-30T10:00")
    answer(ly, case)
    do(ly, case, "review_evidence", {"findings": "x", "violation_found": "none", "next_step": "settlement_or_withdrawal"})
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "record_settlement", {"settlement_kind": "withdrawal", "all_complainants_consent": True})
    assert set(err.value.field_errors) == {"withdrawal_reason"}
    do(ly, case, "record_settlement", {"settlement_kind": "withdrawal", "withdrawal_reason": "已另行解决",
                                       "all_complainants_consent": True})
    assert ly.show(case.instance_id)["legal_state"] == "withdrawn"
    assert messages(notifier, "complainant")[-1]["message"] == "您已撤回投诉（编号LY-2026-000001），本案终结。"
    archive(ly, case)


JOINT = {"complainant_count": 6, "same_cause": True, "representatives": ["张三", "李四", "王五"]}


def test_a_joint_complaint_settlement_without_everyone_s_consent_does_not_take_effect(ly, clock, notifier):
    case = start(ly, clock, **JOINT)
    to_mediation(ly, clock, case)
    settle = {"settlement_kind": "settlement", "settlement_result": "每人退款200元", "verified": True, "signed": True,
              "all_complainants_consent": False}
    for round_ in (1, 2):
        do(ly, case, "mediate", {"mediation_plan": "代表人与旅行社协商", "mediation_outcome": "settlement_or_withdrawal"})
        do(ly, case, "record_settlement", settle)
        assert "应当经全体投诉人同意" in messages(notifier, "complainant")[-1]["message"]
        assert tasks(ly, case) == {"mediate": "tourism_authority"}, round_
        assert ly.show(case.instance_id)["legal_state"] == "accepted"
    do(ly, case, "mediate", {"mediation_plan": "再次协商", "mediation_outcome": "settlement_or_withdrawal"})
    do(ly, case, "record_settlement", settle)                   # third time: the mediation cannot succeed
    assert ly.show(case.instance_id)["legal_state"] == "mediation_terminated"
    assert "共同投诉人未能全体同意代表人变更、放弃投诉请求或者和解，调解不成" in messages(notifier, "complainant")[-1]["message"]
    consent_notices = [m for m in messages(notifier, "complainant") if "应当经全体投诉人同意" in m["message"]]
    assert len(consent_notices) == 2
    assert tasks(ly, case) == {"deposit_review": "tourism_authority"}
    # the case page shows the rounds as they stand, though the 60-day watch branch ended later
    assert ly.case_detail(case.instance_id)["data"]["consent_rounds"] == 3
    assert ly.replay(case.instance_id).consistent is True


def test_a_joint_complaint_settles_with_everyone_s_consent(ly, clock):
    case = start(ly, clock, **JOINT)
    to_mediation(ly, clock, case)
    do(ly, case, "mediate", {"mediation_plan": "代表人与旅行社协商", "mediation_outcome": "settlement_or_withdrawal"})
    do(ly, case, "record_settlement", {"settlement_kind": "settlement", "settlement_result": "每人退款200元",
                                       "verified": True, "signed": True, "all_complainants_consent": True})
    assert ly.show(case.instance_id)["legal_state"] == "settled"


def test_a_joint_agreement_changing_the_claims_needs_everyone_s_consent(ly, clock, notifier):
    case = start(ly, clock, **JOINT)
    to_mediation(ly, clock, case)
    with pytest.raises(InvalidInput) as err:
        do(ly, case, "mediate", dict(AGREEMENT, claims_changed=True))
    assert set(err.value.field_errors) == {"all_complainants_consent"}
    do(ly, case, "mediate", dict(AGREEMENT, claims_changed=True, all_complainants_consent=False))
    assert tasks(ly, case) == {"mediate": "tourism_authority"}
    assert ly.show(case.instance_id)["legal_state"] == "accepted"
    do(ly, case, "mediate", dict(AGREEMENT, claims_changed=True, all_complainants_consent=True))
    assert ly.show(case.instance_id)["legal_state"] == "mediation_agreement"


def test_a_single_complainant_agreement_that_changes_the_claims_needs_no_joint_consent(ly, clock):
    case = start(ly, clock)
    to_mediation(ly, clock, case)
    do(ly, case, "mediate", dict(AGREEMENT, claims_changed=True, all_complainants_consent=False))
    assert ly.show(case.instance_id)["legal_state"] == "mediation_agreement"


# --- the complainant withdraws: the `withdrawal` message (003:485; issue 13) ----------------

WITHDRAWAL = {"withdrawn_at": "2026-05-06T09:30:00+08:00", "withdrawal_way": "phone",
              "withdrawal_reason": "旅行社已主动退款，不再要求处理"}


def test_withdrawal_message_while_the_answer_is_awaited_ends_every_limit(ly, clock, notifier):
    case = start(ly, clock)
    accept(ly, case)
    file_and_serve(ly, clock, case, "2026-04-30T10:00")
    assert deadline(ly, case, "answer")["last_day"] == "2026-05-11"     # Sun 05-10 rolled forward
    clock.set(at("2026-05-06T10:00"))
    ly.send_message(case.instance_id, "withdrawal", WITHDRAWAL, STAFF)
    shown = ly.show(case.instance_id)
    assert shown["legal_state"] == "withdrawn"
    # done before the withdrawal: met; ended by it, the answer never given: stopped (not "on time")
    assert {d["name"]: d["status"] for d in shown["deadlines"]} == {
        "accept": "met", "serve": "met", "answer": "stopped", "outcome": "stopped"}
    assert tasks(ly, case) == {"archive": "tourism_authority"}
    assert data(ly, case)["withdrawal"]["withdrawal_reason"] == "旅行社已主动退款，不再要求处理"
    assert messages(notifier, "complainant")[-1]["message"] == "您已撤回投诉（编号LY-2026-000001），本案终结。"
    clock.set(at("2026-05-12T00:00"))        # the answer's limit would have passed now: nothing is left to fire
    assert ly.tick()["timers_fired"] == 0
    assert tasks(ly, case) == {"archive": "tourism_authority"}
    archive(ly, case)


def test_withdrawal_after_the_case_closed_is_refused_and_changes_nothing(ly, clock, notifier):
    case = start(ly, clock)
    to_mediation(ly, clock, case)
    clock.set(at("2026-05-07T10:00"))
    ly.send_message(case.instance_id, "withdrawal", WITHDRAWAL, STAFF)
    archive(ly, case)
    before = (ly.show(case.instance_id), len(ly.history(case.instance_id)), len(notifier.sent))
    clock.set(at("2026-05-08T10:00"))
    with pytest.raises(Conflict) as err:
        ly.send_message(case.instance_id, "withdrawal", dict(WITHDRAWAL, withdrawal_reason="再次撤回"), STAFF)
    assert "LY-2026-000001" in str(err.value) and "closed" in str(err.value)
    assert (ly.show(case.instance_id), len(ly.history(case.instance_id)), len(notifier.sent)) == before
    assert ly.replay(case.instance_id).consistent


def test_withdrawal_before_acceptance_is_not_awaited_and_changes_nothing(ly, clock):
    """Withdrawal is wired from the respondent's answer on (see docs/processes/tourism.md, Messages):
    during the admissibility review the message is refused and the case stays as it was."""
    case = start(ly, clock)
    before = (ly.show(case.instance_id), len(ly.history(case.instance_id)))
    with pytest.raises(Conflict) as err:
        ly.send_message(case.instance_id, "withdrawal", WITHDRAWAL, STAFF)
    assert "withdrawal" in str(err.value)
    assert (ly.show(case.instance_id), len(ly.history(case.instance_id))) == before
