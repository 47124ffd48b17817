"""government_service (政务服务大厅, administrative complaints): what the scenarios in
processes/tests/government_service cannot say, through the real service with a FixedClock.
Seeds: 004:272-274; 001:97-108; 003:339 (see docs/processes/government_service.md)."""

from __future__ import annotations

import json

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import Conflict, InvalidInput, NotAllowed
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from webapp import sign_in

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

# the intake form's example: a real-name complaint received the Tuesday before National Day 2026
INTAKE = json.loads((PROCESSES / "forms" / "government_service" / "intake.json").read_text(encoding="utf-8"))["examples"][0]

FINDINGS = {
    "complainant_heard": True, "respondent_heard": True, "no_conflict_of_interest": True,
    "findings": "窗口工作人员要求提交办事指南以外的证明材料", "mediated": False, "complaint_upheld": "upheld",
    "handling_decision": "投诉属实，责令不动产登记窗口改正", "correction_required": False,
}


def at(moment):
    return parse_instant(moment + ":00+08:00")


@pytest.fixture
def gs(service, clock):
    clock.set(at("2026-09-29T10:00"))
    service.deploy([PROCESSES / "government_service.bpmn"])
    return service


def start(gs, **overrides):
    return gs.start("government_service", dict(INTAKE, **overrides), "gov_office")


def do(gs, case, task, data, user="gov_office"):
    return gs.complete_task(open_task(gs, case.instance_id, task)["task_id"], user, data)


def tasks(gs, case):
    return {t["task"]: t["role"] for t in gs.list_tasks(instance_id=case.instance_id)}


def deadline(gs, case, name):
    return next(d for d in gs.show(case.instance_id)["deadlines"] if d["name"] == name)


def data(gs, case):
    return gs.replay(case.instance_id).state["data"]


def events(gs, case):
    return len(gs.history(case.instance_id))


def zh(err):
    return err.value.field_texts("zh")


def to_investigation(gs, clock, case, severity="general", when="2026-10-08T09:00"):
    clock.set(at(when))
    do(gs, case, "review", {"decision": "accept", "severity": severity})


# --- registration and the 3 working days of review (004:272) ---------------------------------

def test_registration_numbers_the_case_and_counts_the_review_over_national_day(gs, notifier):
    case = start(gs)
    assert case.case_number == "ZW-2026-000001"
    review = deadline(gs, case, "review")
    # Wed 09-30 (1); 10-01..10-07 National Day; Thu 10-08 (2), Fri 10-09 (3)
    assert review["last_day"] == "2026-10-09" and review["due"] == "2026-10-09T16:00:00+00:00"
    assert (review["unit"], review["amount"], review["seed"]) == ("workdays", 3, "004:272")
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == "13900000001"
    assert "ZW-2026-000001" in ack["message"] and "2026年10月09日" in ack["message"]
    assert tasks(gs, case) == {"review": "gov_office"}
    assert open_task(gs, case.instance_id, "review")["due"] == "2026-10-09T16:00:00+00:00"


def test_the_review_counts_from_receipt_not_from_typing_it_in(gs, clock):
    clock.set(at("2026-10-08T09:00"))                     # a letter received before the holiday, typed in after
    case = start(gs, channel="letter", received_at="2026-09-30T16:00:00+08:00")
    assert deadline(gs, case, "review")["last_day"] == "2026-10-10"   # Thu 10-08, Fri 10-09, make-up Sat 10-10


def test_a_missed_review_is_supervised_at_the_minute_and_stays_breached(gs, clock):
    case = start(gs)
    clock.set(at("2026-10-09T23:59"))
    assert gs.tick()["timers_fired"] == 0 and tasks(gs, case) == {"review": "gov_office"}
    clock.set(at("2026-10-10T00:00"))
    assert gs.tick()["timers_fired"] == 1
    assert tasks(gs, case) == {"review": "gov_office", "supervise_review": "gov_leader"}
    do(gs, case, "supervise_review", {"supervision_note": "请今日审查"}, user="gov_leader")
    do(gs, case, "review", {"decision": "accept", "severity": "general"})
    late = deadline(gs, case, "review")
    assert late["status"] == "breached" and late["breached_at"] == "2026-10-09T16:00:00+00:00"


