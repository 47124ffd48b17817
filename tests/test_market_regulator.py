"""market_regulator (county market supervision bureau: complaints 投诉, reports 举报, inquiries 咨询):
every path through the service layer with a controlled clock. Seeds: 004:1-234 (the 2017 county
rules); 001:45-72, 146-156 (SAMR Order No. 20 arts. 1-10). See docs/processes/market_regulator.md.

Dates are worked out by hand on the official 2026 calendar (Qingming 04-05/06 off; Labour Day
05-01..05 off, Sat 05-09 worked; Mid-Autumn 09-25; National Day 10-01..07 off, Sun 09-20 and
Sat 10-10 worked) and were checked with `complaintflow calendar deadline`. A day limit is due at
00:00 (Asia/Shanghai) after its last day, i.e. 16:00 UTC on the last day."""

from __future__ import annotations

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput
from conftest import PROCESSES, open_task

COMPLAINT = {
    "request_type": "complaint", "channel": "phone", "requester_name": "张女士", "contact": "13800000001",
    "address": "城关镇幸福路1号", "respondent": "城关某超市", "respondent_address": "城关镇解放路2号",
    "content": "购买的纯牛奶已超过保质期", "complaint_request": "退货并按规定赔偿",
}
REPORT = {
    "request_type": "report", "channel": "platform", "requester_name": "李先生", "contact": "13900000002",
    "respondent": "某食品作坊", "content": "无证生产糕点，卫生条件差",
}
INQUIRY = {
    "request_type": "inquiry", "channel": "phone", "requester_name": "赵先生", "contact": "13700000003",
    "content": "个体工商户变更经营范围需要哪些材料",
}
GROUND_EXPIRED = ("《工商行政管理部门处理消费者投诉办法》第十六条（六）消费者知道或者应该知道自己的权益受到侵害超过一年的，"
                  "或者消费者无法证实自己权益受到侵害的")
GROUND_COURT = "《产品质量申诉处理办法》第十三条（一）法院、仲裁机构或者有关行政机关已经受理或者处理的"
GROUND_NO_OBJECT = "《食品药品投诉举报管理办法》第十二条（一）无具体明确的被投诉举报对象和违法行为的"


@pytest.fixture
def mr(service):
    service.deploy([PROCESSES / "market_regulator.bpmn"])
    return service


def at(text):
    return parse_instant(text)


def start(svc, base, **overrides):
    return svc.start("market_regulator", dict(base, **overrides), "center_chen")


def do(svc, case, task, data, user="staff"):
    return svc.complete_task(open_task(svc, case.instance_id, task)["task_id"], user, data)


def roles(svc, case):
    return {t["task"]: t["role"] for t in svc.list_tasks(instance_id=case.instance_id)}


def deadline(svc, case, name):
    return next(d for d in svc.show(case.instance_id)["deadlines"] if d["name"] == name)


def sent_to(notifier, kind):
    return [m for m in notifier.sent if m["kind"] == kind]


def dispatch(svc, case, route="station", unit="城关市场监管所", approve=True, **flags):
    do(svc, case, "dispatch", dict({"dispatch_action": "dispatch", "route": route, "unit_name": unit,
                                    "proposal": f"交{unit}办理"}, **flags))
    if approve:
        do(svc, case, "approve_routing_deputy", {"routing_decision": "approve", "routing_opinion": "同意"},
           user="deputy_liu")


def name_handler(svc, case):
    do(svc, case, "name_handler", {"handler_name": "王承办"}, user="head_sun")


def accept(svc, case):
    do(svc, case, "decide_acceptance", {"acceptance": "accept", "acceptance_note": "材料齐全"}, user="handler_wang")


def review_and_approve(svc, case, approver_task):
    do(svc, case, "legal_review", {"legal_opinion": "pass"}, user="legal_zhou")
    assert set(roles(svc, case)) >= {approver_task}
    do(svc, case, approver_task, {"reply_approval": "approve"}, user="approver")


def revisit(svc, case, done="yes"):
    data = ({"revisit_done": "yes", "revisit_method": "phone", "time_limits_kept": True,
             "attitude_rating": "satisfied", "result_satisfaction": "satisfied"} if done == "yes"
            else {"revisit_done": "no", "no_revisit_reason": "投诉人表示无需回访"})
    return do(svc, case, "revisit", data, user="center_chen")


def assert_closed(svc, case, legal_state):
    shown = svc.show(case.instance_id)
    assert shown["status"] == "completed" and shown["closed"] is not None
    assert shown["legal_state"] == legal_state
    assert shown["open_tasks"] == []
    assert svc.replay(case.instance_id).consistent is True


# --- registration -----------------------------------------------------------------------------------

def test_complaint_is_numbered_and_acknowledged_with_its_acceptance_limit_across_qingming(mr, clock, notifier):
    clock.set(at("2026-04-02T10:00"))                                    # Thursday before Qingming
    case = start(mr, COMPLAINT)
    assert case.case_number == "SJ-2026-000001"
    assert roles(mr, case) == {"dispatch": "complaint_center"}
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == "13800000001"
    # 7 working days from Thu 04-02: 04-03, (04-04..06 Sat/Qingming off) 04-07, 08, 09, 10, 13, 14
    assert ack["message"] == ("您的投诉已登记，编号 SJ-2026-000001。作出是否受理的决定并告知您：最迟于2026年04月14日。")
    accept_limit = deadline(mr, case, "accept")
    assert (accept_limit["unit"], accept_limit["amount"], accept_limit["last_day"]) == ("workdays", 7, "2026-04-14")
    assert accept_limit["due"] == "2026-04-14T16:00:00+00:00" and accept_limit["status"] == "open"
    assert accept_limit["seed"] == "004:138; SAMR Order No. 20 Art. 14"
    # 1 working day to dispatch: Fri 04-03
    dispatch_limit = deadline(mr, case, "dispatch")
    assert (dispatch_limit["last_day"], dispatch_limit["seed"]) == ("2026-04-03", "004:110")
    assert open_task(mr, case.instance_id, "dispatch")["due"] == "2026-04-03T16:00:00+00:00"
    assert mr.show(case.instance_id)["legal_state"] is None


def test_limits_count_from_receipt_when_a_letter_is_registered_later(mr, clock):
    clock.set(at("2026-04-07T09:00"))                                    # registered Tuesday after Qingming
    case = start(mr, COMPLAINT, channel="letter", received_at="2026-04-03T16:00:00")   # letter received Friday
    # counted from Fri 04-03, not from the registration: dispatch, 1 working day -> Tue 04-07 (Qingming);
    # acceptance, 7 working days -> 04-07, 08, 09, 10, 13, 14, 15
    assert deadline(mr, case, "dispatch")["last_day"] == "2026-04-07"
    assert deadline(mr, case, "accept")["last_day"] == "2026-04-15"
    assert deadline(mr, case, "accept")["start"] == "2026-04-03T08:00:00+00:00"


