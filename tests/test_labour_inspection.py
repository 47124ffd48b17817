"""labour_inspection (劳动保障监察投诉举报, seed 004:320-324) through the service layer with a
controlled clock: what the scenario files cannot say — form errors in Chinese with nothing
stored, the report case a split opens, legal states, the calendar arithmetic of the 2-year bar
and of the limits on real holidays, and who sees what. Dates are counted by hand in the
comments and confirmed with `complaintflow calendar deadline`."""

from __future__ import annotations

import json

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import Conflict, InvalidInput
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from webapp import sign_in

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

PROCESS = "labour_inspection"
DESK, CLERK, CHIEF, LEAD = "labour_first_inspector", "labour_archivist", "labour_chief", "labour_lead_inspector"

# the intake form's own example: a group of six workers with two representatives, received
# Mon 2026-09-28, two days before National Day
INTAKE = json.loads((PROCESSES / "forms" / PROCESS / "intake.json").read_text(encoding="utf-8"))["examples"][0]


@pytest.fixture
def lj(service):
    service.deploy([PROCESSES / f"{PROCESS}.bpmn"])
    return service


def at(text):
    return parse_instant(text)


def start(lj, clock, **overrides):
    data = {k: v for k, v in dict(INTAKE, **overrides).items() if v is not None}
    clock.set(at(data["received_at"]))
    return lj.start(PROCESS, data, DESK)


def do(lj, case, task, data, user=DESK):
    return lj.complete_task(open_task(lj, case.instance_id, task)["task_id"], user, data)


def tasks(lj, instance_id):
    return {t["task"]: t["role"] for t in lj.list_tasks(instance_id=instance_id)}


def deadline(lj, case, name):
    return next(d for d in lj.show(case.instance_id)["deadlines"] if d["name"] == name)


def state(lj, case):
    return lj.show(case.instance_id)["legal_state"]


def sent(notifier, kind):
    return [m for m in notifier.sent if m["kind"] == kind]


def to_assignment(lj, clock, case, when="2026-09-30T15:00"):
    clock.set(at(when))
    do(lj, case, "review_complaint", {"review_result": "complete"})
    do(lj, case, "register_file", {"file_number": "劳监登〔2026〕118号", "materials_list": "登记表"}, user=CLERK)


def to_investigation(lj, clock, case, when="2026-09-30T15:00"):
    to_assignment(lj, clock, case, when)
    do(lj, case, "assign_decision", {"instruction": "investigate", "lead_inspector": "张监察",
                                     "assisting_inspector": "刘监察"}, user=CHIEF)


# --- registration -----------------------------------------------------------------------------

def test_the_intake_forms_example_registers_a_case_and_tells_the_limit_across_national_day(lj, clock, notifier):
    case = start(lj, clock)
    assert case.case_number == "LJ-2026-000001"
    accept = deadline(lj, case, "accept")
    # 5 working days from Mon 09-28: Tue 09-29 (1), Wed 09-30 (2), 10-01..10-07 off, Thu 10-08 (3),
    # Fri 10-09 (4), the make-up Saturday 10-10 (5)
    assert (accept["last_day"], accept["due"]) == ("2026-10-10", "2026-10-10T16:00:00+00:00")
    assert (accept["unit"], accept["amount"], accept["status"]) == ("workdays", 5, "open")
    assert "5个工作日内依法受理" in accept["rule"]
    (ack,) = sent(notifier, "acknowledgement")
    assert ack["to"] == "13900001111"
    assert "LJ-2026-000001" in ack["message"] and "作出是否受理的决定：最迟于2026年10月10日" in ack["message"]
    assert tasks(lj, case.instance_id) == {"review_complaint": DESK}
    assert state(lj, case) is None


