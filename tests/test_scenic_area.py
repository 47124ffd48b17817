"""scenic_area (scenic area guest complaints, 游客投诉处理制度, seed 000:340-360): what the scenario
files cannot say — the Chinese form errors with nothing stored, the legal states, the ten-minute
limit counted in clock time on real holidays (the area is open then) whatever the installation's
reception hours, and who sees the guest's identity. Through the real service with a FixedClock.
Paths and coverage: processes/tests/scenic_area/*.yaml."""

from __future__ import annotations

import pytest

from complaintflow.engine.calendar import BusinessCalendar, ReceptionHours
from complaintflow.engine.errors import InvalidInput
from complaintflow.engine.service import ComplaintService
from complaintflow.web.app import load_roles
from conftest import PROCESSES, TEST_CHAIN_KEY, open_task
from test_hospital_price import at, data, do, inbox, tasks, zh   # the same service helpers, any procedure
from webapp import sign_in

INTAKE = {
    "channel": "phone",
    "guest_name": "王女士",
    "contact": "13912345678",
    "category": "restaurant",
    "content": "园区餐厅午餐菜品与菜单图片不符，服务员态度冷淡",
}
STARTED = {"record": "客人反映菜品与图片不符", "analysis": "菜单图片未更新", "severity": "general",
           "apology_made": True}
HANDLED = {"measures": "退还餐费并更新菜单图片", "complaint_founded": "yes", "compensation": True,
           "compensation_amount": "68.00", "compensation_way": "cash"}


@pytest.fixture
def sa(service):
    service.deploy([PROCESSES / "scenic_area.bpmn"])
    return service


def start(sa, clock, when="2026-10-03T10:00", **overrides):
    clock.set(at(when))
    return sa.start("scenic_area", dict(INTAKE, **overrides), "scenic_service_center")


def limit(sa, case):
    (only,) = sa.show(case.instance_id)["deadlines"]
    assert only["name"] == "start"
    return only


def to_handling(sa, case, severity="general"):
    do(sa, case, "start_handling", dict(STARTED, severity=severity))
    if severity == "major":
        do(sa, case, "group_instruction", {"group_instruction": "立即处理"})
        do(sa, case, "gm_instruction", {"gm_instruction": "同意"})


# --- the ten minutes (000:343), clock time on holidays -------------------------------------

def test_registration_numbers_the_case_and_gives_ten_minutes_on_a_national_day_holiday(sa, clock, notifier):
    case = start(sa, clock, when="2026-10-03T10:00")          # 国庆节 10-01..10-07: the area is open
    assert case.case_number == "JQ-2026-000001"
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == "13912345678"
    assert "JQ-2026-000001" in ack["message"] and "最迟于2026年10月03日 10:10" in ack["message"]
    assert tasks(sa, case) == {"start_handling": "scenic_service_center"}
    ten = limit(sa, case)
    # ten minutes of clock time, not rolled to the first working day after the holiday (10-09)
    assert at(ten["due"]) == at("2026-10-03T10:10") and ten["status"] == "open"
    assert ten["unit"] == "minutes" and ten["amount"] == 10
    (task,) = sa.list_tasks(instance_id=case.instance_id)
    assert at(task["due"]) == at("2026-10-03T10:10")


def test_not_started_within_ten_minutes_across_midnight_on_spring_festival_is_supervised(sa, clock, notifier):
    case = start(sa, clock, when="2027-02-06T23:55")          # 除夕 2027
    clock.set(at("2027-02-07T00:04"))
    assert sa.tick()["timers_fired"] == 0
    assert tasks(sa, case) == {"start_handling": "scenic_service_center"}
    clock.set(at("2027-02-07T00:05"))
    assert sa.tick()["timers_fired"] == 1
    assert tasks(sa, case) == {"start_handling": "scenic_service_center", "supervise_start": "scenic_complaint_group"}
    ten = limit(sa, case)
    assert ten["status"] == "breached" and at(ten["breached_at"]) == at("2027-02-07T00:05")
    (told,) = [m for m in notifier.sent if m["kind"] == "staff"]
    assert told["to"] == "role:scenic_complaint_group" and "十分钟内未开始处理" in told["message"]
    clock.set(at("2027-02-07T00:06"))
    do(sa, case, "start_handling", STARTED)                   # started late: still breached, not met
    assert limit(sa, case)["status"] == "breached"
    assert "supervise_start" in tasks(sa, case)