def test_intake_refuses_incomplete_or_contradictory_records_and_stores_nothing(mr, notifier):
    def errors(**data):
        with pytest.raises(InvalidInput) as err:
            mr.start("market_regulator", data, "center_chen")
        return set(err.value.field_errors)

    # a complaint needs the complainant's address, the respondent and the request (001:56)
    bare = {k: v for k, v in COMPLAINT.items() if k not in ("address", "respondent", "respondent_address",
                                                             "complaint_request")}
    assert errors(**bare) == {"address", "respondent", "respondent_address", "complaint_request"}
    # only a reporter may stay anonymous (004:106); an anonymous record holds no name
    assert errors(**dict(COMPLAINT, anonymous=True)) == {"request_type", "requester_name", "address"}
    assert errors(**dict(REPORT, anonymous=True)) == {"requester_name"}
    # without anonymity the identity is required
    assert errors(**{k: v for k, v in REPORT.items() if k != "contact"}) == {"contact"}
    # a mixed record names its types; a single-type record does not
    assert errors(**dict(INQUIRY, request_type="mixed")) == {"mixed_types"}
    assert errors(**dict(INQUIRY, request_type="mixed", mixed_types=["inquiry"])) == {"mixed_types"}
    assert "mixed_types" in errors(**dict(INQUIRY, mixed_types=["inquiry", "report"]))
    # an agent brings the original power of attorney and proof of identity (001:58-59)
    assert errors(**dict(COMPLAINT, by_agent=True, agent_name="张律师", power_of_attorney=False)) == {
        "agent_id_proof", "power_of_attorney", "authorization_terms"}
    # a matter from a superior or another department names who sent it (004:36, 172)
    assert errors(**dict(REPORT, assigned_by_superior=True)) == {"forwarded_by"}
    assert errors(**dict(REPORT, channel="transferred")) == {"forwarded_by"}
    assert mr.list_cases() == [] and notifier.sent == []


def test_a_mixed_record_is_split_into_a_complaint_a_report_and_an_inquiry(mr, clock, notifier):
    clock.set(at("2026-04-02T10:00"))
    parent = start(mr, COMPLAINT, request_type="mixed", mixed_types=["complaint", "report", "inquiry"],
                   content="买到过期牛奶要求赔偿；该超市还在销售无标签食品；想了解如何查询食品生产许可")
    assert_closed(mr, parent, "split")
    cases = {c["case_number"]: c for c in mr.list_cases()}
    assert set(cases) == {"SJ-2026-000001", "SJ-2026-000002", "SJ-2026-000003", "SJ-2026-000004"}
    children = {}
    for number in ("SJ-2026-000002", "SJ-2026-000003", "SJ-2026-000004"):
        iid = cases[number]["instance_id"]
        started = mr.history(iid)[0]
        assert started["actor"] == "system (split of SJ-2026-000001)"
        assert started["payload"]["data"]["split_from"] == "SJ-2026-000001"
        children[started["payload"]["data"]["request_type"]] = iid
        assert mr.replay(iid).consistent is True
    assert {t["task"]: t["role"] for t in mr.list_tasks(instance_id=children["complaint"])} == {
        "dispatch": "complaint_center"}
    assert {t["task"] for t in mr.list_tasks(instance_id=children["report"])} == {"dispatch"}
    assert {t["task"] for t in mr.list_tasks(instance_id=children["inquiry"])} == {"answer_inquiry"}
    # each part keeps its own limits: the complaint's acceptance limit, the report's filing limit
    complaint = mr.show(children["complaint"])["deadlines"]
    assert [(d["name"], d["last_day"]) for d in complaint] == [("dispatch", "2026-04-03"), ("accept", "2026-04-14")]
    report = mr.show(children["report"])["deadlines"]
    assert [(d["name"], d["last_day"]) for d in report] == [("dispatch", "2026-04-03"), ("filing", "2026-04-14")]
    acks = [m["message"] for m in sent_to(notifier, "acknowledgement")]
    assert acks == ["您的投诉已登记，编号 SJ-2026-000002。作出是否受理的决定并告知您：最迟于2026年04月14日。",
                    "您的举报已登记，编号 SJ-2026-000003。核查并决定是否立案：最迟于2026年04月14日。"]
    told = sent_to(notifier, "complainant")[-1]
    assert told["case_number"] == "SJ-2026-000001" and told["to"] == "13800000001"
    assert "SJ-2026-000002、SJ-2026-000003、SJ-2026-000004" in told["message"]


def test_a_complaint_with_an_inquiry_made_through_an_agent_is_split_in_two(mr, notifier):
    agent = {"by_agent": True, "agent_name": "张律师", "agent_id_proof": True, "power_of_attorney": True,
             "authorization_terms": "代为投诉及参加调解，期限三个月"}
    parent = start(mr, COMPLAINT, request_type="mixed", mixed_types=["inquiry", "complaint"], **agent)
    assert_closed(mr, parent, "split")
    children = [c for c in mr.list_cases() if c["case_number"] != parent.case_number]
    data = {mr.history(c["instance_id"])[0]["payload"]["data"]["request_type"]: mr.history(c["instance_id"])[0]["payload"]["data"]
            for c in children}
    assert set(data) == {"complaint", "inquiry"}
    assert data["complaint"]["agent_name"] == "张律师" and data["complaint"]["power_of_attorney"] is True
    assert data["complaint"]["complaint_request"] == "退货并按规定赔偿"
    assert data["inquiry"]["mixed_types"] == [] and data["inquiry"]["split_from"] == parent.case_number
    assert notifier.sent[-1]["message"].endswith("编号：SJ-2026-000002、SJ-2026-000003。")


# --- inquiries (004:112) ---------------------------------------------------------------------------------

def test_simple_inquiry_answered_on_the_spot(mr, clock, notifier):
    case = start(mr, INQUIRY)
    assert roles(mr, case) == {"answer_inquiry": "complaint_center"}
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "answer_inquiry", {"inquiry_mode": "on_spot"})
    assert set(err.value.field_errors) == {"answer"}
    assert roles(mr, case) == {"answer_inquiry": "complaint_center"}          # nothing changed
    do(mr, case, "answer_inquiry", {"inquiry_mode": "on_spot", "answer": "携带营业执照和申请书到登记窗口办理"})
    assert_closed(mr, case, None)
    assert deadline(mr, case, "dispatch")["status"] == "met"
    assert notifier.sent == []


def test_inquiry_outside_the_remit_is_told_where_to_ask(mr, notifier):
    case = start(mr, INQUIRY, content="劳动合同到期不续签是否有补偿")
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "answer_inquiry", {"inquiry_mode": "out_of_remit"})
    assert set(err.value.field_errors) == {"refer_to"}
    do(mr, case, "answer_inquiry", {"inquiry_mode": "out_of_remit", "refer_to": "县人力资源和社会保障局"})
    (told,) = notifier.sent
    assert told["kind"] == "complainant" and told["message"] == (
        "您咨询的事项不属于市场监督管理部门职责范围，请向县人力资源和社会保障局咨询。")
    assert_closed(mr, case, None)


def test_specialised_inquiry_is_registered_and_answered_later(mr, clock, notifier):
    case = start(mr, INQUIRY, channel="letter", content="保健食品标签标注功能声称的具体要求")
    do(mr, case, "answer_inquiry", {"inquiry_mode": "register_and_reply"})
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and "已先行登记" in ack["message"] and "SJ-2026-000001" in ack["message"]
    assert roles(mr, case) == {"reply_inquiry": "complaint_center"}
    assert deadline(mr, case, "dispatch")["status"] == "met"
    clock.advance(days=2)
    do(mr, case, "reply_inquiry", {"inquiry_reply": "依据《保健食品标注警示用语指南》……", "reply_method": "written"})
    assert notifier.sent[-1]["message"].startswith("关于您的咨询（编号SJ-2026-000001）：依据")
    assert_closed(mr, case, None)