# --- forms: clear Chinese messages, nothing stored ------------------------------------------------

def test_a_real_name_complaint_needs_name_and_contact_and_nothing_is_registered(gs):
    bad = {k: v for k, v in INTAKE.items() if k not in ("complainant", "contact")}
    with pytest.raises(InvalidInput) as err:
        gs.start("government_service", dict(bad, received_at="上周五"), "gov_office")
    texts = zh(err)
    assert texts["complainant"] == ["「投诉人姓名」必填"] and texts["contact"] == ["「联系方式」必填"]
    assert texts["received_at"] == ["「收到时间」应为日期和时间，例如 2026-05-06 17:00，现为 上周五"]
    assert gs.list_cases() == []
    anonymous = gs.start("government_service", dict(bad, real_name=False), "gov_office")   # 一般应采取实名制
    assert anonymous.case_number == "ZW-2026-000001"


def test_review_and_investigation_errors_are_named_and_change_nothing(gs, clock):
    case = start(gs)
    before = events(gs, case)
    with pytest.raises(InvalidInput) as err:
        do(gs, case, "review", {"decision": "refuse"})
    assert zh(err) == {"refusal_reason": ["「不予受理的理由」必填"]}
    with pytest.raises(InvalidInput) as err:
        do(gs, case, "review", {"decision": "accept"})
    assert zh(err) == {"severity": ["「投诉等级」必填"]}
    assert events(gs, case) == before and tasks(gs, case) == {"review": "gov_office"}
    assert "decision" not in data(gs, case)

    to_investigation(gs, clock, case)
    before = events(gs, case)
    with pytest.raises(InvalidInput) as err:                # correction ordered without its time limit
        do(gs, case, "investigate", dict(FINDINGS, correction_required=True, respondent_heard=False),
           user="gov_investigator")
    texts = zh(err)
    assert texts["correction_due"] == ["「改正限期」必填"]
    assert "已听取被投诉人意见" in texts["respondent_heard"][0]
    assert events(gs, case) == before and tasks(gs, case) == {"investigate": "gov_investigator"}
    assert "findings" not in data(gs, case)


# --- the review panel (001:106): every member's vote, the majority decides ---------------------

@pytest.mark.parametrize("legal, discipline, leader, outcome", [
    ("approve", "approve", "return", "approved"),
    ("return", "approve", "approve", "approved"),
    ("approve", "return", "approve", "approved"),
    ("approve", "return", "return", "returned"),
    ("return", "return", "return", "returned"),
])
def test_the_panel_decides_by_majority_and_each_vote_is_recorded(gs, clock, legal, discipline, leader, outcome):
    case = start(gs)
    to_investigation(gs, clock, case, severity="major")
    do(gs, case, "investigate", FINDINGS, user="gov_investigator")
    assert tasks(gs, case) == {"panel_vote_legal": "gov_panel_legal", "panel_vote_discipline": "gov_panel_discipline",
                               "panel_vote_leader": "gov_leader"}
    do(gs, case, "panel_vote_legal", {"legal_vote": legal, "legal_comment": "法制"}, user="fa_wang")
    do(gs, case, "panel_vote_discipline", {"discipline_vote": discipline, "discipline_comment": "纪检"}, user="ji_li")
    assert "panel_outcome" not in data(gs, case)            # no outcome before the last vote
    do(gs, case, "panel_vote_leader", {"leader_vote": leader, "leader_comment": "组长"}, user="ju_zhao")
    facts = data(gs, case)
    assert (facts["legal_vote"], facts["discipline_vote"], facts["leader_vote"]) == (legal, discipline, leader)
    assert facts["panel_outcome"] == outcome
    votes = {e["task_id"]: e["actor"] for e in gs.history(case.instance_id) if e["kind"] == "task_completed"}
    assert {"fa_wang", "ji_li", "ju_zhao"} <= set(votes.values())
    assert tasks(gs, case) == ({"inform_result": "gov_office"} if outcome == "approved"
                               else {"supplement_investigation": "gov_investigator"})


