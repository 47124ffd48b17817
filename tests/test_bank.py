"""bank (银行客户投诉处理): what the scenarios in processes/tests/bank cannot say, through the
real service with a FixedClock. Seeds: 001:126-145, 184-201; 004:290-294 (see
docs/processes/bank.md)."""

from __future__ import annotations

import json

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput, NotAllowed
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from webapp import sign_in

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

# the intake form's example: a complaint at the counter (service, general)
INTAKE = json.loads((PROCESSES / "forms" / "bank" / "intake.json").read_text(encoding="utf-8"))["examples"][0]
HANDLED = {"handled_by": "lobby_manager", "solution": "增开窗口", "reply": "已增开窗口并致歉"}


def at(moment):
    return parse_instant(moment + ":00+08:00")


@pytest.fixture
def bank(service, clock):
    clock.set(at("2026-09-29T10:00"))          # the Tuesday before National Day 2026
    service.deploy([PROCESSES / "bank.bpmn"])
    return service


def start(bank, **overrides):
    return bank.start("bank", dict(INTAKE, **overrides), "bank_first_desk")


def do(bank, case, task, data, user):
    return bank.complete_task(open_task(bank, case.instance_id, task)["task_id"], user, data)


def tasks(bank, case):
    return {t["task"]: t["role"] for t in bank.list_tasks(instance_id=case.instance_id)}


def handling(bank, case):
    return next(d for d in bank.show(case.instance_id)["deadlines"] if d["name"] == "handling")


def events(bank, case):
    return len(bank.history(case.instance_id))


def zh(err):
    return err.value.field_texts("zh")


# --- registration by the first asker (001:186-187) ----------------------------------------------

def test_the_example_registers_a_case_and_tells_the_customer_the_expected_time(bank, notifier):
    case = start(bank)
    assert case.case_number == "YH-2026-000001"
    assert tasks(bank, case) == {"verify": "bank_first_desk"}
    ack = [m["message"] for m in notifier.sent if m["kind"] == "acknowledgement"]
    assert ack == ["您的投诉已由首问人员受理，编号 YH-2026-000001。处理投诉：最迟于2026年10月12日。"]   # 预计处理时间 (001:191)


def test_a_registration_with_mistakes_is_refused_in_chinese_and_nothing_is_stored(bank):
    bad = {k: v for k, v in INTAKE.items() if k != "severity"}
    with pytest.raises(InvalidInput) as err:
        bank.start("bank", dict(bad, channel="wechat", contact=""), "bank_first_desk")
    texts = zh(err)
    assert texts["severity"] == ["「严重程度」必填"]
    assert texts["contact"] == ["「联系方式」不能为空"]
    assert "投诉渠道" in texts["channel"][0]
    assert bank.list_cases() == []


# --- the limit from the decision table (001:134), across National Day 2026 ----------------------

@pytest.mark.parametrize("nature, severity, workdays, last_day", [
    ("service", "general", 5, "2026-10-12"),    # 09-30, then 10-08, 10-09, Sat 10-10 (worked), 10-12
    ("business", "general", 10, "2026-10-19"),
    ("service", "serious", 3, "2026-10-09"),
    ("business", "serious", 5, "2026-10-12"),
    ("business", "major", 2, "2026-10-08"),     # 09-30 and 10-08: the seven days off do not count
])
def test_the_handling_limit_follows_nature_and_severity_over_national_day(bank, nature, severity, workdays, last_day):
    case = start(bank, complaint_nature=nature, severity=severity)
    limit = handling(bank, case)
    assert (limit["unit"], limit["amount"], limit["last_day"]) == ("workdays", workdays, last_day)
    assert limit["status"] == "open" and "001:134" in limit["seed"]


def test_the_limit_passes_at_the_first_minute_after_its_last_day(bank, clock):
    case = start(bank)
    do(bank, case, "verify", {"content_true": "yes", "verification_note": "属实"}, "bank_first_desk")
    clock.set(at("2026-10-12T23:59"))
    assert bank.tick()["timers_fired"] == 0 and tasks(bank, case) == {"handle": "bank_branch"}
    clock.set(at("2026-10-13T00:00"))
    assert bank.tick()["timers_fired"] == 1
    assert tasks(bank, case) == {"explain_delay": "bank_call_centre"}
    assert handling(bank, case)["status"] == "breached"


# --- the call centre's ticket (004:294) --------------------------------------------------------

def test_a_ticket_sent_back_without_reasons_is_refused_and_changes_nothing(bank):
    case = start(bank, channel="call_centre")
    before = events(bank, case)
    with pytest.raises(InvalidInput) as err:
        do(bank, case, "check_ticket", {"in_scope": "no"}, "bank_branch")
    assert zh(err) == {"return_reason": ["「驳回理由」必填"]}
    assert events(bank, case) == before and tasks(bank, case) == {"check_ticket": "bank_branch"}


def test_a_return_the_centre_finds_reasonable_closes_the_case_as_returned(bank, clock):
    case = start(bank, channel="call_centre")
    do(bank, case, "check_ticket", {"in_scope": "no", "return_reason": "非本行业务"}, "bank_branch")
    with pytest.raises(NotAllowed, match="bank_call_centre"):     # the branch cannot judge its own reasons
        bank.complete_task(open_task(bank, case.instance_id, "judge_return")["task_id"], "bank_branch",
                           {"reason_reasonable": "yes", "judgement_note": "x"}, roles={"bank_branch"})
    clock.set(at("2026-09-30T09:00"))
    do(bank, case, "judge_return", {"reason_reasonable": "yes", "judgement_note": "理由合理"}, "bank_call_centre")
    shown = bank.show(case.instance_id)
    assert shown["legal_state"] == "ticket_returned" and shown["status"] == "completed"
    assert handling(bank, case)["status"] == "met"
    names = json.loads((PROCESSES / "legal_states.json").read_text(encoding="utf-8"))
    assert names["ticket_returned"]["zh"] == "事件单退回（非本行业务范围）"


def test_a_return_the_centre_rejects_goes_back_to_the_branch_without_a_state(bank):
    case = start(bank, channel="call_centre")
    do(bank, case, "check_ticket", {"in_scope": "no", "return_reason": "非本行业务"}, "bank_branch")
    do(bank, case, "judge_return", {"reason_reasonable": "no", "judgement_note": "本行卡片，应由本行处理"},
       "bank_call_centre")
    assert tasks(bank, case) == {"handle": "bank_branch"}
    assert bank.show(case.instance_id)["legal_state"] is None


# --- who sees what (001:194) -------------------------------------------------------------------

def test_the_superior_bank_supervises_without_seeing_who_complained(bank, clock):
    roles = load_roles(PROCESSES)
    app = create_app(bank, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    case = start(bank)
    do(bank, case, "verify", {"content_true": "yes", "verification_note": "属实"}, "bank_first_desk")
    do(bank, case, "handle", HANDLED, "bank_branch")
    do(bank, case, "revisit", {"satisfied": "no", "revisit_note": "仍不满意"}, "bank_second_tier")
    assert tasks(bank, case) == {"supervise": "bank_superior_retail"}
    superior = sign_in(app.test_client(), "bank_superior_retail").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    revisit = sign_in(app.test_client(), "bank_second_tier").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "13900000014" not in superior and "赵先生" not in superior and "（保密）" in superior
    assert "13900000014" in revisit and "赵先生" in revisit     # the revisit calls the customer