def test_inquiry_for_a_unit_is_dispatched_without_approval_and_answered_there(mr, clock, notifier):
    case = start(mr, INQUIRY)
    do(mr, case, "answer_inquiry", {"inquiry_mode": "to_unit", "route": "bureau_unit", "unit_name": "登记注册科"})
    assert roles(mr, case) == {"name_handler": "unit_head"}                # no approval for an inquiry
    assert notifier.sent[-1]["to"] == "role:unit_head" and notifier.sent[-1]["message"].startswith(
        "登记注册科：咨询SJ-2026-000001已分流至本单位")
    name_handler(mr, case)
    assert roles(mr, case) == {"answer_inquiry_unit": "handler"}
    do(mr, case, "answer_inquiry_unit", {"inquiry_reply": "需提交变更登记申请书和营业执照正副本",
                                         "reply_method": "phone"}, user="handler_wang")
    assert [m["kind"] for m in notifier.sent] == ["acknowledgement", "staff", "complainant", "staff"]
    assert notifier.sent[-1]["to"] == "role:complaint_center"             # the result is kept by the centre
    assert [(d["name"], d["status"]) for d in mr.show(case.instance_id)["deadlines"]] == [
        ("dispatch", "met"), ("naming", "met")]
    assert_closed(mr, case, None)


# --- complaints --------------------------------------------------------------------------------------------

def test_complaint_sent_to_a_station_is_accepted_mediated_with_an_appraisal_and_settled(mr, clock, notifier):
    clock.set(at("2026-04-28T09:00"))                                    # Tuesday before Labour Day
    case = start(mr, COMPLAINT, written_reply_requested=True)
    # acceptance: 7 working days from Tue 04-28: 04-29, 04-30, (05-01..05 off) 05-06, 07, 08, Sat 05-09, Mon 05-11
    assert deadline(mr, case, "accept")["last_day"] == "2026-05-11"
    assert deadline(mr, case, "dispatch")["last_day"] == "2026-04-29"
    with pytest.raises(InvalidInput) as err:                              # several stations' areas: a bureau unit leads
        do(mr, case, "dispatch", {"dispatch_action": "dispatch", "route": "station", "unit_name": "城关所",
                                  "proposal": "交城关所", "multi_area": True})
    assert "route" in err.value.field_errors
    dispatch(mr, case, approve=False)
    assert roles(mr, case) == {"approve_routing_deputy": "deputy_director"}   # 004:114
    assert open_task(mr, case.instance_id, "approve_routing_deputy")["due"] == "2026-04-29T16:00:00+00:00"
    do(mr, case, "approve_routing_deputy", {"routing_decision": "approve"}, user="deputy_liu")
    assert deadline(mr, case, "dispatch")["status"] == "met"
    naming = deadline(mr, case, "naming")
    assert (naming["unit"], naming["last_day"], naming["seed"]) == ("same_day", "2026-04-28", "004:134")
    assert roles(mr, case) == {"name_handler": "unit_head"}
    name_handler(mr, case)
    assert roles(mr, case) == {"decide_acceptance": "handler"}
    assert open_task(mr, case.instance_id, "decide_acceptance")["due"] == "2026-05-11T16:00:00+00:00"

    clock.set(at("2026-04-30T10:00"))
    with pytest.raises(InvalidInput) as err:                              # no grounds on an acceptance
        do(mr, case, "decide_acceptance", {"acceptance": "accept", "refusal_grounds": [GROUND_COURT]})
    assert "refusal_grounds" in err.value.field_errors
    accept(mr, case)
    assert deadline(mr, case, "accept")["status"] == "met"
    assert mr.show(case.instance_id)["legal_state"] == "accepted"
    mediation = deadline(mr, case, "mediation")
    # 45 working days from Thu 04-30 (SAMR Order No. 20 Art. 21): May 06-08, Sat 09, 11-29 (19);
    # June 1-18, 22-30 (40; 06-19 Dragon Boat off); July 1-3, 6, 7 (45) -> 07-07
    assert (mediation["unit"], mediation["amount"], mediation["last_day"]) == ("workdays", 45, "2026-07-07")
    assert notifier.sent[-1]["message"] == (
        "您的投诉（编号SJ-2026-000001）符合规定，已予受理，将组织双方调解；调解期限至2026年07月07日"
        "（检定、检验、检测、鉴定时间不计入）。")

    clock.set(at("2026-05-06T10:00"))
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "mediate", {"mediation_outcome": "appraisal"})
    assert set(err.value.field_errors) == {"appraisal_kind", "appraisal_body"}
    do(mr, case, "mediate", {"mediation_outcome": "appraisal", "appraisal_kind": "testing",
                             "appraisal_body": "县产品质量检验所"})
    paused = deadline(mr, case, "mediation")
    assert paused["status"] == "paused" and paused["paused_since"] == "2026-05-06T02:00:00+00:00"
    clock.set(at("2026-05-12T10:00"))
    do(mr, case, "appraisal", {"appraisal_result": "蛋白质含量不合格", "appraisal_report_no": "JC-2026-0512"})
    resumed = deadline(mr, case, "mediation")
    # paused from Wed 05-06 to Tue 05-12: 05-07, 05-08, Sat 05-09, 05-11, 05-12 = 5 working days -> 07-14
    assert (resumed["status"], resumed["paused_days"], resumed["last_day"]) == ("open", 5, "2026-07-14")

    clock.set(at("2026-05-13T10:00"))
    do(mr, case, "mediate", {"mediation_outcome": "agreement", "agreement_terms": "退货退款并赔偿价款十倍"})
    assert mr.show(case.instance_id)["legal_state"] == "mediation_agreed"
    assert deadline(mr, case, "mediation")["status"] == "met"
    assert roles(mr, case) == {"draft_reply": "handler"}
    do(mr, case, "draft_reply", {"reply_text": "调解协议书已送达双方。", "reply_method": "written"})
    assert roles(mr, case) == {"legal_review": "legal_review"}
    do(mr, case, "legal_review", {"legal_opinion": "pass"}, user="station_legal")
    assert roles(mr, case) == {"approve_reply_station": "unit_head"}      # a station's own reply: 所长 (004:164)
    do(mr, case, "approve_reply_station", {"reply_approval": "approve"}, user="head_sun")
    reply = sent_to(notifier, "complainant")[-1]
    assert reply["message"] == ("您的投诉（编号SJ-2026-000001）经调解，双方已达成调解协议。调解协议书已送达双方。"
                                "（按您的要求，书面答复加盖局公章后送达）")
    assert notifier.sent[-1]["to"] == "role:complaint_center"
    assert notifier.sent[-1]["message"].startswith("投诉SJ-2026-000001处理结果（城关市场监管所）")
    assert not sent_to(notifier, "external")                               # not from a superior
    # revisit: 5 working days after Wed 05-13 -> 05-14, 15, 18, 19, 20; at most a month: 06-13 (Sat) -> Mon 06-15
    assert roles(mr, case) == {"revisit": "complaint_center"}
    assert deadline(mr, case, "revisit")["last_day"] == "2026-05-20"
    assert deadline(mr, case, "revisit_cap")["last_day"] == "2026-06-15"
    clock.set(at("2026-05-15T10:00"))
    revisit(mr, case)
    assert_closed(mr, case, "mediation_agreed")
    assert {d["name"]: d["status"] for d in mr.show(case.instance_id)["deadlines"]} == {
        "dispatch": "met", "accept": "met", "naming": "met", "mediation": "met", "revisit": "met",
        "revisit_cap": "met"}


