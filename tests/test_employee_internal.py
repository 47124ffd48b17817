"""employee_internal (a company's internal employee complaints, 004:252-256; 001:41-44) through the
service layer with a controlled clock: what the scenario files in processes/tests/employee_internal
cannot say — form errors in Chinese with nothing stored, the legal states, the fifteen days counted
on real holidays, one supervision notice however late the case reaches the superior, and who sees
the complainant. See docs/processes/employee_internal.md."""

from __future__ import annotations

import json
import re

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput, NotAllowed
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, case_limits, complete_open, open_task, open_task_roles
from webapp import sign_in

PROCESS = "employee_internal"
INTAKE = json.loads((PROCESSES / "forms" / PROCESS / "intake.json").read_text(encoding="utf-8"))["examples"][0]
INVESTIGATED = {"findings": "考勤记录属实", "substantiated": "yes", "department_opinion": "补发加班费"}
RULED = {"ruling": "补发加班费", "ruling_outcome": "upheld"}
MEDIATED = {"leader_details": "直属领导确认", "mediation_result": "当面道歉"}


@pytest.fixture
def us(service, clock):
    service.deploy([PROCESSES / f"{PROCESS}.bpmn"])
    clock.set(parse_instant("2026-09-21T09:00:00+08:00"))     # Monday
    return service


def start(us, clock, moment=None, **overrides):
    if moment:
        clock.set(parse_instant(moment))
    return us.start(PROCESS, dict(INTAKE, **overrides), "hr_admin")


def at(clock, moment):
    clock.set(parse_instant(moment))


# --- registration (004:256 第五条、第六条、第七条) ----------------------------------------------

def test_the_intake_forms_example_starts_a_case_that_hr_resources_investigates(us, clock, notifier):
    case = start(us, clock)
    assert case.case_number == "YG-2026-000001"
    assert open_task_roles(us, case) == {"investigate_hr": "hr_resources"}      # not economic: 人力资源部
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == INTAKE["contact"]
    assert "YG-2026-000001" in ack["message"] and "迅捷、保密、客观" in ack["message"]
    assert us.replay(case.instance_id).consistent is True


def test_an_economic_matter_goes_to_finance_audit(us, clock):
    case = start(us, clock, economic=True)
    assert open_task_roles(us, case) == {"investigate_finance": "finance_audit"}


def test_a_real_name_complaint_without_who_and_how_is_refused_in_chinese_and_nothing_is_stored(us, clock, notifier):
    data = {k: v for k, v in INTAKE.items() if k not in ("complainant_id", "contact", "handling")}
    with pytest.raises(InvalidInput) as err:
        us.start(PROCESS, dict(data, complaint_class="gossip"), "hr_admin")
    zh = err.value.field_texts("zh")
    assert {"complainant_id", "contact", "handling", "complaint_class"} <= set(zh), zh
    assert all(re.search(r"[\u4e00-\u9fff]", text) for texts in zh.values() for text in texts), zh
    assert us.list_cases() == [] and notifier.sent == []


def test_an_employee_id_that_is_no_one_in_the_organisation_is_refused_and_nothing_is_stored(us, clock, notifier):
    with pytest.raises(InvalidInput) as err:
        us.start(PROCESS, dict(INTAKE, complainant_id="e099", respondent_id="e098"), "hr_admin")
    zh = err.value.field_texts("zh")
    assert {"complainant_id", "respondent_id"} <= set(zh), zh
    assert any("e099" in text for text in zh["complainant_id"]), zh
    assert us.list_cases() == [] and notifier.sent == []


def test_an_anonymous_complaint_is_recorded_as_not_accepted_and_closed(us, clock, notifier):
    anonymous = {k: v for k, v in INTAKE.items() if k not in ("complainant_id", "complainant", "contact", "handling")}
    case = us.start(PROCESS, dict(anonymous, anonymous=True), "hr_admin")
    shown = us.show(case.instance_id)
    assert shown["legal_state"] == "anonymous_not_accepted" and shown["status"] == "completed"
    assert open_task_roles(us, case) == {} and shown["deadlines"] == [] and notifier.sent == []
    names = json.loads((PROCESSES / "legal_states.json").read_text(encoding="utf-8"))
    assert names["anonymous_not_accepted"]["zh"] == "匿名投诉不予受理"


def test_a_ruling_without_its_conclusion_is_refused_and_nothing_moves(us, clock):
    case = start(us, clock)
    complete_open(us, case, "investigate_hr", INVESTIGATED, "hr_resources")
    before = us.show(case.instance_id)
    with pytest.raises(InvalidInput) as err:
        complete_open(us, case, "rule", {"ruling": "待定", "ruling_outcome": "maybe"}, "sales_director")
    assert "ruling_outcome" in err.value.field_texts("zh")
    after = us.show(case.instance_id)
    assert after["row_version"] == before["row_version"] and case_limits(us, case)["ruling"]["status"] == "open"
    assert open_task_roles(us, case) == {"rule": "skip_level_superior"}