def test_five_or_more_complainants_must_name_representatives_said_in_chinese_and_nothing_is_stored(lj, clock):
    with pytest.raises(InvalidInput) as err:
        start(lj, clock, complainant_count=5, representatives=None)
    texts = err.value.field_texts("zh")
    assert set(texts) == {"representatives"}
    assert "「推荐的投诉代表（5人以上集体投诉）」" in texts["representatives"][0]
    assert "必填" in texts["representatives"][0]
    assert lj.list_cases() == []
    # four complainants with the same cause need no representatives (004:322: 5人以上)
    case = start(lj, clock, complainant_count=4, representatives=None)
    assert case.case_number == "LJ-2026-000001"


def test_intake_errors_name_each_field_in_chinese_and_register_nothing(lj, clock):
    with pytest.raises(InvalidInput) as err:
        start(lj, clock, employer=None, contact=None, violation_date="去年十月", channel="wechat")
    texts = err.value.field_texts("zh")
    assert set(texts) == {"employer", "contact", "violation_date", "channel"}
    assert "「被投诉（举报）用人单位」必填" in texts["employer"][0]
    assert "「联系电话或通讯地址」" in texts["contact"][0]
    assert "违法行为发生之日" in texts["violation_date"][0]
    assert "来访" in texts["channel"][0]                     # the choices are named
    # an anonymous record carries no name
    with pytest.raises(InvalidInput) as err:
        start(lj, clock, anonymous=True, contact=None, representatives=None, complainant_count=1)
    assert set(err.value.field_texts("zh")) == {"complainant"}
    assert lj.list_cases() == []


# --- the 2-year bar (004:322) -----------------------------------------------------------------

@pytest.mark.parametrize("violation, received, last_day, refused", [
    # 2024-10-01 + 24 months = 2026-10-01, National Day: rolled forward to Thu 10-08
    ("2024-10-01", "2026-10-08T16:00", "2026-10-08", False),
    ("2024-10-01", "2026-10-09T09:00", "2026-10-08", True),
    # 2024-05-01 + 24 months = 2026-05-01, Labour Day (05-01..05-05): rolled forward to Wed 05-06
    ("2024-05-01", "2026-05-06T09:00", "2026-05-06", False),
    ("2024-05-01", "2026-05-07T09:00", "2026-05-06", True),
    # an ordinary working day is not moved: 2024-06-15 + 24 months = Mon 2026-06-15
    ("2024-06-15", "2026-06-16T09:00", "2026-06-15", True),
])
def test_the_two_years_are_counted_on_the_calendar_and_refused_in_writing(lj, clock, notifier, violation, received,
                                                                          last_day, refused):
    case = start(lj, clock, violation_date=violation, received_at=received)
    facts = lj.replay(case.instance_id).state["data"]
    assert facts["two_year_bar"]["last_day"] == last_day and facts["beyond_two_years"] is refused
    if refused:
        (notice,) = sent(notifier, "refusal")
        assert f"至接到投诉之日已超过2年期限（期限末日{last_day}）" in notice["message"]
        assert state(lj, case) == "not_accepted" and deadline(lj, case, "accept")["status"] == "met"
        assert lj.show(case.instance_id)["status"] == "completed"
    else:
        assert sent(notifier, "refusal") == [] and tasks(lj, case.instance_id) == {"review_complaint": DESK}


# --- review, 补正 and the report a complaint becomes ------------------------------------------

def test_review_errors_change_nothing(lj, clock):
    case = start(lj, clock)
    with pytest.raises(InvalidInput) as err:
        do(lj, case, "review_complaint", {"review_result": "insufficient"})
    assert set(err.value.field_texts("zh")) == {"missing_materials"}
    with pytest.raises(InvalidInput) as err:
        do(lj, case, "review_complaint", {"review_result": "labour_dispute"})
    assert "「告知投诉人的说明」" in err.value.field_texts("zh")["explanation"][0]
    assert tasks(lj, case.instance_id) == {"review_complaint": DESK}
    assert deadline(lj, case, "accept")["status"] == "open" and state(lj, case) is None