def test_complaint_refused_on_listed_grounds_after_legal_review_and_the_deputy_approval(mr, clock, notifier):
    case = start(mr, COMPLAINT)
    dispatch(mr, case)                                                     # to a station
    name_handler(mr, case)
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "decide_acceptance", {"acceptance": "refuse"})
    assert set(err.value.field_errors) == {"refusal_grounds"}
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "decide_acceptance", {"acceptance": "refuse", "refusal_grounds": ["超过一年"]})
    assert set(err.value.field_errors) == {"refusal_grounds"}
    do(mr, case, "decide_acceptance", {"acceptance": "refuse", "refusal_grounds": [GROUND_EXPIRED, GROUND_COURT]})
    assert deadline(mr, case, "accept")["status"] == "open"               # not yet told
    assert roles(mr, case) == {"draft_reply": "handler"}
    assert open_task(mr, case.instance_id, "draft_reply")["due"] == deadline(mr, case, "accept")["due"]
    do(mr, case, "draft_reply", {"reply_text": "您可依法向人民法院提起诉讼。", "reply_method": "phone"})
    do(mr, case, "legal_review", {"legal_opinion": "pass"}, user="legal_zhou")
    # a refusal is an Art. 18 decision: the deputy director approves even for a station (004:174)
    assert roles(mr, case) == {"approve_reply_deputy": "deputy_director"}
    do(mr, case, "approve_reply_deputy", {"reply_approval": "approve"}, user="deputy_liu")
    (refusal,) = sent_to(notifier, "refusal")
    assert refusal["to"] == "13800000001"
    assert refusal["message"] == ("您的投诉（编号 SJ-2026-000001）不予受理，理由："
                                  f"{GROUND_EXPIRED}；{GROUND_COURT}。您可依法向人民法院提起诉讼。")
    assert deadline(mr, case, "accept")["status"] == "met"
    assert mr.show(case.instance_id)["legal_state"] == "refused"
    revisit(mr, case, done="no")
    assert_closed(mr, case, "refused")