# --- the unit's head investigates, the superior two levels up rules (第七条, 第八条第2项) -------------

def assignee(us, case, task):
    return open_task(us, case.instance_id, task)["assignee"]


@pytest.mark.parametrize("complainant, economic, investigator, superior", [
    ("e020", False, "hr_resources", "sales_director"),    # 张员工 → 陈经理 (e011) → 刘总监 (e010)
    ("e021", True, "finance_audit", "sales_director"),    # 李员工, the same line
    ("e011", False, "hr_resources", "general_manager"),   # 陈经理 → 刘总监 → 王总经理 (e001)
    ("e010", False, "hr_resources", None),                # 刘总监 → 王总经理 → no one: the role's task
])
def test_each_task_goes_to_the_one_person_the_organisation_names(us, clock, complainant, economic, investigator, superior):
    case = start(us, clock, complainant_id=complainant, economic=economic)
    task = "investigate_finance" if economic else "investigate_hr"
    assert assignee(us, case, task) == investigator
    complete_open(us, case, task, INVESTIGATED, investigator)
    assert assignee(us, case, "rule") == superior
    (given,) = [e["payload"] for e in us.history(case.instance_id)
                if e["kind"] == "task_assigned" and e["payload"]["task"] == "rule"]
    if superior is None:                                  # the log says why, in Chinese
        assert given["reason"] == "未能指派给隔级上级：刘总监（e010）的隔级上级不存在"


def test_only_the_superior_two_levels_up_sees_and_may_give_the_ruling(us, clock):
    case = start(us, clock)
    complete_open(us, case, "investigate_hr", INVESTIGATED, "hr_resources")
    rule = open_task(us, case.instance_id, "rule")["task_id"]
    superiors = {"skip_level_superior"}
    assert rule in {t["task_id"] for t in us.list_tasks(roles=superiors, user="sales_director")}
    assert rule not in {t["task_id"] for t in us.list_tasks(roles=superiors, user="sales_manager")}   # the direct leader
    before = us.show(case.instance_id)["row_version"]
    with pytest.raises(NotAllowed) as err:
        us.complete_task(rule, "sales_manager", RULED, roles=superiors)
    assert "sales_director" in str(err.value) or "刘总监" in str(err.value)
    assert us.show(case.instance_id)["row_version"] == before
    us.complete_task(rule, "sales_director", RULED, roles=superiors)
    assert open_task_roles(us, case) == {"feedback": "hr_admin"}


# --- legal states: the complainant who accepts must comply (第八条第2项、第3项) --------------------

@pytest.mark.parametrize("accepts, state", [("yes", "ruling_binding"), ("no", "ruling_not_accepted")])
def test_whether_the_complainant_accepts_the_ruling_is_the_cases_legal_state(us, clock, accepts, state):
    case = start(us, clock)
    complete_open(us, case, "investigate_hr", INVESTIGATED, "hr_resources")
    complete_open(us, case, "rule", RULED, "sales_director")
    assert open_task_roles(us, case) == {"feedback": "hr_admin"}
    complete_open(us, case, "feedback", {"feedback_way": "interview", "feedback_note": "已告知", "complainant_accepts": accepts},
       "hr_admin")
    shown = us.show(case.instance_id)
    assert shown["legal_state"] == state and shown["status"] == "completed"


def test_an_accepted_mediation_binds_and_a_refused_one_goes_to_the_superior(us, clock):
    agreed = start(us, clock, handling="mediation")
    assert open_task_roles(us, agreed) == {"mediate": "hr_admin"}
    complete_open(us, agreed, "mediate", dict(MEDIATED, mediation_outcome="accepted"), "hr_admin")
    assert us.show(agreed.instance_id)["legal_state"] == "mediation_agreed"
    assert us.show(agreed.instance_id)["status"] == "completed"
    refused = start(us, clock, handling="mediation")
    complete_open(us, refused, "mediate", dict(MEDIATED, mediation_outcome="not_accepted"), "hr_admin")
    assert us.show(refused.instance_id)["legal_state"] is None
    assert open_task_roles(us, refused) == {"investigate_hr": "hr_resources"}
    assert case_limits(us, refused)["mediation"]["status"] == "met" and case_limits(us, refused)["ruling"]["status"] == "open"


def test_an_untrue_complaint_is_reported_for_the_complainants_penalty(us, clock, notifier):
    case = start(us, clock)
    complete_open(us, case, "investigate_hr", dict(INVESTIGATED, substantiated="no"), "hr_resources")
    complete_open(us, case, "rule", {"ruling": "投诉人捏造事实", "ruling_outcome": "untrue"}, "sales_director")
    (penalty,) = [n for n in notifier.sent if n["kind"] == "staff"]
    assert penalty["to"] == "role:hr_resources" and "予以处罚" in penalty["message"]      # 第四条


# --- fifteen days (十五日): calendar days, the last day rolled to a working day --------------------

