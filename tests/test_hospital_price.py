"""hospital_price (hospital price / fee objections and accountability, seed 002:7-67): what the
scenario files cannot say — the Chinese form errors with nothing stored, the legal states, the
"at once" (立即) limit on real holidays, and who sees the patient's identity. Through the real
service with a FixedClock. Paths and coverage: processes/tests/hospital_price/*.yaml."""

from __future__ import annotations

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import Conflict, InvalidInput
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from webapp import sign_in

INTAKE = {
    "channel": "price_office",
    "patient_name": "张先生",
    "contact": "13812345678",
    "anonymous": False,
    "visit_type": "inpatient",
    "visit_number": "ZY20260915",
    "charging_department_name": "骨科病区",
    "disputed_items": "一次性换药包",
    "disputed_amount": "36.50",
    "content": "住院清单中一次性换药包每天收两次，实际每天只换一次药",
}
FOUND = {"overcharge_found": True, "overcharged_amount": "36.50", "violation_item": "beyond_orders",
         "violation_cause": "department", "verification_result": "换药包重复收费5次，多收36.50元"}
REFUND = {"correction": "冲销重复收费", "refunded_amount": "36.50", "fare_compensation": "12.00",
          "refund_way": "original_route"}
PENALTY = {"responsible_person": "记账护士", "circumstances": "moderate", "penalty": "performance_pay",
           "performance_pay_months": 2, "penalty_reason": "多次重复录入", "linked_to_appraisal": True}


@pytest.fixture
def hp(service):
    service.deploy([PROCESSES / "hospital_price.bpmn"])
    return service


def at(text):
    return parse_instant(text)


def start(hp, clock, when="2026-09-30T09:00", **overrides):
    clock.set(at(when))
    return hp.start("hospital_price", dict(INTAKE, **overrides), "price_wu")


def do(hp, case, task, data, user="staff"):
    return hp.complete_task(open_task(hp, case.instance_id, task)["task_id"], user, data)


def tasks(hp, case):
    return {t["task"]: t["role"] for t in hp.list_tasks(instance_id=case.instance_id)}


def deadline(hp, case, name="correct"):
    return next(d for d in hp.show(case.instance_id)["deadlines"] if d["name"] == name)


def data(hp, case):
    return hp.replay(case.instance_id).state["data"]


def zh(err, field):
    return err.value.field_texts("zh")[field]


def verify(hp, case, **conclusion):
    do(hp, case, "department_check", {"orders_match": "no", "department_account": "医嘱每日一次"})
    do(hp, case, "conduct_check", {"conduct_opinion": "确认重复收费"})
    return do(hp, case, "verify_conclusion", dict(FOUND, **conclusion))


def to_ruling(hp, clock, case, when):
    """Not found at the hospital, the patient goes to the price department, the ruling arrives."""
    verify(hp, case, overcharge_found=False, verification_result="未多收费用")
    do(hp, case, "patient_response", {"patient_accepts": "price_bureau", "price_bureau_name": "市市场监督管理局"})
    do(hp, case, "cooperate_investigation", {"materials_provided": "医嘱和收费清单"})
    clock.set(at(when))


# --- registration ------------------------------------------------------------------------

def test_registration_numbers_the_case_tells_the_patient_and_opens_the_joint_check(hp, clock, notifier):
    case = start(hp, clock)
    assert case.case_number == "WJ-2026-000001"
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == "13812345678"
    assert "您的收费异议已登记" in ack["message"] and "WJ-2026-000001" in ack["message"]
    # 002:51: the price officer, the 行风 reception and the charging department check it together
    assert tasks(hp, case) == {"department_check": "charging_department", "conduct_check": "conduct_reception"}
    assert hp.show(case.instance_id)["deadlines"] == []      # nothing is timed before an overcharge is found