def test_started_in_time_the_limit_is_met_and_no_timer_fires_later(sa, clock):
    case = start(sa, clock, when="2026-05-01T14:30")          # 劳动节
    clock.set(at("2026-05-01T14:39"))
    do(sa, case, "start_handling", STARTED)
    assert limit(sa, case)["status"] == "met"
    clock.set(at("2026-05-01T14:40"))
    assert sa.tick()["timers_fired"] == 0
    assert tasks(sa, case) == {"handle": "scenic_department"}


@pytest.mark.parametrize("installation_hours", ["08:00-17:00", "09:00-12:00,14:00-17:30"])
def test_a_complaint_after_office_hours_counts_from_receipt_not_the_next_opening(
        db_url, clock, registry, notifier, installation_hours):
    service = ComplaintService(db_url, clock=clock, handlers=registry, notifier=notifier,
                               calendar=BusinessCalendar(reception_hours=ReceptionHours.parse(installation_hours)),
                               chain_key=TEST_CHAIN_KEY)
    service.deploy([PROCESSES / "scenic_area.bpmn"])
    case = start(service, clock, when="2026-10-05T19:30")     # evening of a holiday: receptionHours = always
    assert at(limit(service, case)["due"]) == at("2026-10-05T19:40")


# --- forms: Chinese errors, nothing stored -------------------------------------------------

def test_an_intake_without_the_guest_or_with_an_unknown_channel_is_refused_and_nothing_stored(sa, clock):
    bad = {k: v for k, v in INTAKE.items() if k != "guest_name"}
    clock.set(at("2026-10-03T10:00"))
    with pytest.raises(InvalidInput) as err:
        sa.start("scenic_area", dict(bad, channel="fax"), "scenic_service_center")
    assert zh(err, "guest_name") == ["「游客姓名」必填"]
    assert "channel" in err.value.field_texts("zh")
    assert sa.list_cases() == []


@pytest.mark.parametrize("amount, error", [
    ("68.005", "「补偿金额（元）」的格式不对：68.005"),
    ("-5", "「补偿金额（元）」的格式不对：-5"),
    ("68元", "「补偿金额（元）」的格式不对：68元"),
    ("068.00", "「补偿金额（元）」的格式不对：068.00"),
])
def test_a_compensation_not_in_yuan_with_two_decimals_is_refused_in_chinese_and_changes_nothing(
        sa, clock, amount, error):
    case = start(sa, clock)
    to_handling(sa, case)
    before = sa.show(case.instance_id)
    with pytest.raises(InvalidInput) as err:
        do(sa, case, "handle", dict(HANDLED, compensation_amount=amount))
    assert zh(err, "compensation_amount") == [error]
    assert sa.show(case.instance_id) == before
    assert "compensation_amount" not in data(sa, case)
    assert tasks(sa, case) == {"handle": "scenic_department"}


def test_a_compensation_needs_its_amount_and_way_and_none_needs_neither(sa, clock):
    case = start(sa, clock)
    to_handling(sa, case)
    before = sa.show(case.instance_id)
    with pytest.raises(InvalidInput) as err:
        do(sa, case, "handle", {"measures": "退款", "complaint_founded": "yes", "compensation": True})
    assert zh(err, "compensation_amount") == ["「补偿金额（元）」必填"]
    assert zh(err, "compensation_way") == ["「补偿方式」必填"]
    assert sa.show(case.instance_id) == before
    do(sa, case, "handle", {"measures": "当面解释", "complaint_founded": "no", "compensation": False})
    assert tasks(sa, case) == {"feedback": "scenic_service_center"}


@pytest.mark.parametrize("amount", ["0.5", "68", "68.00", "1860.50"])
def test_compensation_amounts_are_kept_as_typed_and_told_to_the_guest(sa, clock, notifier, amount):
    case = start(sa, clock)
    to_handling(sa, case)
    do(sa, case, "handle", dict(HANDLED, compensation_amount=amount))
    assert data(sa, case)["compensation_amount"] == amount
    (told,) = [m for m in notifier.sent if m["kind"] == "complainant"]
    assert told["to"] == "13912345678" and f"补偿{amount}元" in told["message"]


# --- legal states ----------------------------------------------------------------------------