# --- the result within 2 working days of closing (004:274) -------------------------------------

def test_the_result_is_due_two_working_days_after_closing_counting_the_make_up_saturday(gs, clock):
    clock.set(at("2026-04-30T16:00"))
    case = start(gs, received_at="2026-04-30T16:00:00+08:00")
    to_investigation(gs, clock, case, when="2026-05-06T09:00")
    clock.set(at("2026-05-07T09:00"))
    do(gs, case, "investigate", FINDINGS, user="gov_investigator")
    assert gs.show(case.instance_id)["closed"] == "2026-05-07T01:00:00+00:00"    # 办结
    result = deadline(gs, case, "result")
    assert result["last_day"] == "2026-05-09" and result["seed"] == "004:274"   # Fri 05-08, Sat 05-09 worked
    clock.set(at("2026-05-09T23:59"))
    assert gs.tick()["timers_fired"] == 0
    clock.set(at("2026-05-10T00:00"))
    assert gs.tick()["timers_fired"] == 1
    assert tasks(gs, case) == {"inform_result": "gov_office", "supervise_result": "gov_leader"}


def test_an_anonymous_complaint_is_closed_without_a_result_notice_or_windows(gs, clock, notifier):
    case = gs.start("government_service", {k: v for k, v in INTAKE.items() if k not in ("complainant", "contact")}
                    | {"real_name": False}, "gov_office")
    to_investigation(gs, clock, case)
    done = do(gs, case, "investigate", FINDINGS, user="gov_investigator")
    assert done.status == "completed" and gs.show(case.instance_id)["legal_state"] is None
    assert [m["kind"] for m in notifier.sent] == ["acknowledgement"]
    assert "result" not in {d["name"] for d in gs.show(case.instance_id)["deadlines"]}


# --- the windows for review and lawsuit, the legal state (003:339; 001:101, 105, 107) ----------

def served(gs, clock, case, on="2026-11-06"):
    to_investigation(gs, clock, case)
    do(gs, case, "investigate", FINDINGS, user="gov_investigator")
    clock.set(at(on + "T10:00"))
    do(gs, case, "inform_result", {"served_on": on, "service_way": "mail"})


def test_the_decision_is_final_when_both_windows_have_passed(gs, clock, notifier):
    case = start(gs)
    served(gs, clock, case)
    facts = data(gs, case)
    # 60 days from Fri 11-06 end Tue 2027-01-05; 3 months end Sat 2027-02-06 (Spring Festival) -> Tue 02-09
    assert facts["review_window"]["last_day"] == "2027-01-05"
    assert facts["lawsuit_window"]["last_day"] == "2027-02-09" and facts["lawsuit_window"]["provisional"] is True
    notice = notifier.sent[-1]["message"]
    assert "60日内（至2027-01-05）申请行政复议" in notice and "3个月内（至2027-02-09）依法提起行政诉讼" in notice
    clock.set(at("2027-01-06T00:00"))                       # only the first window has passed
    assert gs.tick()["timers_fired"] == 0 and gs.show(case.instance_id)["legal_state"] is None
    clock.set(at("2027-02-09T23:59"))
    assert gs.tick()["timers_fired"] == 0 and gs.show(case.instance_id)["legal_state"] is None
    clock.set(at("2027-02-10T00:00"))
    assert gs.tick()["timers_fired"] == 1
    shown = gs.show(case.instance_id)
    assert shown["legal_state"] == "decision_final" and shown["status"] == "completed"
    assert gs.replay(case.instance_id).consistent is True


def test_an_outside_ruling_after_finality_or_before_service_is_refused_and_changes_nothing(gs, clock):
    ruling = {"ruling_body": "县人民政府", "ruling_received_at": "2026-10-09T09:00:00+08:00", "ruling_outcome": "维持"}
    case = start(gs)
    before = events(gs, case)
    with pytest.raises(Conflict, match="outside_ruling"):
        gs.send_message(case.instance_id, "outside_ruling", ruling, "gov_office")
    assert events(gs, case) == before and tasks(gs, case) == {"review": "gov_office"}
    served(gs, clock, case)
    clock.set(at("2027-02-10T00:00"))
    gs.tick()
    before = events(gs, case)
    with pytest.raises(Conflict, match="closed"):
        gs.send_message(case.instance_id, "outside_ruling", ruling, "gov_office")
    assert events(gs, case) == before and gs.show(case.instance_id)["legal_state"] == "decision_final"