@pytest.mark.parametrize("received, last_day, provisional", [
    ("2026-09-23T10:00:00+08:00", "2026-10-08", False),   # the fifteenth day is the first working day after National Day
    ("2026-09-20T10:00:00+08:00", "2026-10-08", False),   # a make-up Sunday; 10-05 in National Day rolls to 10-08
    ("2026-04-19T10:00:00+08:00", "2026-05-06", False),   # 05-04 in Labour Day (05-01..05) rolls to 05-06
    ("2026-02-01T10:00:00+08:00", "2026-02-24", False),   # 02-16 Spring Festival eve; 02-16..23 off
    ("2027-01-22T09:00:00+08:00", "2027-02-09", True),    # 02-06 in Spring Festival 2027 (provisional calendar)
])
@pytest.mark.parametrize("handling, limit", [("ruling", "ruling"), ("mediation", "mediation")])
def test_fifteen_days_end_on_a_working_day(us, clock, received, last_day, provisional, handling, limit):
    case = start(us, clock, received, handling=handling)
    record = case_limits(us, case)[limit]
    assert (record["unit"], record["amount"]) == ("days", 15)
    assert record["last_day"] == last_day and record["provisional"] is provisional


def test_a_late_ruling_is_told_to_hr_admin_once_however_late_the_superior_receives_it(us, clock, notifier):
    case = start(us, clock, "2026-09-20T10:00:00+08:00")
    at(clock, "2026-10-08T23:59:00+08:00")
    us.tick()
    assert [n for n in notifier.sent if n["kind"] == "staff"] == []
    at(clock, "2026-10-09T00:00:00+08:00")
    us.tick()
    (late,) = [n for n in notifier.sent if n["kind"] == "staff"]
    assert late["to"] == "role:hr_admin" and "十五日内未做出裁决" in late["message"] and "2026-10-08" in late["message"]
    assert case_limits(us, case)["ruling"]["status"] == "breached"
    at(clock, "2026-10-12T10:00:00+08:00")
    complete_open(us, case, "investigate_hr", INVESTIGATED, "hr_resources")     # reaches the superior after the limit
    at(clock, "2026-10-13T10:00:00+08:00")
    us.tick()
    assert len([n for n in notifier.sent if n["kind"] == "staff"]) == 1
    assert open_task_roles(us, case) == {"rule": "skip_level_superior"}


def test_a_mediation_not_made_in_fifteen_days_goes_to_a_ruling_counted_from_then(us, clock, notifier):
    case = start(us, clock, "2026-04-19T10:00:00+08:00", handling="mediation")
    at(clock, "2026-05-06T23:59:00+08:00")
    us.tick()
    assert open_task_roles(us, case) == {"mediate": "hr_admin"}
    at(clock, "2026-05-07T00:00:00+08:00")
    us.tick()
    assert open_task_roles(us, case) == {"investigate_hr": "hr_resources"}
    told = [n for n in notifier.sent if n["kind"] == "complainant"]
    assert len(told) == 1 and told[0]["to"] == INTAKE["contact"] and "未能在十五日内做出调解" in told[0]["message"]
    record = case_limits(us, case)
    assert record["mediation"]["status"] == "breached" and record["ruling"]["last_day"] == "2026-05-22"


# --- who sees the complainant (第八条第1项: 保密) --------------------------------------------------

def test_only_hr_admin_sees_who_complained(us, clock):
    roles = load_roles(PROCESSES)
    assert roles["hr_admin"]["sees_identity"] is True
    for role in ("finance_audit", "hr_resources", "skip_level_superior"):
        assert not roles[role].get("sees_identity"), role
    app = create_app(us, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    case = start(us, clock)
    registrar = sign_in(app.test_client(), "hr_admin").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "张员工" in registrar and INTAKE["contact"] in registrar
    investigate = open_task(us, case.instance_id, "investigate_hr")["task_id"]
    investigator = sign_in(app.test_client(), "hr_resources").get(f"/tasks/{investigate}").get_data(as_text=True)
    assert "YG-2026-000001" in investigator and "加班费" in investigator
    assert "张员工" not in investigator and INTAKE["contact"] not in investigator


def test_the_person_complained_about_never_sees_who_complained(us, clock):
    """A complaint about the head of 人事行政部 (e002, login hr_admin): the role sees identities, that
    person does not; 人力资源部, who investigates, does not either."""
    roles = load_roles(PROCESSES)
    app = create_app(us, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    about_hr_head = start(us, clock, respondent_id="e002")
    page = sign_in(app.test_client(), "hr_admin").get(f"/cases/{about_hr_head.instance_id}").get_data(as_text=True)
    assert "YG-2026-000001" in page and "加班费" in page
    assert "张员工" not in page and INTAKE["contact"] not in page
    about_someone_else = start(us, clock, respondent_id="e011")
    page = sign_in(app.test_client(), "hr_admin").get(f"/cases/{about_someone_else.instance_id}").get_data(as_text=True)
    assert "张员工" in page and INTAKE["contact"] in page