@pytest.mark.parametrize("amount, error", [
    ("36.505", "「患者认为多收的金额（元）」的格式不对：36.505"),
    ("-1", "「患者认为多收的金额（元）」的格式不对：-1"),
    ("36.50元", "「患者认为多收的金额（元）」的格式不对：36.50元"),
    ("036.50", "「患者认为多收的金额（元）」的格式不对：036.50"),
])
def test_a_yuan_amount_with_more_than_two_decimals_or_not_a_number_is_refused_in_chinese(hp, clock, amount, error):
    with pytest.raises(InvalidInput) as err:
        start(hp, clock, disputed_amount=amount)
    assert zh(err, "disputed_amount") == [error]
    assert hp.list_cases() == []


@pytest.mark.parametrize("amount", ["0", "0.07", "19.99", "36.5", "12345678.90"])
def test_yuan_amounts_with_up_to_two_decimals_are_taken_as_typed(hp, clock, amount):
    case = start(hp, clock, disputed_amount=amount)
    assert data(hp, case)["disputed_amount"] == amount


def test_a_case_from_the_price_department_must_name_it(hp, clock):
    with pytest.raises(InvalidInput) as err:
        start(hp, clock, channel="price_bureau")
    assert zh(err, "price_bureau_name") == ["「物价部门」必填"]
    assert hp.list_cases() == []


# --- verification and the correction "at once" (立即, 002:51) ------------------------------

def test_an_overcharge_found_needs_its_amount_cause_and_situation(hp, clock):
    case = start(hp, clock)
    do(hp, case, "department_check", {"orders_match": "no", "department_account": "医嘱每日一次"})
    do(hp, case, "conduct_check", {"conduct_opinion": "确认重复收费"})
    before = hp.show(case.instance_id)
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "verify_conclusion", {"overcharge_found": True, "verification_result": "多收"})
    assert zh(err, "overcharged_amount") == ["「多收金额（元）」必填"]
    assert zh(err, "violation_cause") == ["「责任归属」必填"]
    assert hp.show(case.instance_id) == before
    assert "verify_conclusion" in tasks(hp, case)


def test_overcharge_found_on_national_day_is_corrected_the_same_day_not_after_the_holiday(hp, clock):
    case = start(hp, clock, when="2026-10-02T09:00")
    clock.set(at("2026-10-02T10:00"))
    verify(hp, case)
    assert hp.show(case.instance_id)["legal_state"] == "overcharge_confirmed"
    limit = deadline(hp, case)
    # 立即: the day it is found, holidays included (not rolled to the first working day, 10-08)
    assert limit["last_day"] == "2026-10-02" and at(limit["due"]) == at("2026-10-03T00:00")
    assert limit["status"] == "open" and limit["provisional"] is False
    clock.set(at("2026-10-02T23:59"))
    assert hp.tick()["timers_fired"] == 0
    clock.set(at("2026-10-03T00:00"))
    assert hp.tick()["timers_fired"] == 1
    assert tasks(hp, case) == {"correct_refund": "charging_department", "supervise_correct": "price_officer"}
    assert deadline(hp, case)["status"] == "breached"


def test_a_refund_short_of_the_overcharge_reopens_the_correction_compared_in_fen(hp, clock, notifier):
    case = start(hp, clock)
    verify(hp, case, overcharged_amount="0.30")
    do(hp, case, "correct_refund", dict(REFUND, refunded_amount="0.29"))
    assert tasks(hp, case) == {"correct_refund": "charging_department"}
    assert deadline(hp, case)["status"] == "open"
    assert not [m for m in notifier.sent if "已退还" in m["message"]]
    do(hp, case, "correct_refund", dict(REFUND, refunded_amount="0.3"))        # 0.30 in full
    assert tasks(hp, case) == {"accountability": "price_leading_group"}
    assert deadline(hp, case)["status"] == "met"
    (told,) = [m for m in notifier.sent if "已退还" in m["message"]]
    assert "已退还多收费用0.3元" in told["message"] and "补偿往返交通费12.00元" in told["message"]