def test_a_ruling_within_the_windows_sets_the_state_it_says(gs, clock):
    case = start(gs)
    served(gs, clock, case)
    clock.set(at("2026-12-20T09:00"))
    gs.send_message(case.instance_id, "outside_ruling", {"ruling_body": "县人民政府", "ruling_outcome": "撤销",
                                                         "ruling_received_at": "2026-12-19T15:00:00+08:00"}, "gov_office")
    do(gs, case, "record_ruling", {"ruling_kind": "administrative_review", "ruling_effect": "revoked"})
    assert gs.show(case.instance_id)["legal_state"] == "decision_revoked"
    assert tasks(gs, case) == {"rehandle": "gov_office"}
    clock.set(at("2027-02-10T00:00"))                       # the finality timer no longer waits
    assert gs.tick()["timers_fired"] == 0 and gs.show(case.instance_id)["legal_state"] == "decision_revoked"


# --- who sees what ---------------------------------------------------------------------------

def test_the_unit_complained_about_sees_only_its_report_and_not_who_complained(gs, clock):
    roles = load_roles(PROCESSES)
    app = create_app(gs, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    case = start(gs)
    to_investigation(gs, clock, case)
    do(gs, case, "investigate", dict(FINDINGS, correction_required=True, correction_due="2026-10-16"),
       user="gov_investigator")
    assert tasks(gs, case) == {"report_correction": "gov_respondent"}
    assert deadline(gs, case, "correction_report")["last_day"] == "2026-10-21"     # Mon 10-19 .. Wed 10-21
    with pytest.raises(NotAllowed, match="gov_respondent"):   # the office cannot report for the unit
        gs.complete_task(open_task(gs, case.instance_id, "report_correction")["task_id"], "gov_office",
                         {"corrected": True, "correction_report": "x", "reported_on": "2026-10-20"},
                         roles={"gov_office"})
    unit = sign_in(app.test_client(), "gov_respondent").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    office = sign_in(app.test_client(), "gov_office").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "13900000001" not in unit and "张先生" not in unit and "（保密）" in unit
    assert "13900000001" in office and "张先生" in office
    assert roles["gov_office"]["sees_identity"] is True and not roles["gov_respondent"].get("sees_identity")


def test_a_ruling_is_recorded_only_by_the_office_with_its_form_filled_in(gs, clock):
    case = start(gs)
    served(gs, clock, case)
    clock.set(at("2026-12-20T09:00"))
    before = events(gs, case)
    with pytest.raises(InvalidInput) as err:
        gs.send_message(case.instance_id, "outside_ruling", {"ruling_body": "", "ruling_received_at": "昨天"},
                        "gov_office", roles={"gov_office"})
    assert zh(err) == {"ruling_outcome": ["「决定内容」必填"], "ruling_body": ["「作出决定的机构」不能为空"],
                       "ruling_received_at": ["「收到决定的时间」应为日期和时间，例如 2026-05-06 17:00，现为 昨天"]}
    ruling = {"ruling_body": "县人民法院", "ruling_received_at": "2026-12-19T15:00:00+08:00", "ruling_outcome": "维持"}
    with pytest.raises(NotAllowed, match="gov_office"):      # the unit complained about cannot record it
        gs.send_message(case.instance_id, "outside_ruling", ruling, "gov_respondent", roles={"gov_respondent"})
    assert events(gs, case) == before and tasks(gs, case) == {}
    gs.send_message(case.instance_id, "outside_ruling", ruling, "gov_office", roles={"gov_office"})
    assert data(gs, case)["ruling_body"] == "县人民法院"      # the message's fields join the case data
    assert tasks(gs, case) == {"record_ruling": "gov_office"}