def test_a_general_complaint_without_compensation_has_no_legal_state(sa, clock):
    case = start(sa, clock)
    to_handling(sa, case)
    do(sa, case, "handle", {"measures": "当面解释", "complaint_founded": "partly", "compensation": False})
    do(sa, case, "feedback", {"feedback_way": "phone", "guest_satisfied": "yes"})
    do(sa, case, "thank_department", {"thanks_way": "phone"})
    do(sa, case, "summary", {"cause": "service_quality", "lesson": "更新菜单"})
    shown = sa.show(case.instance_id)
    assert shown["status"] == "completed" and shown.get("legal_state") is None


def test_a_major_complaint_is_reported_level_by_level_then_compensated(sa, clock, notifier):
    case = start(sa, clock)
    do(sa, case, "start_handling", dict(STARTED, severity="major"))
    assert tasks(sa, case) == {"group_instruction": "scenic_complaint_group"}   # first level
    assert sa.show(case.instance_id).get("legal_state") is None
    do(sa, case, "group_instruction", {"group_instruction": "立即处理"})
    assert tasks(sa, case) == {"gm_instruction": "scenic_general_manager"}      # second level
    assert sa.show(case.instance_id)["legal_state"] == "major_reported"
    assert [m["to"] for m in notifier.sent if m["kind"] == "staff"] == [
        "role:scenic_complaint_group", "role:scenic_general_manager"]
    do(sa, case, "gm_instruction", {"gm_instruction": "同意"})
    do(sa, case, "handle", HANDLED)
    assert sa.show(case.instance_id)["legal_state"] == "guest_compensated"
    do(sa, case, "feedback", {"feedback_way": "phone", "guest_satisfied": "yes"})
    # 000:350: each level of managers thanks the guest
    do(sa, case, "thank_department", {"thanks_way": "phone"})
    do(sa, case, "thank_group", {"thanks_way": "in_person"})
    do(sa, case, "thank_gm", {"thanks_way": "letter"})
    do(sa, case, "summary", {"cause": "service_attitude", "lesson": "培训"})
    shown = sa.show(case.instance_id)
    assert shown["status"] == "completed" and shown["legal_state"] == "guest_compensated"
    assert sa.replay(case.instance_id).consistent is True


def test_a_guest_still_dissatisfied_is_handled_again_once_only(sa, clock):
    case = start(sa, clock)
    to_handling(sa, case)
    do(sa, case, "handle", HANDLED)
    do(sa, case, "feedback", {"feedback_way": "phone", "guest_satisfied": "no"})
    assert tasks(sa, case) == {"handle": "scenic_department"}
    do(sa, case, "handle", dict(HANDLED, compensation=False))
    do(sa, case, "feedback", {"feedback_way": "phone", "guest_satisfied": "no"})
    assert tasks(sa, case) == {"thank_department": "scenic_department"}


# --- who sees the guest ------------------------------------------------------------------------

def page(app, login, path):
    return sign_in(app.test_client(), login).get(path).get_data(as_text=True)


def test_the_service_centre_sees_the_guest_the_managers_never_do(sa, clock):
    roles = load_roles(PROCESSES)
    assert roles["scenic_service_center"]["sees_identity"]
    for role in ("scenic_department", "scenic_complaint_group", "scenic_general_manager"):
        assert not roles[role].get("sees_identity"), role
    app = inbox(sa)
    case = start(sa, clock)
    assert "王女士" in page(app, "scenic_service_center", f"/cases/{case.instance_id}")
    do(sa, case, "start_handling", dict(STARTED, severity="major"))
    task = open_task(sa, case.instance_id, "group_instruction")["task_id"]
    for path in (f"/tasks/{task}", f"/cases/{case.instance_id}"):
        shown = page(app, "scenic_complaint_group", path)
        assert "王女士" not in shown and "13912345678" not in shown and "（保密）" in shown, path


def test_the_department_sees_the_guest_only_on_the_task_that_compensates_them(sa, clock):
    app = inbox(sa)
    case = start(sa, clock)
    to_handling(sa, case)
    task = open_task(sa, case.instance_id, "handle")["task_id"]
    on_task = page(app, "scenic_department", f"/tasks/{task}")
    assert "王女士" in on_task and "13912345678" in on_task
    on_case = page(app, "scenic_department", f"/cases/{case.instance_id}")
    assert "王女士" not in on_case and "（保密）" in on_case
