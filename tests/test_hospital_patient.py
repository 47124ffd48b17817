"""hospital_patient (hospital, clinic, dental clinic, nursing department, maternal and child
health hospital patient complaints): every path through the service layer, with a
controlled clock, on SQLite. Seeds: 000:26-42, 43-55, 78-100, 146-162, 163-181, 260-281,
282-298, 326-339, 361-381; 001:21-40; 003:43-75, 311-325; 004:334-336, 346-352
(see docs/processes/hospital_patient.md).

Dates are worked out by hand from the 2026 arrangement (Qingming 04-05..06; Labour Day
05-01..05 with Sat 05-09 worked; National Day 10-01..07 with Sun 09-20 and Sat 10-10 worked)
and were checked with `complaintflow calendar deadline`. A deadline's `due` is 00:00 of the
day after its last day, Beijing time, shown in UTC (16:00 of the last day)."""

from __future__ import annotations

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import Conflict, InvalidInput
from conftest import PROCESSES, open_task

INTAKE = {
    "channel": "visit",
    "complainant": "李建国",
    "patient": "王秀英",
    "relationship": "family",
    "contact": "13900000001",
    "content": "母亲术后换药时护士操作粗暴，伤口渗血",
    "department_complained": "普外科病区",
    "category": "nursing",
    "first_receiver": "普外科护士站 张护士",
    "settled_on_spot": False,
}
ACCEPT = {"decision": "accept", "severity": "general", "handling": "standard", "coordination": "none"}
INVESTIGATION = {"investigators": ["护士长 吴敏", "质控护士 周丽"], "course_summary": "10月8日换药经过及护理记录", "findings": "换药时未充分解释，操作较急",
                 "department_opinion": "对当事护士批评教育，加强沟通培训", "head_signed": True}
OPINION = {"conclusion": "opinion", "handling_opinion": "当事护士书面检查，科室整改", "liability": "individual",
           "measures": "全科护理沟通培训"}
REPLY = {"reply_text": "经调查，换药操作沟通不足，已对当事护士批评教育并整改", "reply_form": "letter"}
REVIEW_TASK = {"medical_affairs": "review_medical_affairs", "nursing": "review_nursing", "finance": "review_finance",
               "supervision_office": "review_supervision"}


def at(text):
    return parse_instant(text)


@pytest.fixture
def hp(service):
    service.deploy([PROCESSES / "hospital_patient.bpmn"])
    return service


def start(hp, clock, when="2026-09-28T10:00", actor="nurse_zhang", **overrides):
    clock.set(at(when))
    return hp.start("hospital_patient", dict(INTAKE, **overrides), actor)


def do(hp, case, task, data, user="office_liu"):
    return hp.complete_task(open_task(hp, case.instance_id, task)["task_id"], user, data)


def tasks(hp, case):
    return {t["task"]: t["role"] for t in hp.list_tasks(instance_id=case.instance_id)}


def deadline(hp, case, name):
    return next(d for d in hp.show(case.instance_id)["deadlines"] if d["name"] == name)


def deadline_names(hp, case):
    return [d["name"] for d in hp.show(case.instance_id)["deadlines"]]


def messages(notifier, kind=None, to=None):
    return [m for m in notifier.sent if (kind is None or m["kind"] == kind) and (to is None or m["to"] == to)]


def last(notifier, kind=None, to=None):
    found = messages(notifier, kind, to)
    assert found, f"nothing of kind {kind!r} to {to!r} was sent; sent: {[(m['kind'], m['to']) for m in notifier.sent]}"
    return found[-1]


def unhandled(hp, case):
    return [e["payload"]["name"] for e in hp.history(case.instance_id) if e["kind"] == "event_unhandled"]


def investigate_and_review(hp, case, role="nursing"):
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    assert REVIEW_TASK[role] in tasks(hp, case) and tasks(hp, case)[REVIEW_TASK[role]] == role
    do(hp, case, REVIEW_TASK[role], OPINION, user=f"{role}_head")


def reply_satisfied_and_archive(hp, case):
    do(hp, case, "written_reply", REPLY)
    do(hp, case, "satisfaction_check", {"satisfied": "yes"})
    assert tasks(hp, case) == {"archive": "complaint_office"}
    done = do(hp, case, "archive", {"summary": "沟通不足引起的护理投诉", "measures": "护理沟通培训"})
    assert done.status == "completed"
    return done


# --------------------------------------------------------------------------- registration

def test_registration_numbers_the_case_and_tells_both_limits_across_qingming(hp, clock, notifier):
    case = start(hp, clock, when="2026-04-02T10:00")               # Thursday before Qingming
    assert case.case_number == "YY-2026-000001"
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == "13900000001"
    # accept: 1 working day after Thu 04-02 -> Fri 04-03
    # first reply: one week (节假日顺延) after Thu 04-02 -> Thu 04-09, a working day
    assert "YY-2026-000001" in ack["message"] and "首诉负责制" in ack["message"]
    assert "作出是否受理的决定：最迟于2026年04月03日" in ack["message"]
    assert "首次答复（处理结果或调查进展）：最迟于2026年04月09日" in ack["message"]
    accept, first = deadline(hp, case, "accept"), deadline(hp, case, "first_reply")
    assert (accept["unit"], accept["amount"], accept["last_day"], accept["status"]) == ("workdays", 1, "2026-04-03", "open")
    assert accept["due"] == "2026-04-03T16:00:00+00:00" and accept["seed"] == "000:157"
    assert (first["unit"], first["amount"], first["last_day"]) == ("days", 7, "2026-04-09")
    assert first["seed"] == "000:369 (000:89, 000:160, 003:61)" and first["rule"].startswith("投诉处理情况在一周内（节假日顺延）")
    assert tasks(hp, case) == {"accept_decision": "complaint_office"}
    assert open_task(hp, case.instance_id, "accept_decision")["due"] == "2026-04-03T16:00:00+00:00"
    shown = hp.show(case.instance_id)
    assert shown["category"] == "nursing" and shown["legal_state"] is None and shown["status"] == "running"


def test_registration_refuses_incomplete_intake(hp, clock):
    clock.set(at("2026-09-28T10:00"))
    with pytest.raises(InvalidInput) as err:
        hp.start("hospital_patient", dict(INTAKE, settled_on_spot=True, channel="superior_referral",
                                          category="weather"), "nurse_zhang")
    assert {"on_spot_resolution", "superior_body", "category"} <= set(err.value.field_errors)
    with pytest.raises(InvalidInput) as err:
        hp.start("hospital_patient", {k: v for k, v in INTAKE.items() if k not in ("patient", "department_complained")},
                 "nurse_zhang")
    assert {"patient", "department_complained"} <= set(err.value.field_errors)
    assert hp.list_cases() == []