def test_complaint_mediation_ended_by_the_handler_tells_both_parties(mr, clock, notifier):
    clock.set(at("2026-09-29T10:00"))
    case = start(mr, COMPLAINT, respondent_contact="0571-12345678")
    dispatch(mr, case, route="bureau_unit", unit="消费者权益保护科")
    name_handler(mr, case)
    accept(mr, case)
    clock.set(at("2026-09-30T15:00"))
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "mediate", {"mediation_outcome": "terminate"})
    assert set(err.value.field_errors) == {"termination_ground", "termination_note"}
    do(mr, case, "mediate", {"mediation_outcome": "terminate", "termination_ground": "party_refused",
                             "termination_note": "被投诉人明确拒绝调解"})
    assert mr.show(case.instance_id)["legal_state"] == "mediation_terminated"
    notice = deadline(mr, case, "termination_notice")
    # 7 working days from Wed 09-30: (10-01..07 off) 10-08, 09, Sat 10-10, 12, 13, 14, 15
    assert (notice["last_day"], notice["unit"]) == ("2026-10-15", "workdays")
    assert roles(mr, case) == {"draft_reply": "handler"}
    do(mr, case, "draft_reply", {"reply_text": "您可依法申请仲裁或向人民法院起诉。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")                  # a bureau unit's reply (004:164)
    (respondent,) = sent_to(notifier, "external")
    assert respondent["to"] == "被投诉人：城关某超市（0571-12345678）"
    assert respondent["message"].startswith("投诉SJ-2026-000001调解不成，本局已终止调解。")
    assert sent_to(notifier, "complainant")[-1]["message"] == (
        "您的投诉（编号SJ-2026-000001）调解不成，本局已终止调解。您可依法申请仲裁或向人民法院起诉。")
    assert deadline(mr, case, "termination_notice")["status"] == "met"
    assert deadline(mr, case, "mediation")["status"] == "met"
    revisit(mr, case)
    assert_closed(mr, case, "mediation_terminated")


def test_mediation_ends_when_its_45_working_days_run_out_and_a_late_notice_is_supervised(mr, clock, notifier):
    clock.set(at("2026-08-31T10:00"))
    case = start(mr, COMPLAINT)
    dispatch(mr, case)
    name_handler(mr, case)
    clock.set(at("2026-09-01T10:00"))
    accept(mr, case)
    # 45 working days from Tue 09-01: Sep 2-4, 7-11, 14-18, Sun 20, 21-24, 28-30 (21; 09-25 Mid-Autumn off);
    # (10-01..07 off) Oct 8, 9, Sat 10, 12-16, 19-23, 26-30 (39); Nov 2-6 (44), Mon 11-09 (45)
    mediation = deadline(mr, case, "mediation")
    assert mediation["last_day"] == "2026-11-09" and mediation["due"] == "2026-11-09T16:00:00+00:00"
    clock.set(at("2026-11-09T23:59"))
    assert mr.tick()["timers_fired"] == 0
    assert roles(mr, case) == {"mediate": "handler"}
    clock.set(at("2026-11-10T00:00"))
    assert mr.tick()["timers_fired"] == 1
    assert roles(mr, case) == {"draft_reply": "handler"}                  # mediation ended by law
    shown = mr.show(case.instance_id)
    assert shown["legal_state"] == "mediation_terminated"
    mediation = deadline(mr, case, "mediation")
    assert mediation["status"] == "breached" and mediation["breached_at"] == "2026-11-09T16:00:00+00:00"
    # the parties are told within 7 working days: 11-11, 12, 13, 16, 17, 18, 19
    notice = deadline(mr, case, "termination_notice")
    assert notice["last_day"] == "2026-11-19" and notice["start"] == "2026-11-09T16:00:00+00:00"
    clock.set(at("2026-11-19T23:59"))
    assert mr.tick()["timers_fired"] == 0
    clock.set(at("2026-11-20T00:00"))
    assert mr.tick()["timers_fired"] == 1
    assert roles(mr, case) == {"draft_reply": "handler", "supervise_notice": "deputy_director"}
    assert deadline(mr, case, "termination_notice")["status"] == "breached"
    do(mr, case, "supervise_notice", {"supervision_note": "立即告知双方", "measure": "order_correction"},
       user="deputy_liu")
    do(mr, case, "draft_reply", {"reply_text": "自受理之日起四十五个工作日内未能达成调解协议。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_station")
    assert sent_to(notifier, "external")[-1]["to"] == "被投诉人：城关某超市（城关镇解放路2号）"
    assert deadline(mr, case, "termination_notice")["status"] == "breached"   # told, but late
    revisit(mr, case)
    assert_closed(mr, case, "mediation_terminated")
    fired = [e["payload"]["task"] for e in mr.history(case.instance_id) if e["kind"] == "timer_fired"]
    assert fired == ["mediation_expired", "notice_overdue"]


def three_appraisals(mr, clock, case):
    for n in range(3):
        do(mr, case, "mediate", {"mediation_outcome": "appraisal", "appraisal_kind": "appraisal",
                                 "appraisal_body": f"鉴定机构{n + 1}"})
        assert deadline(mr, case, "mediation")["status"] == "paused"
        clock.advance(days=1)
        do(mr, case, "appraisal", {"appraisal_result": "待补充"})
    do(mr, case, "mediate", {"mediation_outcome": "appraisal", "appraisal_kind": "appraisal", "appraisal_body": "第四次"})


def test_mediation_may_be_suspended_for_appraisal_at_most_three_times(mr, clock):
    case = start(mr, COMPLAINT)
    dispatch(mr, case)
    name_handler(mr, case)
    accept(mr, case)
    three_appraisals(mr, clock, case)
    assert roles(mr, case) == {"mediate_final": "handler"}               # the fourth suspension is refused
    assert deadline(mr, case, "mediation")["status"] == "open"
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "mediate_final", {"mediation_outcome": "appraisal"})
    assert set(err.value.field_errors) == {"mediation_outcome"}
    do(mr, case, "mediate_final", {"mediation_outcome": "agreement", "agreement_terms": "退货退款"})
    appraisals = [e for e in mr.history(case.instance_id)
                  if e["kind"] == "handler_called" and e["payload"]["handler"] == "deadline.pause"]
    assert len(appraisals) == 3
    do(mr, case, "draft_reply", {"reply_text": "已达成协议。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_station")
    revisit(mr, case)
    assert_closed(mr, case, "mediation_agreed")


def test_mediation_limit_also_ends_mediation_after_the_last_permitted_suspension(mr, clock):
    clock.set(at("2026-04-28T09:00"))
    case = start(mr, COMPLAINT)
    dispatch(mr, case)
    name_handler(mr, case)
    clock.set(at("2026-04-30T10:00"))
    accept(mr, case)                                                      # 45 working days -> 07-07 (see above)
    three_appraisals(mr, clock, case)                                     # Thu 04-30 -> Fri 05-01 -> Sat 05-02 -> Sun 05-03
    mediation = deadline(mr, case, "mediation")
    # each pause ran over holidays only (05-01..03): no working day is added
    assert (mediation["paused_days"], mediation["last_day"]) == (0, "2026-07-07")
    assert roles(mr, case) == {"mediate_final": "handler"}
    clock.set(at("2026-07-07T23:59"))
    assert mr.tick()["timers_fired"] == 0
    clock.set(at("2026-07-08T00:00"))
    assert mr.tick()["timers_fired"] == 1
    assert roles(mr, case) == {"draft_reply": "handler"}
    assert mr.show(case.instance_id)["legal_state"] == "mediation_terminated"
    assert deadline(mr, case, "mediation")["status"] == "breached"
    do(mr, case, "draft_reply", {"reply_text": "调解期限届满。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_station")
    revisit(mr, case)
    assert_closed(mr, case, "mediation_terminated")


def test_acceptance_not_told_within_seven_working_days_is_supervised(mr, clock):
    clock.set(at("2026-04-02T10:00"))
    case = start(mr, COMPLAINT)
    dispatch(mr, case)
    name_handler(mr, case)
    clock.set(at("2026-04-14T23:59"))
    assert mr.tick()["timers_fired"] == 0
    clock.set(at("2026-04-15T00:00"))
    assert mr.tick()["timers_fired"] == 1
    assert roles(mr, case) == {"decide_acceptance": "handler", "supervise_accept": "deputy_director"}
    assert deadline(mr, case, "accept")["status"] == "breached"
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "supervise_accept", {"supervision_note": "立即告知"})
    assert set(err.value.field_errors) == {"measure"}
    do(mr, case, "supervise_accept", {"supervision_note": "立即告知", "measure": "circulate_criticism"},
       user="deputy_liu")
    accept(mr, case)
    assert deadline(mr, case, "accept")["status"] == "breached"           # decided, but late
    do(mr, case, "mediate", {"mediation_outcome": "agreement", "agreement_terms": "退款"})
    do(mr, case, "draft_reply", {"reply_text": "已退款。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_station")
    revisit(mr, case)
    assert_closed(mr, case, "mediation_agreed")


# --- reports -------------------------------------------------------------------------------------------

def test_report_from_a_superior_is_filed_and_the_result_reported_back_across_national_day(mr, clock, notifier):
    clock.set(at("2026-09-29T10:00"))                                    # Tuesday before National Day
    case = start(mr, REPORT, assigned_by_superior=True, forwarded_by="市市场监督管理局")
    filing = deadline(mr, case, "filing")
    # 7 working days from Tue 09-29: 09-30, (10-01..07 off) 10-08, 09, Sat 10-10, 12, 13, 14
    assert (filing["last_day"], filing["seed"]) == ("2026-10-14", "004:140")
    assert sent_to(notifier, "acknowledgement")[0]["message"] == (
        "您的举报已登记，编号 SJ-2026-000001。核查并决定是否立案：最迟于2026年10月14日。")
    dispatch(mr, case, route="bureau_unit", unit="市场监管稽查大队", supporting_units="城关市场监管所")
    support = sent_to(notifier, "staff")[-1]
    assert support["message"].startswith("城关市场监管所：请安排专人支持配合市场监管稽查大队办理举报SJ-2026-000001")
    name_handler(mr, case)
    assert roles(mr, case) == {"verify_report": "handler"}
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "verify_report", {"report_outcome": "filed"})
    assert set(err.value.field_errors) == {"verification"}
    clock.set(at("2026-10-09T10:00"))
    do(mr, case, "verify_report", {"report_outcome": "filed", "verification": "现场检查发现无证生产"})
    do(mr, case, "draft_reply", {"reply_text": "查处结果将依法公示。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")                  # a bureau unit's reply (004:164)
    assert sent_to(notifier, "complainant")[-1]["message"] == (
        "您的举报（编号SJ-2026-000001）经核查，本局已决定立案调查。查处结果将依法公示。")
    (back,) = sent_to(notifier, "external")
    assert back["to"] == "市市场监督管理局" and back["message"].startswith("贵单位交办（移交）的举报SJ-2026-000001办理结果")
    assert deadline(mr, case, "filing")["status"] == "met"
    assert mr.show(case.instance_id)["legal_state"] == "case_filed"
    revisit(mr, case)
    assert_closed(mr, case, "case_filed")


def test_report_decision_extended_to_fifteen_working_days_with_approval_then_not_filed(mr, clock, notifier):
    clock.set(at("2026-04-28T09:00"))
    case = start(mr, REPORT, channel="transferred", forwarded_by="县卫生健康局")
    assert deadline(mr, case, "filing")["last_day"] == "2026-05-11"      # as the acceptance limit above
    dispatch(mr, case)
    name_handler(mr, case)
    clock.set(at("2026-05-08T10:00"))
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "verify_report", {"report_outcome": "request_extension", "verification": "需抽样检验"})
    assert set(err.value.field_errors) == {"extension_reason"}
    do(mr, case, "verify_report", {"report_outcome": "request_extension", "verification": "需抽样检验",
                                   "extension_reason": "需跨区域调取证据"})
    assert roles(mr, case) == {"approve_filing_extension": "deputy_director"}
    do(mr, case, "approve_filing_extension", {"filing_extension_approved": True}, user="deputy_liu")
    filing = deadline(mr, case, "filing")
    # 15 working days: after 05-11 (7): 05-12, 13, 14, 15, 18, 19, 20, 21
    assert (filing["extended_by"], filing["last_day"], filing["status"]) == (8, "2026-05-21", "open")
    clock.set(at("2026-05-12T00:00"))                                      # the old limit: nothing fires
    assert mr.tick()["timers_fired"] == 0
    assert roles(mr, case) == {"decide_filing": "handler"}
    with pytest.raises(InvalidInput) as err:                              # no second extension
        do(mr, case, "decide_filing", {"report_outcome": "request_extension", "verification": "x"})
    assert set(err.value.field_errors) == {"report_outcome"}
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "decide_filing", {"report_outcome": "not_filed", "verification": "x"})
    assert set(err.value.field_errors) == {"not_filed_reason"}
    do(mr, case, "decide_filing", {"report_outcome": "not_filed", "verification": "经检验产品合格",
                                   "not_filed_reason": "未发现违法行为", "refusal_grounds": [GROUND_NO_OBJECT]})
    do(mr, case, "draft_reply", {"reply_text": "感谢您的监督。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")                  # 不予立案: 004:174
    assert sent_to(notifier, "complainant")[-1]["message"] == (
        f"您的举报（编号SJ-2026-000001）经核查，本局决定不予立案。理由：未发现违法行为（{GROUND_NO_OBJECT}）。感谢您的监督。")
    assert sent_to(notifier, "external")[-1]["to"] == "县卫生健康局"     # transferred in: result fed back
    assert deadline(mr, case, "filing")["status"] == "met"
    revisit(mr, case, done="no")
    assert_closed(mr, case, "not_filed")


def test_anonymous_report_late_decision_is_supervised_and_transferred_without_identifying_the_reporter(
        mr, clock, notifier):
    clock.set(at("2026-04-02T10:00"))
    anonymous = {k: v for k, v in REPORT.items() if k not in ("requester_name", "contact")}
    case = start(mr, anonymous, anonymous=True)
    assert notifier.sent == []                                             # nobody to acknowledge
    assert deadline(mr, case, "filing")["last_day"] == "2026-04-14"
    dispatch(mr, case)
    name_handler(mr, case)
    clock.set(at("2026-04-14T23:59"))
    assert mr.tick()["timers_fired"] == 0
    clock.set(at("2026-04-15T00:00"))
    assert mr.tick()["timers_fired"] == 1
    assert roles(mr, case) == {"verify_report": "handler", "supervise_filing": "deputy_director"}
    filing = deadline(mr, case, "filing")
    assert filing["status"] == "breached" and filing["breached_at"] == "2026-04-14T16:00:00+00:00"
    do(mr, case, "supervise_filing", {"supervision_note": "立即决定", "measure": "order_correction"}, user="deputy_liu")
    do(mr, case, "verify_report", {"report_outcome": "request_extension", "verification": "需调查",
                                   "extension_reason": "需联合执法"})
    do(mr, case, "approve_filing_extension", {"filing_extension_approved": True}, user="deputy_liu")
    refused = [e for e in mr.history(case.instance_id) if e["kind"] == "handler_called"
               and e["payload"]["handler"] == "deadline.extend"][-1]["payload"]["outputs"]
    assert refused["granted"] is False and "after the limit ran out" in refused["reason"]
    assert deadline(mr, case, "filing")["extended_by"] == 0
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "decide_filing", {"report_outcome": "transfer", "verification": "属卫生部门职责"})
    assert set(err.value.field_errors) == {"transfer_to"}
    do(mr, case, "decide_filing", {"report_outcome": "transfer", "verification": "属卫生部门职责",
                                   "transfer_to": "县卫生健康局"})
    do(mr, case, "draft_reply", {"reply_text": "涉及医疗机构，依法移送。", "reply_method": "written"})
    review_and_approve(mr, case, "approve_reply_deputy")
    (transfer,) = sent_to(notifier, "external")
    assert transfer["to"] == "县卫生健康局" and "李先生" not in transfer["message"]
    assert sent_to(notifier, "complainant") == [] and sent_to(notifier, "acknowledgement") == []
    assert deadline(mr, case, "filing")["status"] == "breached"
    assert "revisit" not in [d["name"] for d in mr.show(case.instance_id)["deadlines"]]   # no one to revisit
    assert_closed(mr, case, "transferred")


def test_anonymous_reporter_who_leaves_a_contact_is_acknowledged(mr, notifier):
    case = start(mr, {k: v for k, v in REPORT.items() if k != "requester_name"}, anonymous=True)
    (ack,) = notifier.sent
    assert ack["to"] == "13900000002" and ack["message"].startswith("您的举报已登记，编号 SJ-2026-000001。")
    assert roles(mr, case) == {"dispatch": "complaint_center"}


# --- dispatch and routing (004:108-126) ------------------------------------------------------------------

def test_dispatch_not_done_in_one_working_day_is_supervised_by_the_deputy(mr, clock):
    clock.set(at("2026-04-02T10:00"))
    case = start(mr, COMPLAINT)
    clock.set(at("2026-04-03T23:59"))
    assert mr.tick()["timers_fired"] == 0
    clock.set(at("2026-04-04T00:00"))                                      # Saturday 00:00: Friday has ended
    assert mr.tick()["timers_fired"] == 1
    assert roles(mr, case) == {"dispatch": "complaint_center", "supervise_dispatch": "deputy_director"}
    dispatch_limit = deadline(mr, case, "dispatch")
    assert dispatch_limit["status"] == "breached" and dispatch_limit["breached_at"] == "2026-04-03T16:00:00+00:00"
    do(mr, case, "supervise_dispatch", {"supervision_note": "立即分流", "measure": "order_correction"}, user="deputy_liu")
    clock.set(at("2026-04-07T09:00"))
    dispatch(mr, case)
    assert deadline(mr, case, "dispatch")["status"] == "breached"
    name_handler(mr, case)
    do(mr, case, "decide_acceptance", {"acceptance": "refuse", "refusal_grounds": [GROUND_COURT]})
    do(mr, case, "draft_reply", {"reply_text": "已由法院受理。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")
    revisit(mr, case)
    assert_closed(mr, case, "refused")


def test_dispatch_limit_extended_only_with_the_deputy_approval(mr, clock, notifier):
    clock.set(at("2026-04-02T10:00"))
    case = start(mr, REPORT)
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "dispatch", {"dispatch_action": "request_extension"})
    assert set(err.value.field_errors) == {"extension_reason"}
    do(mr, case, "dispatch", {"dispatch_action": "request_extension", "extension_reason": "需核实经营地址"})
    assert roles(mr, case) == {"approve_dispatch_extension": "deputy_director"}
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "approve_dispatch_extension", {"dispatch_extension_approved": True})
    assert set(err.value.field_errors) == {"extension_workdays"}
    do(mr, case, "approve_dispatch_extension", {"dispatch_extension_approved": True, "extension_workdays": 2},
       user="deputy_liu")
    extended = deadline(mr, case, "dispatch")
    # 1 + 2 working days from Thu 04-02: 04-03, (Qingming) 04-07, 04-08
    assert (extended["extended_by"], extended["last_day"]) == (2, "2026-04-08")
    assert roles(mr, case) == {"dispatch_after_extension": "complaint_center"}
    clock.set(at("2026-04-04T00:00"))
    assert mr.tick()["timers_fired"] == 0                                  # the old limit no longer counts
    clock.set(at("2026-04-08T09:00"))
    with pytest.raises(InvalidInput) as err:                               # no second extension on this form
        do(mr, case, "dispatch_after_extension", {"dispatch_action": "request_extension", "route": "station",
                                                  "unit_name": "城关所", "proposal": "x"})
    assert set(err.value.field_errors) == {"dispatch_action"}
    do(mr, case, "dispatch_after_extension", {"route": "station", "unit_name": "城关市场监管所", "proposal": "交城关所"})
    do(mr, case, "approve_routing_deputy", {"routing_decision": "approve"}, user="deputy_liu")
    assert deadline(mr, case, "dispatch")["status"] == "met"
    name_handler(mr, case)
    do(mr, case, "verify_report", {"report_outcome": "filed", "verification": "属实"})
    do(mr, case, "draft_reply", {"reply_text": "已立案。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_station")                 # 立案 is a station's own reply
    revisit(mr, case)
    assert_closed(mr, case, "case_filed")


def test_dispatch_extension_refused_by_the_deputy_leaves_the_limit(mr, clock):
    clock.set(at("2026-04-02T10:00"))
    case = start(mr, REPORT)
    do(mr, case, "dispatch", {"dispatch_action": "request_extension", "extension_reason": "需核实"})
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "approve_dispatch_extension", {"dispatch_extension_approved": False})
    assert set(err.value.field_errors) == {"extension_opinion"}
    do(mr, case, "approve_dispatch_extension", {"dispatch_extension_approved": False,
                                                "extension_opinion": "今天即可分流"}, user="deputy_liu")
    assert deadline(mr, case, "dispatch")["extended_by"] == 0
    assert deadline(mr, case, "dispatch")["last_day"] == "2026-04-03"
    do(mr, case, "dispatch_after_extension", {"route": "bureau_unit", "unit_name": "食品安全监管科", "proposal": "交食品科"})
    do(mr, case, "approve_routing_deputy", {"routing_decision": "approve"}, user="deputy_liu")
    name_handler(mr, case)
    do(mr, case, "verify_report", {"report_outcome": "filed", "verification": "属实"})
    do(mr, case, "draft_reply", {"reply_text": "已立案。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")
    revisit(mr, case)
    assert_closed(mr, case, "case_filed")


def test_mass_complaint_is_reported_to_the_director_and_routed_by_the_directors_meeting(mr, notifier):
    case = start(mr, COMPLAINT, content="多名消费者预付卡无法使用，商家已停业")
    dispatch(mr, case, route="bureau_unit", unit="消费者权益保护科", approve=False, mass_or_major=True,
             cross_department=True)
    major = sent_to(notifier, "staff")[-1]
    assert major["to"] == "role:bureau_director" and major["message"].startswith("群体性或可能造成严重社会影响的重大投诉")
    assert roles(mr, case) == {"approve_routing_director": "bureau_director"}     # 004:124, not the deputy
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "approve_routing_director", {"routing_decision": "approve", "decided_by": "director_meeting"})
    assert set(err.value.field_errors) == {"meeting_record"}
    do(mr, case, "approve_routing_director", {"routing_decision": "approve", "decided_by": "director_meeting",
                                              "meeting_record": "局长办公会议纪要〔2026〕5号"}, user="director_ma")
    assert roles(mr, case) == {"name_handler": "unit_head"}
    name_handler(mr, case)
    accept(mr, case)
    do(mr, case, "mediate", {"mediation_outcome": "agreement", "agreement_terms": "退还余额"})
    do(mr, case, "draft_reply", {"reply_text": "已退还。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")
    revisit(mr, case)
    assert_closed(mr, case, "mediation_agreed")


def test_deputy_may_escalate_a_routing_to_the_director_who_may_amend_it(mr, notifier):
    case = start(mr, COMPLAINT)
    dispatch(mr, case, approve=False, serious_complex=True)
    assert roles(mr, case) == {"approve_routing_deputy": "deputy_director"}      # 004:122
    do(mr, case, "approve_routing_deputy", {"routing_decision": "escalate", "routing_opinion": "涉众"}, user="deputy_liu")
    assert roles(mr, case) == {"approve_routing_director": "bureau_director"}
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "approve_routing_director", {"routing_decision": "amend", "decided_by": "director"})
    assert set(err.value.field_errors) == {"amended_route", "amended_unit"}
    do(mr, case, "approve_routing_director", {"routing_decision": "amend", "decided_by": "director",
                                              "amended_route": "bureau_unit", "amended_unit": "市场监管稽查大队"},
       user="director_ma")
    assert notifier.sent[-1]["message"].startswith("市场监管稽查大队：投诉SJ-2026-000001已分流至本单位")
    name_handler(mr, case)
    accept(mr, case)
    do(mr, case, "mediate", {"mediation_outcome": "agreement", "agreement_terms": "退款"})
    do(mr, case, "draft_reply", {"reply_text": "已退款。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")                  # the amended unit is a bureau unit
    revisit(mr, case)
    assert_closed(mr, case, "mediation_agreed")


@pytest.mark.parametrize("flag", ["cross_department", "cross_duty", "serious_complex"])
def test_complex_routings_need_the_deputy_even_when_a_station_registered_them(mr, flag):
    case = start(mr, COMPLAINT, received_by="station")
    dispatch(mr, case, approve=False, **{flag: True})
    assert roles(mr, case) == {"approve_routing_deputy": "deputy_director"}       # 004:122, 126 before 004:110
    do(mr, case, "approve_routing_deputy", {"routing_decision": "approve"}, user="deputy_liu")
    name_handler(mr, case)
    do(mr, case, "decide_acceptance", {"acceptance": "refuse", "refusal_grounds": [GROUND_COURT]})
    do(mr, case, "draft_reply", {"reply_text": "已由法院受理。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")
    revisit(mr, case, done="no")
    assert_closed(mr, case, "refused")


def test_multi_area_matter_is_led_by_a_bureau_unit_with_the_deputy_approval(mr, notifier):
    case = start(mr, REPORT)
    dispatch(mr, case, route="bureau_unit", unit="市场规范局", approve=False, multi_area=True,
             supporting_units="城关所、东城所")
    assert roles(mr, case) == {"approve_routing_deputy": "deputy_director"}       # 004:118-120
    do(mr, case, "approve_routing_deputy", {"routing_decision": "approve"}, user="deputy_liu")
    assert notifier.sent[-1]["message"].startswith("城关所、东城所：请安排专人支持配合市场规范局办理举报")
    name_handler(mr, case)
    do(mr, case, "verify_report", {"report_outcome": "filed", "verification": "属实"})
    do(mr, case, "draft_reply", {"reply_text": "已立案。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")
    revisit(mr, case)
    assert_closed(mr, case, "case_filed")


def test_complaint_registered_at_a_station_is_approved_by_the_station_head(mr, notifier):
    case = start(mr, COMPLAINT, received_by="station")
    dispatch(mr, case, approve=False)
    assert roles(mr, case) == {"approve_routing_station": "unit_head"}         # 004:110 报所长审批
    do(mr, case, "approve_routing_station", {"routing_decision": "approve"}, user="head_sun")
    assert roles(mr, case) == {"name_handler": "unit_head"}
    name_handler(mr, case)
    accept(mr, case)
    do(mr, case, "mediate", {"mediation_outcome": "agreement", "agreement_terms": "退款"})
    do(mr, case, "draft_reply", {"reply_text": "草稿", "reply_method": "phone"})
    do(mr, case, "legal_review", {"legal_opinion": "pass"}, user="station_legal")
    do(mr, case, "approve_reply_station", {"reply_approval": "return", "approval_comment": "写明协议履行期限"},
       user="head_sun")
    assert roles(mr, case) == {"draft_reply": "handler"}
    do(mr, case, "draft_reply", {"reply_text": "已退款，协议于五日内履行。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_station")
    assert notifier.sent[-2]["message"].endswith("已退款，协议于五日内履行。")
    revisit(mr, case)
    assert_closed(mr, case, "mediation_agreed")


def test_station_head_may_send_a_routing_up_to_the_deputy(mr):
    case = start(mr, REPORT, received_by="station")
    dispatch(mr, case, approve=False)
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "approve_routing_station", {"routing_decision": "escalate"})
    assert set(err.value.field_errors) == {"routing_opinion"}
    do(mr, case, "approve_routing_station", {"routing_decision": "escalate", "routing_opinion": "涉及多部门"},
       user="head_sun")
    assert roles(mr, case) == {"approve_routing_deputy": "deputy_director"}
    do(mr, case, "approve_routing_deputy", {"routing_decision": "amend", "amended_route": "bureau_unit",
                                            "amended_unit": "食品安全监管科"}, user="deputy_liu")
    name_handler(mr, case)
    do(mr, case, "verify_report", {"report_outcome": "filed", "verification": "属实"})
    do(mr, case, "draft_reply", {"reply_text": "已立案。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_deputy")
    revisit(mr, case)
    assert_closed(mr, case, "case_filed")


def test_matter_outside_the_bureau_is_transferred_by_the_centre_after_legal_review(mr, clock, notifier):
    case = start(mr, COMPLAINT, content="物业公司乱收停车费")
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "dispatch", {"dispatch_action": "dispatch", "route": "transfer_out", "proposal": "移送"})
    assert set(err.value.field_errors) == {"transfer_to", "transfer_reason"}
    do(mr, case, "dispatch", {"dispatch_action": "dispatch", "route": "transfer_out", "proposal": "移送住建局",
                              "transfer_to": "县住房和城乡建设局", "transfer_reason": "物业服务收费由住建部门监管"})
    assert roles(mr, case) == {"legal_review": "legal_review"}            # no routing approval, Art. 18 chain instead
    assert deadline(mr, case, "dispatch")["status"] == "met"
    assert deadline(mr, case, "accept")["status"] == "open"
    do(mr, case, "legal_review", {"legal_opinion": "return", "legal_comment": "补充法律依据"}, user="legal_zhou")
    assert roles(mr, case) == {"draft_transfer": "complaint_center"}
    do(mr, case, "draft_transfer", {"transfer_to": "县住房和城乡建设局",
                                    "reply_text": "依据《物业管理条例》，物业服务收费由住建部门监管。"})
    review_and_approve(mr, case, "approve_reply_deputy")
    (transfer,) = sent_to(notifier, "external")
    assert transfer["to"] == "县住房和城乡建设局" and "《物业管理条例》" in transfer["message"]
    assert sent_to(notifier, "complainant")[-1]["message"] == (
        "您反映的事项（编号SJ-2026-000001）不属于本局职责范围，已移送县住房和城乡建设局处理。"
        "依据《物业管理条例》，物业服务收费由住建部门监管。")
    assert deadline(mr, case, "accept")["status"] == "met"
    assert "naming" not in [d["name"] for d in mr.show(case.instance_id)["deadlines"]]
    assert notifier.sent[-1]["message"].startswith("投诉SJ-2026-000001处理结果（投诉举报中心）")
    revisit(mr, case)
    assert_closed(mr, case, "transferred")


def test_a_reply_returned_three_times_is_settled_by_the_director(mr, notifier):
    case = start(mr, COMPLAINT)
    dispatch(mr, case, route="bureau_unit", unit="消费者权益保护科")
    name_handler(mr, case)
    do(mr, case, "decide_acceptance", {"acceptance": "refuse", "refusal_grounds": [GROUND_COURT]})
    do(mr, case, "draft_reply", {"reply_text": "草稿一", "reply_method": "phone"})
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "legal_review", {"legal_opinion": "return"})
    assert set(err.value.field_errors) == {"legal_comment"}
    do(mr, case, "legal_review", {"legal_opinion": "return", "legal_comment": "依据不全"}, user="legal_zhou")
    do(mr, case, "draft_reply", {"reply_text": "草稿二", "reply_method": "phone"})
    do(mr, case, "legal_review", {"legal_opinion": "pass"}, user="legal_zhou")
    with pytest.raises(InvalidInput) as err:
        do(mr, case, "approve_reply_deputy", {"reply_approval": "return"})
    assert set(err.value.field_errors) == {"approval_comment"}
    do(mr, case, "approve_reply_deputy", {"reply_approval": "return", "approval_comment": "措辞不当"}, user="deputy_liu")
    do(mr, case, "draft_reply", {"reply_text": "草稿三", "reply_method": "phone"})
    do(mr, case, "legal_review", {"legal_opinion": "return", "legal_comment": "仍不全"}, user="legal_zhou")
    assert roles(mr, case) == {"director_ruling": "bureau_director"}       # the third return
    do(mr, case, "director_ruling", {"reply_text": "局长裁定文本。", "ruling_note": "按此答复"}, user="director_ma")
    assert sent_to(notifier, "refusal")[-1]["message"].endswith(f"理由：{GROUND_COURT}。局长裁定文本。")
    drafts = [e for e in mr.history(case.instance_id)
              if e["kind"] == "task_completed" and e["payload"]["task"] == "draft_reply"]
    assert len(drafts) == 3
    revisit(mr, case)
    assert_closed(mr, case, "refused")


def test_handler_not_named_on_the_day_of_receipt_is_supervised_by_the_centre(mr, clock):
    clock.set(at("2026-05-06T15:00"))
    case = start(mr, COMPLAINT)
    dispatch(mr, case)
    naming = deadline(mr, case, "naming")
    assert (naming["last_day"], naming["due"]) == ("2026-05-06", "2026-05-06T16:00:00+00:00")
    assert open_task(mr, case.instance_id, "name_handler")["due"] == "2026-05-06T16:00:00+00:00"
    clock.set(at("2026-05-06T23:59"))
    assert mr.tick()["timers_fired"] == 0
    clock.set(at("2026-05-07T00:00"))
    assert mr.tick()["timers_fired"] == 1
    assert roles(mr, case) == {"name_handler": "unit_head", "supervise_naming": "complaint_center"}
    assert deadline(mr, case, "naming")["status"] == "breached"
    do(mr, case, "supervise_naming", {"supervision_note": "请立即指定", "measure": "order_correction"})
    name_handler(mr, case)
    accept(mr, case)
    do(mr, case, "mediate", {"mediation_outcome": "agreement", "agreement_terms": "退款"})
    do(mr, case, "draft_reply", {"reply_text": "已退款。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_station")
    revisit(mr, case)
    assert_closed(mr, case, "mediation_agreed")


# --- revisit (004:180-188) ---------------------------------------------------------------------------------

def test_revisit_overdue_after_five_working_days_is_reminded_and_lapses_after_a_month(mr, clock, notifier):
    clock.set(at("2026-09-29T10:00"))
    case = start(mr, REPORT)
    dispatch(mr, case)
    name_handler(mr, case)
    clock.set(at("2026-09-30T10:00"))
    do(mr, case, "verify_report", {"report_outcome": "filed", "verification": "属实"})
    do(mr, case, "draft_reply", {"reply_text": "已立案。", "reply_method": "phone"})
    review_and_approve(mr, case, "approve_reply_station")
    # 5 working days after Wed 09-30: (10-01..07 off) 10-08, 09, Sat 10-10, 12, 13; a month: Fri 10-30
    assert deadline(mr, case, "revisit")["last_day"] == "2026-10-13"
    assert deadline(mr, case, "revisit_cap")["last_day"] == "2026-10-30"
    clock.set(at("2026-10-13T23:59"))
    assert mr.tick()["timers_fired"] == 0
    clock.set(at("2026-10-14T00:00"))
    assert mr.tick()["timers_fired"] == 1
    reminder = notifier.sent[-1]
    assert reminder["to"] == "role:complaint_center" and reminder["message"] == (
        "举报SJ-2026-000001办结已超过5个工作日仍未回访，回访一般不超过1个月（2026年10月30日前）。")
    assert roles(mr, case) == {"revisit": "complaint_center"}             # still possible
    assert deadline(mr, case, "revisit")["status"] == "breached"
    clock.set(at("2026-10-30T23:59"))
    assert mr.tick()["timers_fired"] == 0
    clock.set(at("2026-10-31T00:00"))
    assert mr.tick()["timers_fired"] == 1
    assert_closed(mr, case, "case_filed")
    assert deadline(mr, case, "revisit_cap")["status"] == "breached"