def test_supplement_resumes_the_paused_limit_moved_by_the_working_days_it_waited(lj, clock, notifier):
    case = start(lj, clock)
    clock.set(at("2026-09-29T10:00"))
    do(lj, case, "review_complaint", {"review_result": "insufficient", "missing_materials": "工资欠条原件"})
    (notice,) = sent(notifier, "complainant")
    assert "《劳动保障监察举报投诉案件补充材料告知书》" in notice["message"] and "工资欠条原件" in notice["message"]
    assert deadline(lj, case, "accept")["status"] == "paused"
    clock.set(at("2026-10-11T00:00"))                        # the old due moment: nothing fires while paused
    assert lj.tick()["timers_fired"] == 0
    clock.set(at("2026-10-12T10:00"))
    lj.send_message(case.instance_id, "supplement",
                    {"supplemented_at": "2026-10-12T09:40", "supplement_materials": "工资欠条原件"}, DESK)
    # waited 09-30, 10-08, 10-09, 10-10 (make-up Saturday) and 10-12: five working days more
    accept = deadline(lj, case, "accept")
    assert (accept["status"], accept["last_day"]) == ("open", "2026-10-16")
    assert tasks(lj, case.instance_id) == {"review_complaint": DESK}
    # a second supplement finds the case not waiting for one: refused, nothing changed
    with pytest.raises(Conflict):
        lj.send_message(case.instance_id, "supplement",
                        {"supplemented_at": "2026-10-12T10:30", "supplement_materials": "补充说明"}, DESK)
    # the seed lines give no withdrawal: the message is refused there, nothing changed
    with pytest.raises(Conflict):
        lj.send_message(case.instance_id, "withdrawal",
                        {"withdrawn_at": "2026-10-12T11:00", "withdrawal_way": "phone", "withdrawal_reason": "已协商"}, DESK)
    assert deadline(lj, case, "accept")["last_day"] == "2026-10-16"
    assert tasks(lj, case.instance_id) == {"review_complaint": DESK}
    assert lj.replay(case.instance_id).consistent is True


def test_a_complainant_who_cannot_be_told_to_supplement_becomes_a_report_case(lj, clock):
    case = start(lj, clock)
    clock.set(at("2026-09-29T10:00"))
    do(lj, case, "review_complaint", {"review_result": "insufficient", "missing_materials": "工资欠条原件"})
    clock.set(at("2026-10-09T10:00"))
    do(lj, case, "await_supplement", {"supplement_outcome": "unreachable", "contact_attempts": "电话两次均为空号"})
    assert state(lj, case) == "handled_as_report" and lj.show(case.instance_id)["status"] == "completed"
    assert deadline(lj, case, "accept")["status"] == "met"
    (report,) = [c for c in lj.list_cases() if c["case_number"] == "LJ-2026-000002"]
    assert tasks(lj, report["instance_id"]) == {"decide_report": CHIEF}
    data = lj.replay(report["instance_id"]).state["data"]
    assert data["request_type"] == "report" and data["split_from"] == "LJ-2026-000001"
    assert (data["employer"], data["complainant"], data["representatives"]) == (
        INTAKE["employer"], INTAKE["complainant"], INTAKE["representatives"])
    assert lj.show(report["instance_id"])["deadlines"] == []     # no complaint limit on a report


def test_an_anonymous_complaint_is_taken_as_an_anonymous_report(lj, clock, notifier):
    case = start(lj, clock, anonymous=True, complainant=None, contact=None, representatives=None,
                 complainant_count=1)
    assert state(lj, case) == "handled_as_report" and notifier.sent == []
    (report,) = [c for c in lj.list_cases() if c["case_number"] == "LJ-2026-000002"]
    data = lj.replay(report["instance_id"]).state["data"]
    assert data["anonymous"] is True and data["reachable"] is False and data["complainant"] == ""
    clock.set(at("2026-10-08T10:00"))
    lj.complete_task(open_task(lj, report["instance_id"], "decide_report")["task_id"], CHIEF,
                     {"report_decision": "not_opened", "explanation": "无法核实"})
    assert notifier.sent == []                               # nobody to tell
    assert lj.show(report["instance_id"])["legal_state"] == "report_not_opened"


# --- the head's instruction (004:324 "5、指办意见") -------------------------------------------