def test_a_bad_refund_amount_is_refused_in_chinese_and_changes_nothing(hp, clock):
    case = start(hp, clock)
    verify(hp, case)
    before = hp.show(case.instance_id)
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "correct_refund", dict(REFUND, refunded_amount="36.5.0", fare_compensation=12))
    assert zh(err, "refunded_amount") == ["「退还多收费用（元）」的格式不对：36.5.0"]
    assert zh(err, "fare_compensation") == ["「补偿往返交通费（元）」应为文本"]
    assert hp.show(case.instance_id) == before
    assert "refunded_amount" not in data(hp, case)


@pytest.mark.parametrize("cause, unit, cost", [
    ("department", "病区或相关科室", "48.50"),
    ("pharmacy", "药剂科", None),
    ("computer_room", "电脑中心机房", None),
    ("price_staff", "物价管理人员（物价员、兼职物价员）", None),
])
def test_only_a_ward_or_department_carries_the_refund_and_fare_in_its_costs(hp, clock, cause, unit, cost):
    case = start(hp, clock)
    verify(hp, case, violation_cause=cause)
    do(hp, case, "correct_refund", REFUND)
    values = data(hp, case)
    assert values["responsible_unit"] == unit                                 # 002:57-63
    assert values.get("department_cost") == cost                               # 002:63: 36.50 + 12.00


# --- penalties (002:67) --------------------------------------------------------------------

def test_performance_pay_is_deducted_for_one_to_three_months_only(hp, clock):
    case = start(hp, clock)
    verify(hp, case)
    do(hp, case, "correct_refund", REFUND)
    before = hp.show(case.instance_id)
    for months, error in ((4, "「扣除绩效工资月数」不能大于 3，现为 4"), (0, "「扣除绩效工资月数」不能小于 1，现为 0")):
        with pytest.raises(InvalidInput) as err:
            do(hp, case, "accountability", dict(PENALTY, performance_pay_months=months))
        assert zh(err, "performance_pay_months") == [error]
    without = {k: v for k, v in PENALTY.items() if k != "performance_pay_months"}
    with pytest.raises(InvalidInput) as err:
        do(hp, case, "accountability", without)
    assert zh(err, "performance_pay_months") == ["「扣除绩效工资月数」必填"]
    assert hp.show(case.instance_id) == before
    do(hp, case, "accountability", dict(without, penalty="dismissal"))        # other penalties need no months
    do(hp, case, "archive_record", {"summary": "已退费，责任人解聘", "reported_to_leader": True})
    assert hp.show(case.instance_id)["status"] == "completed"
    assert data(hp, case)["penalty"] == "dismissal"
    assert deadline(hp, case)["status"] == "met"


# --- the price department's ruling (002:53) and withdrawal ---------------------------------

def test_the_ruling_limit_counts_from_the_day_the_ruling_was_received(hp, clock):
    case = start(hp, clock, when="2026-09-28T09:00")
    to_ruling(hp, clock, case, "2026-09-30T17:00")
    hp.send_message(case.instance_id, "outside_ruling", {
        "ruling_body": "市市场监督管理局", "ruling_received_at": "2026-09-30T17:00:00+08:00",
        "ruling_outcome": "多收36.50元，责令退还"}, "price_wu")
    assert tasks(hp, case) == {"record_ruling": "price_officer"}
    clock.set(at("2026-10-08T09:00"))                  # typed in after National Day
    do(hp, case, "record_ruling", {k: v for k, v in FOUND.items() if k != "verification_result"})
    shown = hp.show(case.instance_id)
    assert shown["legal_state"] == "price_ruling_overcharge"
    limit = deadline(hp, case)
    assert limit["last_day"] == "2026-09-30" and limit["status"] == "breached"
    assert tasks(hp, case) == {"correct_refund": "charging_department", "supervise_correct": "price_officer"}