def test_letter_received_before_qingming_and_typed_in_after_counts_from_its_receipt(hp, clock, notifier):
    # a letter, an e-mail or the (weekly opened) complaint box needs the time it was received
    clock.set(at("2026-04-07T10:00"))
    for channel in ("letter", "email", "complaint_box"):
        with pytest.raises(InvalidInput) as err:
            hp.start("hospital_patient", dict(INTAKE, channel=channel), "office_liu")
        assert set(err.value.field_errors) == {"received_at"}
    assert hp.list_cases() == [] and notifier.sent == []
    # received Friday 04-03 at 15:00, typed in on Tuesday 04-07 after Qingming (04-04..06 off)
    case = start(hp, clock, when="2026-04-07T10:00", actor="office_liu", channel="letter",
                 received_at="2026-04-03T15:00")
    accept, first = deadline(hp, case, "accept"), deadline(hp, case, "first_reply")
    assert accept["start"] == first["start"] == "2026-04-03T07:00:00+00:00"
    # accept: 1 working day after Fri 04-03 -> Tue 04-07 (from the typing-in it would be 04-08)
    assert accept["last_day"] == "2026-04-07" and accept["due"] == "2026-04-07T16:00:00+00:00"
    # first reply: one week after Fri 04-03 -> Fri 04-10 (from the typing-in it would be 04-14)
    assert first["last_day"] == "2026-04-10"
    ack = last(notifier, "acknowledgement")
    assert "作出是否受理的决定：最迟于2026年04月07日" in ack["message"]
    clock.set(at("2026-04-07T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-04-08T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"accept_decision": "complaint_office", "supervise_acceptance": "supervision_office"}
    assert hp.replay(case.instance_id).consistent is True


def test_visit_without_a_receipt_time_counts_from_registration(hp, clock):
    case = start(hp, clock, when="2026-04-03T15:00", channel="phone")
    assert deadline(hp, case, "accept")["start"] == "2026-04-03T07:00:00+00:00"
    assert deadline(hp, case, "accept")["last_day"] == "2026-04-07"


def test_settled_on_the_spot_is_recorded_and_archived(hp, clock, notifier):
    case = start(hp, clock, settled_on_spot=True, on_spot_resolution="护士长当场道歉并重新换药，患者家属表示满意")
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and "当场协调处理并登记备案" in ack["message"]
    assert "YY-2026-000001" in ack["message"] and "最迟" not in ack["message"]
    assert deadline_names(hp, case) == []                      # no limit runs for a settled complaint
    assert tasks(hp, case) == {"archive": "complaint_office"}
    done = do(hp, case, "archive", {"summary": "当场处理"})
    assert done.status == "completed"
    assert hp.show(case.instance_id)["closed"] == "2026-09-28T02:00:00+00:00"
    assert hp.replay(case.instance_id).consistent is True


# --------------------------------------------------------------------------- acceptance

def test_acceptance_not_decided_in_one_working_day_is_supervised_across_labour_day(hp, clock, notifier):
    case = start(hp, clock, when="2026-04-30T16:00")               # Thursday before Labour Day
    accept = deadline(hp, case, "accept")
    # 1 working day after Thu 04-30: 05-01..05-05 are holidays -> Wed 05-06
    assert accept["last_day"] == "2026-05-06" and accept["due"] == "2026-05-06T16:00:00+00:00"
    # first reply: one week after Thu 04-30 -> Thu 05-07 (5 working days would be Mon 05-11)
    assert deadline(hp, case, "first_reply")["last_day"] == "2026-05-07"
    clock.set(at("2026-05-06T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-05-07T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"accept_decision": "complaint_office", "supervise_acceptance": "supervision_office"}
    accept = deadline(hp, case, "accept")
    assert accept["status"] == "breached" and accept["breached_at"] == "2026-05-06T16:00:00+00:00"
    do(hp, case, "supervise_acceptance", {"supervision_note": "请投诉管理办公室今日作出受理决定"}, user="jiancha_he")
    clock.set(at("2026-05-07T09:00"))
    do(hp, case, "accept_decision", ACCEPT)
    assert deadline(hp, case, "accept")["status"] == "breached"      # deciding late does not undo the breach
    assert tasks(hp, case) == {"investigate": "department"}
    assert hp.replay(case.instance_id).consistent is True


@pytest.mark.parametrize("decision, extra, expected", [
    ("refuse", {"refusal_ground": "not_patient_or_agent", "refusal_reason": "投诉人非本院就诊患者或其合法代理人"},
     "投诉人非本院就诊患者或其合法代理人"),
    ("refuse", {"refusal_ground": "no_clear_facts", "refusal_reason": "无明确的被投诉对象和事实根据"},
     "无明确的被投诉对象和事实根据"),
    ("outside_hospital", {"competent_body": "市医疗保障局"}, "不属于本院职责范围，请向市医疗保障局反映"),
])
def test_not_accepted_complaint_is_told_why_and_archived(hp, clock, notifier, decision, extra, expected):
    case = start(hp, clock)
    clock.set(at("2026-09-28T15:00"))
    do(hp, case, "accept_decision", dict({"decision": decision}, **extra))
    refusal = last(notifier, "refusal")
    assert refusal["to"] == "13900000001" and expected in refusal["message"] and "YY-2026-000001" in refusal["message"]
    assert deadline(hp, case, "accept")["status"] == "met"
    assert deadline(hp, case, "first_reply")["status"] == "met"      # the refusal is the answer
    assert tasks(hp, case) == {"archive": "complaint_office"}
    assert do(hp, case, "archive", {"summary": "不予受理"}).status == "completed"
    assert unhandled(hp, case) == []                                 # the reply watch heard the answer
    assert hp.replay(case.instance_id).consistent is True


def test_acceptance_form_requires_what_each_decision_needs(hp, clock):
    case = start(hp, clock)
    before = (len(hp.history(case.instance_id)), tasks(hp, case))
    cases = [
        ({"decision": "accept"}, {"severity", "handling", "coordination"}),
        ({"decision": "accept", "severity": "major", "handling": "standard", "coordination": "none"}, {"major_reason"}),
        ({"decision": "refuse"}, {"refusal_ground", "refusal_reason"}),
        ({"decision": "outside_hospital"}, {"competent_body"}),
        ({"decision": "incomplete"}, {"missing_materials"}),
        ({"decision": "transfer"}, {"decision"}),
    ]
    for data, fields in cases:
        with pytest.raises(InvalidInput) as err:
            do(hp, case, "accept_decision", data)
        assert fields <= set(err.value.field_errors), (data, err.value.field_errors)
    assert (len(hp.history(case.instance_id)), tasks(hp, case)) == before
    assert deadline(hp, case, "accept")["status"] == "open"


def test_incomplete_materials_pause_the_reply_clock_and_restart_both_limits(hp, clock, notifier):
    case = start(hp, clock, when="2026-04-29T10:00")               # Wednesday before Labour Day
    assert deadline(hp, case, "first_reply")["last_day"] == "2026-05-06"   # one week: Wed 05-06
    clock.set(at("2026-04-29T15:00"))
    do(hp, case, "accept_decision", {"decision": "incomplete", "missing_materials": "门诊病历和缴费凭证"})
    request = last(notifier, "complainant")
    assert "门诊病历和缴费凭证" in request["message"] and "1个工作日内" in request["message"]
    assert deadline(hp, case, "accept")["status"] == "met"
    assert deadline(hp, case, "first_reply")["status"] == "paused"
    assert tasks(hp, case) == {"await_materials": "complaint_office"}
    clock.set(at("2026-05-10T00:00"))                               # the old first-reply limit has passed
    assert hp.tick()["timers_fired"] == 0                           # but a paused limit does not fire
    assert deadline(hp, case, "first_reply")["status"] == "paused"

    clock.set(at("2026-05-11T10:00"))                               # Monday: the materials arrive
    do(hp, case, "await_materials", {"materials_received": "received", "materials_note": "已补交门诊病历和缴费凭证"})
    # counted again from Mon 05-11: accept Tue 05-12; first reply one week, Mon 05-18
    accept, first = deadline(hp, case, "accept"), deadline(hp, case, "first_reply")
    assert (accept["status"], accept["last_day"]) == ("open", "2026-05-12")
    assert (first["status"], first["last_day"], first["paused_days"]) == ("open", "2026-05-18", 0)
    ack = last(notifier, "acknowledgement")
    assert "补正材料已收到" in ack["message"] and "2026年05月12日" in ack["message"] and "2026年05月18日" in ack["message"]
    assert tasks(hp, case) == {"accept_decision": "complaint_office"}
    assert open_task(hp, case.instance_id, "accept_decision")["due"] == "2026-05-12T16:00:00+00:00"
    do(hp, case, "accept_decision", ACCEPT)
    assert tasks(hp, case) == {"investigate": "department"}
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    clock.set(at("2026-05-18T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-05-19T00:00"))
    assert hp.tick()["timers_fired"] == 1                           # the restarted limit is the one watched
    assert tasks(hp, case) == {"review_nursing": "nursing", "supervise_first_reply": "supervision_office"}
    assert hp.replay(case.instance_id).consistent is True


def test_materials_not_supplied_ends_with_a_notice(hp, clock, notifier):
    case = start(hp, clock)
    do(hp, case, "accept_decision", {"decision": "incomplete", "missing_materials": "住院费用清单"})
    clock.set(at("2026-10-09T10:00"))
    do(hp, case, "await_materials", {"materials_received": "not_supplied", "materials_note": "电话联系，投诉人表示不再补交"})
    refusal = last(notifier, "refusal")
    assert "未补正所需材料（住院费用清单）" in refusal["message"]
    first = deadline(hp, case, "first_reply")
    assert first["status"] == "met" and first["paused_days"] == 11  # paused 09-28 -> 10-09: 11 calendar days (unit days)
    assert tasks(hp, case) == {"archive": "complaint_office"}
    assert do(hp, case, "archive", {"summary": "未补正"}).status == "completed"
    assert hp.replay(case.instance_id).consistent is True


def test_materials_are_requested_at_most_twice(hp, clock, notifier):
    case = start(hp, clock)
    for n in (1, 2):
        do(hp, case, "accept_decision", {"decision": "incomplete", "missing_materials": "检查报告原件"})
        assert tasks(hp, case) == {"await_materials": "complaint_office"}, n
        do(hp, case, "await_materials", {"materials_received": "received", "materials_note": f"第{n}次补正"})
    do(hp, case, "accept_decision", {"decision": "incomplete", "missing_materials": "检查报告原件"})
    assert "经两次补正仍不齐全" in last(notifier, "refusal")["message"]
    assert tasks(hp, case) == {"archive": "complaint_office"}
    assert len(messages(notifier, "complainant")) == 2                # two requests, then the notice


# --------------------------------------------------------------------------- routing (decision table)

@pytest.mark.parametrize("category, role, unit", [
    ("medical_quality", "medical_affairs", "医务科"),
    ("nursing", "nursing", "护理部"),
    ("fees", "finance", "财务科"),
    ("service_attitude", "supervision_office", "监察室"),
    ("conduct", "supervision_office", "监察室"),
])
def test_category_routes_to_its_functional_department(hp, clock, notifier, category, role, unit):
    case = start(hp, clock, category=category)
    do(hp, case, "accept_decision", ACCEPT)
    told = last(notifier, "staff", f"role:{role}")
    assert unit in told["message"] and "普外科病区" in told["message"]
    assert "请科室负责人5个工作日内组织调查" in last(notifier, "staff", "role:department")["message"]
    assert tasks(hp, case) == {"investigate": "department"}
    investigate_and_review(hp, case, role)
    assert tasks(hp, case) == {"written_reply": "complaint_office"}
    reply_satisfied_and_archive(hp, case)
    assert hp.replay(case.instance_id).consistent is True


def test_the_office_may_correct_the_category_at_acceptance(hp, clock, notifier):
    case = start(hp, clock, category="nursing", content="同一项检查被重复收费")
    do(hp, case, "accept_decision", dict(ACCEPT, category="fees"))
    assert messages(notifier, "staff", "role:nursing") == []
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    assert tasks(hp, case) == {"review_finance": "finance"}
    do(hp, case, "review_finance", dict(OPINION, refund_amount=128.5), user="finance_head")
    assert tasks(hp, case) == {"written_reply": "complaint_office"}


@pytest.mark.parametrize("category, unit", [
    ("logistics", "总务科"), ("administration", "院办公室"), ("security", "保卫处"),
    ("infection", "感染管理科"), ("pharmacy", "药剂科"),
])
def test_matters_outside_the_office_remit_go_to_the_competent_department(hp, clock, notifier, category, unit):
    case = start(hp, clock, category=category)
    do(hp, case, "accept_decision", ACCEPT)
    assert tasks(hp, case) == {"transfer": "complaint_office"}
    do(hp, case, "transfer", {"transfer_note": "请核实后告知投诉管理办公室"})
    handed = last(notifier, "external")
    assert handed["to"] == unit and "YY-2026-000001" in handed["message"]
    assert unit in last(notifier, "complainant")["message"]


def test_transfer_within_two_working_days_across_national_day_and_followed_up(hp, clock, notifier):
    case = start(hp, clock, category="logistics", content="病区开水房连续三天无热水")   # Mon 09-28
    do(hp, case, "accept_decision", ACCEPT)
    transfer = deadline(hp, case, "transfer")
    # 2 working days after Mon 09-28: 09-29 (1), Wed 09-30 (2); National Day starts 10-01
    assert (transfer["unit"], transfer["amount"], transfer["last_day"]) == ("workdays", 2, "2026-09-30")
    assert transfer["seed"] == "000:158" and transfer["start"] == "2026-09-28T02:00:00+00:00"   # from receipt
    assert open_task(hp, case.instance_id, "transfer")["due"] == "2026-09-30T16:00:00+00:00"
    clock.set(at("2026-09-30T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-10-01T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"transfer": "complaint_office", "supervise_transfer": "supervision_office"}
    assert deadline(hp, case, "transfer")["status"] == "breached"
    do(hp, case, "supervise_transfer", {"supervision_note": "立即转交总务科"}, user="jiancha_he")
    clock.set(at("2026-10-08T09:00"))
    do(hp, case, "transfer", {"transfer_note": "请总务科核查开水供应", "receiving_contact": "总务科 陈科长"})
    assert last(notifier, "external")["to"] == "总务科"
    told = last(notifier, "complainant")
    assert "已由投诉管理办公室转交处理" in told["message"] and "无需另行前往" in told["message"]
    assert deadline(hp, case, "transfer")["status"] == "breached"
    assert deadline(hp, case, "first_reply")["status"] == "met"       # first reply due Sat 10-10
    assert tasks(hp, case) == {"transfer_followup": "complaint_office"}
    do(hp, case, "transfer_followup", {"functional_result": "总务科已维修加热设备"})
    reply_satisfied_and_archive(hp, case)
    assert hp.replay(case.instance_id).consistent is True


def test_crime_is_reported_to_the_police_at_once(hp, clock, notifier):
    case = start(hp, clock, category="crime", content="有人冒充医生收取红包并承诺安排床位")
    do(hp, case, "accept_decision", ACCEPT)
    police = [m for m in notifier.sent if m["kind"] == "external"]
    assert len(police) == 1 and police[0]["to"] == "公安机关" and "冒充医生" in police[0]["message"]
    assert "已报告公安机关" in last(notifier, "staff", "role:director")["message"]
    assert "已报告公安机关" in last(notifier, "complainant")["message"]
    shown = hp.show(case.instance_id)
    assert shown["legal_state"] == "reported_to_police"
    assert deadline(hp, case, "first_reply")["status"] == "met"
    assert tasks(hp, case) == {"archive": "complaint_office"}
    assert do(hp, case, "archive", {"summary": "已报警，配合调查"}).status == "completed"


# --------------------------------------------------------------------------- major, leadership

def test_major_complaint_is_reported_to_the_head_of_medical_affairs_and_the_director(hp, clock, notifier):
    case = start(hp, clock, category="medical_quality", content="手术后出现严重并发症，家属聚集病区")
    do(hp, case, "accept_decision", dict(ACCEPT, severity="major", major_reason="患者严重损害，家属聚集"))
    to_ma = last(notifier, "staff", "role:medical_affairs")
    to_director = last(notifier, "staff", "role:director")
    assert to_ma["message"].startswith("重大投诉YY-2026-000001") and "报告院长" in to_ma["message"]
    assert "请院长批示" in to_director["message"] and "家属聚集" in to_director["message"]
    assert tasks(hp, case) == {"major_instruction": "director"}
    do(hp, case, "major_instruction", {"instruction": "医务科牵头，三日内与家属沟通", "refer_to_leadership": False},
       user="director_sun")
    assert tasks(hp, case) == {"investigate": "department"}
    investigate_and_review(hp, case, "medical_affairs")
    reply_satisfied_and_archive(hp, case)
    assert hp.replay(case.instance_id).consistent is True


def test_director_refers_to_leadership_which_names_the_lead_and_reports_higher(hp, clock, notifier):
    case = start(hp, clock, category="nursing")
    do(hp, case, "accept_decision", dict(ACCEPT, severity="major", major_reason="媒体已关注"))
    do(hp, case, "major_instruction", {"instruction": "提交领导小组研究", "refer_to_leadership": True}, user="director_sun")
    assert "请领导小组协调" in last(notifier, "staff", "role:leadership_group")["message"]
    assert tasks(hp, case) == {"leadership_coordination": "leadership_group"}
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "leadership_coordination", {"handling_role": "medical_affairs", "coordination_plan": "医务科牵头",
                                                 "report_to_higher": True}, user="leader_zhou")
    assert "higher_authority" in err.value.field_errors
    do(hp, case, "leadership_coordination", {"handling_role": "medical_affairs", "coordination_plan": "医务科牵头，护理部配合",
                                             "report_to_higher": True, "higher_authority": "市卫生健康委员会"},
       user="leader_zhou")
    higher = last(notifier, "external")
    assert higher["to"] == "市卫生健康委员会" and "医务科牵头，护理部配合" in higher["message"]
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    assert tasks(hp, case) == {"review_medical_affairs": "medical_affairs"}   # the lead named by leadership


def test_complaint_involving_several_departments_goes_to_leadership_first(hp, clock, notifier):
    case = start(hp, clock, category="medical_quality")
    do(hp, case, "accept_decision", dict(ACCEPT, coordination="multi_department"))
    assert messages(notifier, "staff", "role:director") == []
    assert tasks(hp, case) == {"leadership_coordination": "leadership_group"}
    do(hp, case, "leadership_coordination", {"handling_role": "nursing", "coordination_plan": "护理部牵头",
                                             "report_to_higher": False}, user="leader_zhou")
    assert messages(notifier, "external") == []
    assert tasks(hp, case) == {"investigate": "department"}
    investigate_and_review(hp, case, "nursing")


def test_review_that_the_department_cannot_resolve_goes_to_a_leadership_decision(hp, clock, notifier):
    case = start(hp, clock)
    do(hp, case, "accept_decision", ACCEPT)
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "review_nursing", {"conclusion": "escalate"}, user="nursing_head")
    assert "escalation_reason" in err.value.field_errors
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "review_nursing", {"conclusion": "opinion"}, user="nursing_head")
    assert {"handling_opinion", "liability"} <= set(err.value.field_errors)
    do(hp, case, "review_nursing", {"conclusion": "escalate", "escalation_reason": "涉及医疗问题，护理部不能解决"},
       user="nursing_head")
    assert "护理部不能解决" in last(notifier, "staff", "role:leadership_group")["message"]
    assert tasks(hp, case) == {"leadership_decision": "leadership_group"}
    do(hp, case, "leadership_decision", {"leadership_opinion": "医务科与护理部共同整改并向患者道歉"}, user="leader_zhou")
    reply_satisfied_and_archive(hp, case)


# --------------------------------------------------------------------------- simple procedure

def test_simple_procedure_answers_within_two_working_days_across_qingming(hp, clock, notifier):
    case = start(hp, clock, when="2026-04-02T10:00", category="service_attitude")
    do(hp, case, "accept_decision", dict(ACCEPT, handling="simple"))
    simple = deadline(hp, case, "simple_reply")
    # 2 working days after Thu 04-02: Fri 04-03 (1), Qingming 04-05..06 and the weekend off, Tue 04-07 (2)
    assert (simple["unit"], simple["amount"], simple["last_day"], simple["seed"]) == ("workdays", 2, "2026-04-07", "000:86")
    assert tasks(hp, case) == {"simple_procedure": "complaint_office"}
    assert open_task(hp, case.instance_id, "simple_procedure")["due"] == "2026-04-07T16:00:00+00:00"
    assert messages(notifier, "staff", "role:department") == []       # no formal investigation
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "simple_procedure", {"department_head": "门诊部 赵主任", "simple_outcome": "explained"})
    assert "simple_reply_text" in err.value.field_errors
    clock.set(at("2026-04-07T15:00"))
    do(hp, case, "simple_procedure", {"department_head": "门诊部 赵主任", "simple_outcome": "explained",
                                      "simple_reply_text": "赵主任已当面说明并致歉，导诊流程已调整"})
    assert "赵主任已当面说明并致歉" in last(notifier, "complainant")["message"]
    assert deadline(hp, case, "simple_reply")["status"] == "met"
    assert deadline(hp, case, "first_reply")["status"] == "met"
    assert tasks(hp, case) == {"satisfaction_check": "complaint_office"}
    do(hp, case, "satisfaction_check", {"satisfied": "yes"})
    assert do(hp, case, "archive", {"summary": "简易程序"}).status == "completed"
    assert hp.replay(case.instance_id).consistent is True


def test_simple_procedure_that_needs_investigation_goes_to_the_department(hp, clock, notifier):
    case = start(hp, clock, category="service_attitude")
    do(hp, case, "accept_decision", dict(ACCEPT, handling="simple"))
    do(hp, case, "simple_procedure", {"department_head": "普外科 钱主任", "simple_outcome": "needs_investigation",
                                      "investigation_reason": "双方陈述不一致"})
    told = last(notifier, "complainant")
    assert "需要被投诉科室调查核实" in told["message"] and "2026-10-08" in told["message"]
    assert deadline(hp, case, "simple_reply")["status"] == "met"
    assert deadline(hp, case, "first_reply")["status"] == "open"
    assert tasks(hp, case) == {"investigate": "department"}
    investigate_and_review(hp, case, "supervision_office")
    reply_satisfied_and_archive(hp, case)


def test_simple_reply_overdue_is_supervised(hp, clock):
    case = start(hp, clock, category="service_attitude")              # Mon 09-28: 2 working days -> Wed 09-30
    do(hp, case, "accept_decision", dict(ACCEPT, handling="simple"))
    clock.set(at("2026-09-30T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-10-01T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"simple_procedure": "complaint_office", "supervise_simple_reply": "supervision_office"}
    simple = deadline(hp, case, "simple_reply")
    assert simple["status"] == "breached" and simple["breached_at"] == "2026-09-30T16:00:00+00:00"


# --------------------------------------------------------------------------- department investigation

def test_department_is_reminded_on_the_last_day_and_explains_an_overrun_in_advance(hp, clock, notifier):
    case = start(hp, clock)                                          # Mon 09-28
    clock.set(at("2026-09-28T11:00"))
    do(hp, case, "accept_decision", ACCEPT)
    inv = deadline(hp, case, "investigation")
    # 5 working days after Mon 09-28: 09-29 (1), 09-30 (2), National Day 10-01..07 off, 10-08 (3), 10-09 (4),
    # Sat 10-10 make-up working day (5)
    assert (inv["unit"], inv["amount"], inv["last_day"], inv["seed"]) == ("workdays", 5, "2026-10-10", "003:59")
    assert open_task(hp, case.instance_id, "investigate")["due"] == "2026-10-10T16:00:00+00:00"
    # the first reply's week ends first: Mon 10-05 is a holiday, rolled forward to Thu 10-08
    clock.set(at("2026-10-08T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-10-09T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"investigate": "department", "supervise_first_reply": "supervision_office"}
    do(hp, case, "supervise_first_reply", {"supervision_note": "督促尽快答复"}, user="jiancha_he")
    clock.set(at("2026-10-09T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-10-10T00:00"))                                # the start of the last working day
    assert hp.tick()["timers_fired"] == 1
    reminder = last(notifier, "staff", "role:department")
    assert "2026-10-10届满" in reminder["message"] and "书面说明原因" in reminder["message"]
    assert tasks(hp, case) == {"investigate": "department", "overrun_explanation": "department"}
    assert deadline(hp, case, "investigation")["status"] == "open"   # a reminder is not a breach
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "overrun_explanation", {"explanation": "overrun"}, user="dept_head_wu")
    assert {"overrun_reason", "expected_completion"} <= set(err.value.field_errors)
    clock.set(at("2026-10-10T09:00"))
    do(hp, case, "overrun_explanation", {"explanation": "overrun", "overrun_reason": "当事护士休假，10月12日返岗",
                                         "expected_completion": "2026-10-13"}, user="dept_head_wu")
    to_office = last(notifier, "staff", "role:complaint_office")
    assert "当事护士休假" in to_office["message"] and "2026-10-13" in to_office["message"]
    assert "预计于2026-10-13完成" in last(notifier, "complainant")["message"]
    assert tasks(hp, case) == {"investigate": "department"}
    clock.set(at("2026-10-10T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-10-11T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"investigate": "department", "supervise_investigation": "complaint_office"}
    inv = deadline(hp, case, "investigation")
    assert inv["status"] == "breached" and inv["breached_at"] == "2026-10-10T16:00:00+00:00"
    do(hp, case, "supervise_investigation", {"supervision_note": "10月13日前交书面材料", "progress_report": "当事人休假，预计13日完成",
                                             "patient_message": "调查预计10月13日完成，届时答复您"})
    assert "预计13日完成" in last(notifier, "staff", "role:director")["message"]
    assert "调查预计10月13日完成" in last(notifier, "complainant")["message"]
    clock.set(at("2026-10-13T10:00"))
    investigate_and_review(hp, case, "nursing")
    reply_satisfied_and_archive(hp, case)
    assert deadline(hp, case, "investigation")["status"] == "breached"
    assert hp.replay(case.instance_id).consistent is True


def test_unexplained_overrun_withdraws_the_explanation_task_and_the_office_supervises(hp, clock):
    case = start(hp, clock)
    do(hp, case, "accept_decision", ACCEPT)
    clock.set(at("2026-10-10T00:00"))
    hp.tick()
    assert "overrun_explanation" in tasks(hp, case)
    clock.set(at("2026-10-11T00:00"))
    hp.tick()
    open_now = tasks(hp, case)
    assert "overrun_explanation" not in open_now                      # too late to explain in advance
    assert open_now["supervise_investigation"] == "complaint_office" and open_now["investigate"] == "department"
    cancelled = [t for t in hp.show(case.instance_id)["completed_tasks"] if t["task"] == "overrun_explanation"]
    assert cancelled and cancelled[0]["status"] == "cancelled"
    assert deadline(hp, case, "investigation")["status"] == "breached"


def test_investigation_finished_before_the_reminder_raises_nothing(hp, clock, notifier):
    case = start(hp, clock)
    do(hp, case, "accept_decision", ACCEPT)
    clock.set(at("2026-09-30T10:00"))
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    assert deadline(hp, case, "investigation")["status"] == "met"
    clock.set(at("2026-10-11T00:00"))
    hp.tick()
    assert tasks(hp, case) == {"review_nursing": "nursing", "supervise_first_reply": "supervision_office"}
    assert not [m for m in notifier.sent if "届满" in m["message"]]   # no reminder to the department


def test_investigation_finished_on_the_last_day_withdraws_the_explanation_task(hp, clock):
    case = start(hp, clock)
    do(hp, case, "accept_decision", ACCEPT)
    clock.set(at("2026-10-10T00:00"))
    hp.tick()
    clock.set(at("2026-10-10T16:00"))
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    assert tasks(hp, case) == {"review_nursing": "nursing", "supervise_first_reply": "supervision_office"}
    assert deadline(hp, case, "investigation")["status"] == "met"
    clock.set(at("2026-10-11T00:00"))
    hp.tick()
    assert "supervise_investigation" not in tasks(hp, case)


def test_investigation_form_needs_two_investigators_and_the_head_signature(hp, clock):
    case = start(hp, clock)
    do(hp, case, "accept_decision", ACCEPT)
    before = (len(hp.history(case.instance_id)), tasks(hp, case))
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "investigate", dict(INVESTIGATION, head_signed=False), user="dept_head_wu")
    assert "head_signed" in err.value.field_errors
    with pytest.raises(InvalidInput) as err:                       # investigated by two people (004:352)
        do(hp, case, "investigate", dict(INVESTIGATION, investigators=["护士长 吴敏"]), user="dept_head_wu")
    assert "investigators" in err.value.field_errors
    assert (len(hp.history(case.instance_id)), tasks(hp, case)) == before
    assert deadline(hp, case, "investigation")["status"] == "open"


# --------------------------------------------------------------------------- replies

def test_complex_case_progress_notice_in_one_week_and_reply_in_20_days_across_national_day(hp, clock, notifier):
    case = start(hp, clock, category="medical_quality")              # Mon 09-28
    do(hp, case, "accept_decision", dict(ACCEPT, handling="complex"))
    final = deadline(hp, case, "final_reply")
    # 20 calendar days after 09-28 is Sun 10-18, rolled forward to Mon 10-19 (节假日顺延)
    assert (final["unit"], final["amount"], final["last_day"], final["seed"]) == ("days", 20, "2026-10-19", "000:370")
    assert final["start"] == "2026-09-28T02:00:00+00:00"
    ack = last(notifier, "acknowledgement")
    # progress: one week after 09-28 is Mon 10-05 (National Day), rolled forward to Thu 10-08
    assert "情况复杂" in ack["message"] and "2026年10月08日" in ack["message"] and "2026年10月19日" in ack["message"]
    assert tasks(hp, case) == {"investigate": "department", "progress_notice": "complaint_office"}
    assert open_task(hp, case.instance_id, "progress_notice")["due"] == "2026-10-08T16:00:00+00:00"
    clock.set(at("2026-10-08T10:00"))
    do(hp, case, "progress_notice", {"progress_text": "已调取病历，正在组织专家讨论"})
    assert "正在组织专家讨论" in last(notifier, "complainant")["message"]
    assert deadline(hp, case, "first_reply")["status"] == "met"
    assert deadline(hp, case, "final_reply")["status"] == "open"
    clock.set(at("2026-10-09T16:00"))
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    assert deadline(hp, case, "investigation")["status"] == "met"
    clock.set(at("2026-10-12T10:00"))
    assert open_task(hp, case.instance_id, "review_medical_affairs")["due"] == "2026-10-19T16:00:00+00:00"
    do(hp, case, "review_medical_affairs", OPINION, user="ma_head")
    assert open_task(hp, case.instance_id, "written_reply")["due"] == "2026-10-19T16:00:00+00:00"
    clock.set(at("2026-10-19T17:00"))
    do(hp, case, "written_reply", REPLY)
    assert deadline(hp, case, "final_reply")["status"] == "met"
    clock.set(at("2026-10-20T00:00"))
    assert hp.tick()["timers_fired"] == 0
    do(hp, case, "satisfaction_check", {"satisfied": "yes"})
    assert do(hp, case, "archive", {"summary": "复杂投诉"}).status == "completed"
    assert hp.replay(case.instance_id).consistent is True


def test_complex_case_answered_before_a_progress_notice_withdraws_it(hp, clock, notifier):
    case = start(hp, clock, category="medical_quality")
    do(hp, case, "accept_decision", dict(ACCEPT, handling="complex"))
    investigate_and_review(hp, case, "medical_affairs")
    do(hp, case, "written_reply", REPLY)
    assert tasks(hp, case) == {"satisfaction_check": "complaint_office"}
    assert deadline(hp, case, "first_reply")["status"] == "met" and deadline(hp, case, "final_reply")["status"] == "met"
    assert not [m for m in notifier.sent if "调查进展：" in m["message"]]


def test_first_reply_missed_is_supervised(hp, clock):
    case = start(hp, clock)
    do(hp, case, "accept_decision", ACCEPT)
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    clock.set(at("2026-10-08T23:59"))                               # one week: 10-05 (holiday) rolled to Thu 10-08
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-10-09T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"review_nursing": "nursing", "supervise_first_reply": "supervision_office"}
    first = deadline(hp, case, "first_reply")
    assert first["status"] == "breached" and first["breached_at"] == "2026-10-08T16:00:00+00:00"
    do(hp, case, "supervise_first_reply", {"supervision_note": "督促投诉管理办公室答复"}, user="jiancha_he")
    do(hp, case, "review_nursing", OPINION, user="nursing_head")
    reply_satisfied_and_archive(hp, case)
    assert deadline(hp, case, "first_reply")["status"] == "breached"
    assert unhandled(hp, case) == ["first_replied"]                  # the late reply: the watch had ended


def test_first_reply_within_one_week_rolls_over_national_day_2025_not_five_working_days(hp, clock):
    # 000:369: one week, 节假日顺延. Received Tue 2025-09-30: one week ends Tue 10-07, a holiday,
    # rolled forward to Thu 10-09; 5 working days would run to 10-14.
    case = start(hp, clock, when="2025-09-30T10:00")
    first = deadline(hp, case, "first_reply")
    assert (first["unit"], first["amount"], first["last_day"]) == ("days", 7, "2025-10-09")
    assert first["due"] == "2025-10-09T16:00:00+00:00"
    clock.set(at("2025-09-30T11:00"))
    do(hp, case, "accept_decision", ACCEPT)
    clock.set(at("2025-10-09T23:59"))
    assert hp.tick()["timers_fired"] == 0
    assert "supervise_first_reply" not in tasks(hp, case)
    clock.set(at("2025-10-10T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"investigate": "department", "supervise_first_reply": "supervision_office"}
    assert deadline(hp, case, "first_reply")["status"] == "breached"


def test_final_reply_missed_is_supervised(hp, clock):
    case = start(hp, clock, category="medical_quality")
    do(hp, case, "accept_decision", dict(ACCEPT, handling="complex"))
    do(hp, case, "progress_notice", {"progress_text": "调查中"})
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    clock.set(at("2026-10-19T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-10-20T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"review_medical_affairs": "medical_affairs", "supervise_final_reply": "supervision_office"}
    assert deadline(hp, case, "final_reply")["status"] == "breached"


# --------------------------------------------------------------------------- medical accident and disputes

def test_medical_accident_statutory_procedure_appraisal_pauses_the_clock_then_mediation_then_court(hp, clock, notifier):
    case = start(hp, clock, category="medical_accident", content="分娩时新生儿锁骨骨折，家属认为是医疗事故")
    do(hp, case, "accept_decision", ACCEPT)
    assert "启动医疗事故处理程序" in last(notifier, "staff", "role:medical_affairs")["message"]
    assert "请护理部配合" in last(notifier, "staff", "role:nursing")["message"]
    assert "《医疗事故处理条例》" in last(notifier, "complainant")["message"]
    shown = hp.show(case.instance_id)
    assert shown["legal_state"] == "medical_accident_procedure"
    assert deadline(hp, case, "first_reply")["status"] == "met"
    assert deadline(hp, case, "final_reply")["last_day"] == "2026-10-19"
    assert "investigation" not in deadline_names(hp, case)            # no department investigation
    assert tasks(hp, case) == {"accident_procedure": "medical_affairs"}
    do(hp, case, "accident_procedure", {"measures_taken": "封存病历资料，组织产科讨论"}, user="ma_head")
    assert tasks(hp, case) == {"dispute_route": "medical_affairs"}
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "dispute_route", {"dispute_path": "appraisal"}, user="ma_head")
    assert "appraisal_body" in err.value.field_errors

    clock.set(at("2026-10-12T10:00"))
    do(hp, case, "dispute_route", {"dispute_path": "appraisal", "appraisal_body": "市医学会"}, user="ma_head")
    assert last(notifier, "external")["to"] == "市医学会"
    assert "鉴定期间不计入答复时限" in last(notifier, "complainant")["message"]
    paused = deadline(hp, case, "final_reply")
    assert paused["status"] == "paused" and paused["paused_since"] == "2026-10-12T02:00:00+00:00"
    clock.set(at("2026-10-20T00:00"))                                # the old limit passes during the appraisal
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-11-02T10:00"))                                # 21 days of appraisal
    do(hp, case, "appraisal_result", {"appraisal_conclusion": "不构成医疗事故", "is_medical_accident": "no"}, user="ma_head")
    final = deadline(hp, case, "final_reply")
    # 09-28 + 20 + 21 paused days = Sun 11-08, rolled forward to Mon 11-09
    assert final["status"] == "open" and final["paused_days"] == 21 and final["last_day"] == "2026-11-09"

    do(hp, case, "dispute_route", {"dispute_path": "mediation"}, user="ma_head")
    assert last(notifier, "external")["to"] == "医疗纠纷人民调解委员会"
    assert hp.show(case.instance_id)["legal_state"] == "people_mediation"
    assert deadline(hp, case, "final_reply")["status"] == "met"       # referred and told in time
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "mediation_result", {"mediation_outcome": "agreement"}, user="ma_head")
    assert "agreement" in err.value.field_errors
    do(hp, case, "mediation_result", {"mediation_outcome": "failed", "mediation_note": "家属要求过高"}, user="ma_head")
    assert tasks(hp, case) == {"dispute_route": "medical_affairs"}
    do(hp, case, "dispute_route", {"dispute_path": "mediation"}, user="ma_head")   # two rounds used: court only
    assert "依法向人民法院提起诉讼" in last(notifier, "complainant")["message"]
    assert hp.show(case.instance_id)["legal_state"] == "litigation"
    assert len([m for m in notifier.sent if m["to"] == "医疗纠纷人民调解委员会"]) == 1
    assert tasks(hp, case) == {"archive": "complaint_office"}
    assert do(hp, case, "archive", {"summary": "转入诉讼"}).status == "completed"
    assert hp.replay(case.instance_id).consistent is True


def test_medical_accident_settled_by_negotiation_is_answered_in_writing(hp, clock, notifier):
    case = start(hp, clock, category="medical_accident")
    do(hp, case, "accept_decision", ACCEPT)
    do(hp, case, "accident_procedure", {"measures_taken": "封存病历"}, user="ma_head")
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "dispute_route", {"dispute_path": "negotiation"}, user="ma_head")
    assert "settlement" in err.value.field_errors
    do(hp, case, "dispute_route", {"dispute_path": "negotiation", "settlement": "医院承担后续治疗费用"}, user="ma_head")
    assert tasks(hp, case) == {"written_reply": "complaint_office"}
    do(hp, case, "written_reply", dict(REPLY, reply_text="经协商，医院承担后续治疗费用"))
    assert deadline(hp, case, "final_reply")["status"] == "met"
    do(hp, case, "satisfaction_check", {"satisfied": "yes"})
    assert do(hp, case, "archive", {"summary": "协商解决"}).status == "completed"


def test_mediation_agreement_is_answered_in_writing(hp, clock, notifier):
    case = start(hp, clock, category="medical_accident")
    do(hp, case, "accept_decision", ACCEPT)
    do(hp, case, "accident_procedure", {"measures_taken": "封存病历"}, user="ma_head")
    do(hp, case, "dispute_route", {"dispute_path": "mediation"}, user="ma_head")
    do(hp, case, "mediation_result", {"mediation_outcome": "agreement", "agreement": "一次性补偿"}, user="ma_head")
    assert tasks(hp, case) == {"written_reply": "complaint_office"}
    do(hp, case, "written_reply", dict(REPLY, reply_text="调解协议：一次性补偿"))
    assert unhandled(hp, case) == ["first_replied", "final_replied"]  # both answered earlier (accident notice, referral)
    do(hp, case, "satisfaction_check", {"satisfied": "yes"})
    assert do(hp, case, "archive", {"summary": "人民调解"}).status == "completed"


# --------------------------------------------------------------------------- dissatisfied patients

def test_dissatisfied_patient_is_communicated_with_again_at_most_twice(hp, clock, notifier):
    case = start(hp, clock)
    do(hp, case, "accept_decision", ACCEPT)
    investigate_and_review(hp, case)
    do(hp, case, "written_reply", REPLY)
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "satisfaction_check", {"satisfied": "no"})
    assert "patient_opinion" in err.value.field_errors
    do(hp, case, "satisfaction_check", {"satisfied": "no", "patient_opinion": "要求当事护士当面道歉"})
    assert tasks(hp, case) == {"further_communication": "complaint_office"}
    do(hp, case, "further_communication", {"communication_record": "家属坚持要求当面道歉",
                                           "communication_outcome": "leadership"})
    assert "仍不满意" in last(notifier, "staff", "role:leadership_group")["message"]
    assert tasks(hp, case) == {"leadership_decision": "leadership_group"}
    do(hp, case, "leadership_decision", {"leadership_opinion": "护士长陪同当事护士当面道歉"}, user="leader_zhou")
    do(hp, case, "written_reply", dict(REPLY, reply_text="护士长陪同当事护士当面道歉"))
    do(hp, case, "satisfaction_check", {"satisfied": "no", "patient_opinion": "仍要求赔偿"})
    assert tasks(hp, case) == {"further_communication": "complaint_office"}          # second round
    do(hp, case, "further_communication", {"communication_record": "要求赔偿", "communication_outcome": "leadership"})
    do(hp, case, "leadership_decision", {"leadership_opinion": "维持原处理意见"}, user="leader_zhou")
    do(hp, case, "written_reply", dict(REPLY, reply_text="维持原处理意见"))
    do(hp, case, "satisfaction_check", {"satisfied": "no", "patient_opinion": "不接受"})
    assert "人民调解委员会调解" in last(notifier, "complainant")["message"]      # the bound: other routes
    assert tasks(hp, case) == {"archive": "complaint_office"}
    rounds = [e for e in hp.history(case.instance_id)
              if e["kind"] == "task_completed" and e["payload"]["task"] == "further_communication"]
    assert len(rounds) == 2
    assert do(hp, case, "archive", {"summary": "两次再沟通"}).status == "completed"
    assert hp.replay(case.instance_id).consistent is True


@pytest.mark.parametrize("outcome, expected_task", [
    ("resolved", "archive"), ("end", "archive"), ("dispute", "dispute_route"),
])
def test_further_communication_outcomes(hp, clock, notifier, outcome, expected_task):
    case = start(hp, clock, category="medical_quality")
    do(hp, case, "accept_decision", ACCEPT)
    investigate_and_review(hp, case, "medical_affairs")
    do(hp, case, "written_reply", REPLY)
    do(hp, case, "satisfaction_check", {"satisfied": "no", "patient_opinion": "不认可调查结论"})
    told = len(messages(notifier, "complainant"))
    do(hp, case, "further_communication", {"communication_record": "再次沟通", "communication_outcome": outcome,
                                           "improvement": "加强术前告知"})
    assert list(tasks(hp, case)) == [expected_task]
    if outcome == "end":
        assert "依法向人民法院提起诉讼" in last(notifier, "complainant")["message"]
    else:
        assert len(messages(notifier, "complainant")) == told
    if outcome == "dispute":
        assert tasks(hp, case) == {"dispute_route": "medical_affairs"}
        do(hp, case, "dispute_route", {"dispute_path": "appraisal", "appraisal_body": "市医学会"}, user="ma_head")
        assert [d["status"] for d in hp.show(case.instance_id)["deadlines"]] == ["met"] * 3   # nothing left to pause
        do(hp, case, "appraisal_result", {"appraisal_conclusion": "诊疗符合规范", "is_medical_accident": "no"}, user="ma_head")
        do(hp, case, "dispute_route", {"dispute_path": "court"}, user="ma_head")
        assert hp.show(case.instance_id)["legal_state"] == "litigation"
    assert do(hp, case, "archive", {"summary": outcome}).status == "completed"
    assert hp.replay(case.instance_id).consistent is True


def test_complaint_referred_by_a_superior_is_answered_to_it(hp, clock, notifier):
    case = start(hp, clock, channel="superior_referral", superior_body="市卫生健康委员会")
    do(hp, case, "accept_decision", ACCEPT)
    investigate_and_review(hp, case)
    do(hp, case, "written_reply", REPLY)
    do(hp, case, "satisfaction_check", {"satisfied": "yes"})
    do(hp, case, "archive", {"summary": "已整改并答复患者"})
    to_superior = last(notifier, "external")
    assert to_superior["to"] == "市卫生健康委员会" and "已整改并答复患者" in to_superior["message"]
    assert hp.show(case.instance_id)["status"] == "completed"


def test_task_forms_refuse_missing_conditional_fields_and_change_nothing(hp, clock):
    case = start(hp, clock)
    do(hp, case, "accept_decision", ACCEPT)
    do(hp, case, "investigate", INVESTIGATION, user="dept_head_wu")
    before = (len(hp.history(case.instance_id)), tasks(hp, case))
    for data, field in [({"conclusion": "opinion", "handling_opinion": "x"}, "liability"),
                        ({"conclusion": "opinion", "handling_opinion": "x", "liability": "nobody"}, "liability"),
                        ({"conclusion": "opinion", "handling_opinion": "x", "liability": "none", "refund_amount": -1},
                         "refund_amount"),
                        ({"conclusion": "opinion", "handling_opinion": "x", "liability": "none", "extra": 1}, "extra")]:
        with pytest.raises(InvalidInput) as err:
            do(hp, case, "review_nursing", data, user="nursing_head")
        assert field in err.value.field_errors, (data, err.value.field_errors)
    assert (len(hp.history(case.instance_id)), tasks(hp, case)) == before


# --- materials supplied later: the `supplement` message (004:352 四、3; issue 13) ------------

SUPPLEMENT = {"supplemented_at": "2026-05-07T09:30:00+08:00", "supplement_materials": "门诊病历复印件和缴费凭证"}


def test_supplement_message_ends_the_wait_and_restarts_both_limits_across_labour_day(hp, clock, notifier):
    case = start(hp, clock, when="2026-04-29T10:00")               # Wednesday before Labour Day
    clock.set(at("2026-04-29T15:00"))
    do(hp, case, "accept_decision", {"decision": "incomplete", "missing_materials": "门诊病历和缴费凭证"})
    clock.set(at("2026-05-07T00:00"))                               # the week would have ended Wed 05-06
    assert hp.tick()["timers_fired"] == 0 and deadline(hp, case, "first_reply")["status"] == "paused"
    clock.set(at("2026-05-07T10:00"))                               # Thursday: the complainant brings them
    hp.send_message(case.instance_id, "supplement", SUPPLEMENT, "nurse_zhang")
    # counted again from Thu 05-07: accept Fri 05-08; first reply one week, Thu 05-14
    accept, first = deadline(hp, case, "accept"), deadline(hp, case, "first_reply")
    assert (accept["status"], accept["last_day"]) == ("open", "2026-05-08")
    assert (first["status"], first["last_day"]) == ("open", "2026-05-14")
    ack = last(notifier, "acknowledgement")
    assert "补正材料已收到" in ack["message"] and "2026年05月14日" in ack["message"]
    assert tasks(hp, case) == {"accept_decision": "complaint_office"}
    assert hp.replay(case.instance_id).state["data"]["supplement"]["supplement_materials"] == "门诊病历复印件和缴费凭证"

    before = (hp.show(case.instance_id), len(hp.history(case.instance_id)), len(notifier.sent))
    with pytest.raises(Conflict) as err:                            # nothing is awaited any more
        hp.send_message(case.instance_id, "supplement", SUPPLEMENT, "nurse_zhang")
    assert "supplement" in str(err.value)
    assert (hp.show(case.instance_id), len(hp.history(case.instance_id)), len(notifier.sent)) == before
    assert hp.replay(case.instance_id).consistent


def test_supplement_for_a_closed_case_is_refused_and_changes_nothing(hp, clock, notifier):
    case = start(hp, clock, settled_on_spot=True, on_spot_resolution="当场解释并致歉，患者表示满意")
    do(hp, case, "archive", {"summary": "当场处理"})
    assert hp.show(case.instance_id)["status"] == "completed"
    before = (hp.show(case.instance_id), len(hp.history(case.instance_id)), len(notifier.sent))
    with pytest.raises(Conflict) as err:
        hp.send_message(case.instance_id, "supplement", SUPPLEMENT, "nurse_zhang")
    assert "closed" in str(err.value)
    assert (hp.show(case.instance_id), len(hp.history(case.instance_id)), len(notifier.sent)) == before