@pytest.mark.parametrize("instruction, words", [
    ("transfer", "移送贵部门办理"), ("refer_superior", "提请上级劳动保障监察机构查处"),
    ("delegate_lower", "指定（委托）贵机构查处")])
def test_a_matter_handed_elsewhere_is_sent_there_told_and_closed(lj, clock, notifier, instruction, words):
    case = start(lj, clock)
    to_assignment(lj, clock, case)
    do(lj, case, "assign_decision", {"instruction": instruction, "receiving_body": "某区劳动保障监察大队"}, user=CHIEF)
    (external,) = sent(notifier, "external")
    assert external["to"] == "某区劳动保障监察大队" and external["message"].startswith(words)
    assert "您的投诉已移交某区劳动保障监察大队办理" in sent(notifier, "complainant")[0]["message"]
    assert state(lj, case) == "handed_over" and deadline(lj, case, "accept")["status"] == "met"


def test_an_instruction_without_its_inspectors_is_refused_and_changes_nothing(lj, clock):
    case = start(lj, clock)
    to_assignment(lj, clock, case)
    with pytest.raises(InvalidInput) as err:
        do(lj, case, "assign_decision", {"instruction": "investigate"}, user=CHIEF)
    assert set(err.value.field_texts("zh")) == {"lead_inspector", "assisting_inspector"}
    assert tasks(lj, case.instance_id) == {"assign_decision": CHIEF}
    assert deadline(lj, case, "accept")["status"] == "open" and state(lj, case) is None


# --- the investigation: 60 working days, at most 30 more ----------------------------------------

def test_an_extension_is_capped_at_thirty_working_days_and_refused_after_the_limit(lj, clock):
    case = start(lj, clock)
    to_investigation(lj, clock, case, when="2026-10-09T15:00")
    assert state(lj, case) == "case_opened"
    # 60 working days from Fri 10-09: 10-10 (make-up Saturday) is the first; the last is Thu 2026-12-31
    assert deadline(lj, case, "investigation")["last_day"] == "2026-12-31"
    clock.set(at("2026-12-30T10:00"))
    do(lj, case, "investigate", {"investigation_result": "extension_needed", "extension_reason": "涉及人数多"}, user=LEAD)
    with pytest.raises(InvalidInput) as err:
        do(lj, case, "approve_extension", {"approved": True, "extension_days": 31, "approval_note": "同意"}, user=CHIEF)
    assert "不能大于 30" in err.value.field_texts("zh")["extension_days"][0]
    assert deadline(lj, case, "investigation")["last_day"] == "2026-12-31"
    clock.set(at("2027-01-04T09:00"))                        # approved after the 60 working days ran out
    do(lj, case, "approve_extension", {"approved": True, "extension_days": 30, "approval_note": "同意"}, user=CHIEF)
    extension = lj.replay(case.instance_id).state["data"]["extension"]
    assert extension["granted"] is False and "after" in extension["reason"]
    assert deadline(lj, case, "investigation")["last_day"] == "2026-12-31"
    assert tasks(lj, case.instance_id) == {"investigate": LEAD, "supervise_investigation": CHIEF}


# --- who sees what -------------------------------------------------------------------------------

def test_each_role_sees_its_own_tasks_and_only_the_desk_sees_the_complainant(lj, clock):
    case = start(lj, clock)
    to_assignment(lj, clock, case)
    assert [t["task"] for t in lj.list_tasks(role=CHIEF)] == ["assign_decision"]
    assert lj.list_tasks(role=LEAD) == [] and lj.list_tasks(role=CLERK) == []
    roles = load_roles(PROCESSES)
    assert {DESK, CLERK, CHIEF, LEAD} <= set(roles) and roles[DESK]["sees_identity"] is True
    app = create_app(lj, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    desk = sign_in(app.test_client(), DESK).get(f"/cases/{case.instance_id}").get_data(as_text=True)
    chief = sign_in(app.test_client(), CHIEF).get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "13900001111" in desk and "王建国" in desk
    assert "13900001111" not in chief and "王建国" not in chief and "（保密）" in chief