def test_a_ruling_of_no_overcharge_closes_the_case_in_that_legal_state(hp, clock):
    case = start(hp, clock)
    to_ruling(hp, clock, case, "2026-10-09T10:00")
    hp.send_message(case.instance_id, "outside_ruling", {
        "ruling_body": "市市场监督管理局", "ruling_received_at": "2026-10-09T10:00:00+08:00",
        "ruling_outcome": "收费符合规定"}, "price_wu")
    do(hp, case, "record_ruling", {"overcharge_found": False})
    do(hp, case, "archive_record", {"summary": "符合规定", "reported_to_leader": False})
    shown = hp.show(case.instance_id)
    assert shown["status"] == "completed" and shown["legal_state"] == "price_ruling_no_overcharge"
    assert shown["deadlines"] == []
    assert hp.replay(case.instance_id).consistent is True


def test_withdrawal_is_taken_only_while_the_ruling_is_awaited(hp, clock):
    case = start(hp, clock, channel="price_bureau", price_bureau_name="区市场监督管理局")
    withdrawal = {"withdrawn_at": "2026-09-30T09:00", "withdrawal_way": "phone", "withdrawal_reason": "已弄清"}
    assert tasks(hp, case) == {"cooperate_investigation": "charging_department"}
    with pytest.raises(Conflict, match="not waiting for message 'withdrawal'"):
        hp.send_message(case.instance_id, "withdrawal", withdrawal, "price_wu")
    assert hp.show(case.instance_id).get("legal_state") is None
    do(hp, case, "cooperate_investigation", {"materials_provided": "检验申请单"})
    hp.send_message(case.instance_id, "withdrawal", withdrawal, "price_wu")
    assert hp.show(case.instance_id)["legal_state"] == "withdrawn"
    assert data(hp, case)["withdrawal_way"] == "phone"
    assert tasks(hp, case) == {"archive_record": "price_officer"}


def test_a_patient_who_accepts_the_result_is_settled(hp, clock):
    case = start(hp, clock)
    verify(hp, case, overcharge_found=False, verification_result="未多收费用")
    do(hp, case, "patient_response", {"patient_accepts": "accepted"})
    assert hp.show(case.instance_id)["legal_state"] == "settled"
    assert tasks(hp, case) == {"archive_record": "price_officer"}


# --- who sees the patient (002:23: 为反映人保密) ------------------------------------------

def inbox(hp):
    roles = load_roles(PROCESSES)
    return create_app(hp, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)


def test_the_charging_department_never_sees_who_objected(hp, clock):
    roles = load_roles(PROCESSES)
    assert roles["price_officer"]["sees_identity"] and roles["conduct_reception"]["sees_identity"]
    assert not roles["charging_department"].get("sees_identity")
    app = inbox(hp)
    case = start(hp, clock)
    for login in ("price_officer", "conduct_reception"):
        page = sign_in(app.test_client(), login).get(f"/cases/{case.instance_id}").get_data(as_text=True)
        assert "张先生" in page and "13812345678" in page, login
    task = open_task(hp, case.instance_id, "department_check")["task_id"]
    for path in (f"/tasks/{task}", f"/cases/{case.instance_id}"):
        page = sign_in(app.test_client(), "charging_department").get(path).get_data(as_text=True)
        assert "张先生" not in page and "13812345678" not in page and "（保密）" in page, path


def test_a_patient_asking_for_confidentiality_is_seen_only_by_the_price_officer(hp, clock):
    app = inbox(hp)
    case = start(hp, clock, anonymous=True)
    officer = sign_in(app.test_client(), "price_officer").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "张先生" in officer
    for login in ("conduct_reception", "charging_department"):
        page = sign_in(app.test_client(), login).get(f"/cases/{case.instance_id}").get_data(as_text=True)
        assert "张先生" not in page and "（保密）" in page, login
