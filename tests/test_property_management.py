"""property_management (a property management company's owner complaints): every path through
the service layer with a controlled clock. Seeds: 001:253-305; 000:199-214; 004:236-244
(see docs/processes/property_management.md).

Dates are computed by hand from the 2026 calendar (Qingming 04-05/06 off; Labour Day 05-01..05
off, Sat 05-09 worked; Mid-Autumn 09-25 off; National Day 10-01..07 off, Sun 09-20 and Sat
10-10 worked) and were checked with `complaintflow calendar deadline`. A day limit ends at
00:00 of the day after its last day (Asia/Shanghai), which is 16:00 UTC of the last day."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput
from complaintflow.web.cli import cli
from conftest import PROCESSES, open_task

INTAKE = {
    "channel": "phone",
    "received_at": "2026-05-06T08:30:00+08:00",
    "received_by": "保安 李四",
    "owner_name": "张先生",
    "building_unit": "3栋2单元501",
    "contact": "13900001111",
    "category": "class_1",
    "management_type": "equipment",
    "department_complained": "工程部",
    "content": "楼道灯坏了三天没人修",
    "validity": "valid",
}
HANDLED = {"handling_process": "更换楼道灯管", "handling_result": "楼道灯已修复", "cause_analysis": "巡查不到位",
           "department_head": "工程部 赵经理"}
RECORDED = {"record_note": "工程部已更换灯管", "result_message": "楼道灯已修复", "notify_method": "phone"}
SATISFIED = {"revisit_method": "phone", "rating": "satisfied", "effect_check": "灯已正常"}


@pytest.fixture
def pm(service):
    service.deploy([PROCESSES / "property_management.bpmn"])
    return service


def at(text):
    return parse_instant(text)


def start(pm, clock, when="2026-05-06T09:00", **overrides):
    clock.set(at(when))
    return pm.start("property_management", dict(INTAKE, **overrides), "front_desk_wang")


def do(pm, case, task, data, user="staff"):
    return pm.complete_task(open_task(pm, case.instance_id, task)["task_id"], user, data)


def roles(pm, case):
    return {t["task"]: t["role"] for t in pm.list_tasks(instance_id=case.instance_id)}


def deadline(pm, case, name):
    return next(d for d in pm.show(case.instance_id)["deadlines"] if d["name"] == name)


def deadlines(pm, case):
    return {d["name"]: d["status"] for d in pm.show(case.instance_id)["deadlines"]}


def messages(notifier, to):
    return [m["message"] for m in notifier.sent if m["to"] == to]


def fired(pm, case):
    return [e["payload"]["task"] for e in pm.history(case.instance_id) if e["kind"] == "timer_fired"]


def tick_at(pm, clock, when):
    clock.set(at(when))
    return pm.tick()["timers_fired"]


def record_and_revisit(pm, case, revisit=SATISFIED):
    do(pm, case, "record", RECORDED, "front_desk_wang")
    return do(pm, case, "revisit", revisit, "operations_liu")


def handle_to_the_end(pm, case):
    """From the department's handling to the closed case (the owner satisfied)."""
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    done = record_and_revisit(pm, case)
    assert done.status == "completed" and pm.replay(case.instance_id).consistent is True


# ----------------------------------------------------------------------------- registration


def test_registration_numbers_the_case_and_acknowledges_the_limits(pm, clock, notifier):
    case = start(pm, clock)
    assert case.case_number == "WY-2026-000001"
    shown = pm.show(case.instance_id)
    assert shown["category"] == "class_1" and shown["legal_state"] is None
    (ack,) = notifier.sent
    assert ack["kind"] == "acknowledgement" and ack["to"] == "13900001111"
    # minor (no criterion ticked): 2 days from Wed 05-06 -> Fri 05-08
    assert ack["message"] == ("您的投诉已登记（轻微投诉），处理后3天内由运营管理部回访，编号 WY-2026-000001。"
                              "处理完毕：最迟于2026年05月08日。")
    assert roles(pm, case) == {"handle": "department"}
    assert open_task(pm, case.instance_id, "handle")["due"] == "2026-05-08T16:00:00+00:00"
    resolve = deadline(pm, case, "resolve")
    assert (resolve["unit"], resolve["amount"], resolve["last_day"], resolve["status"]) == ("days", 2, "2026-05-08", "open")
    assert resolve["seed"] == "004:240 三.1" and resolve["rule"].startswith("轻微投诉一般在2日内处理完毕")
    # a month from 05-06 is Sat 06-06, rolled forward to Mon 06-08
    month = deadline(pm, case, "month")
    assert (month["unit"], month["amount"], month["last_day"]) == ("months", 1, "2026-06-08")
    assert month["seed"] == "004:238 一.1(3)"
    assert [d["name"] for d in shown["deadlines"]] == ["handover", "resolve", "month"]


def test_registration_refuses_missing_and_conditional_fields(pm, clock):
    with pytest.raises(InvalidInput) as err:
        start(pm, clock, category="class_4", received_at="this morning")
    assert {"category", "received_at"} <= set(err.value.field_errors)
    with pytest.raises(InvalidInput) as err:
        start(pm, clock, validity="invalid")                 # an invalid complaint needs its reason
    assert set(err.value.field_errors) == {"invalid_reason"}
    incomplete = dict(INTAKE)
    del incomplete["building_unit"]
    del incomplete["management_type"]                        # a class-1 complaint needs its type (004:244)
    with pytest.raises(InvalidInput) as err:
        pm.start("property_management", incomplete, "front_desk_wang")
    assert set(err.value.field_errors) == {"building_unit", "management_type"}
    assert pm.list_cases() == []
    third_party = pm.start("property_management", dict(incomplete, category="class_3", building_unit="1栋"), "fd")
    assert pm.show(third_party.instance_id)["category"] == "class_3"      # no type needed outside class 1


def test_invalid_complaint_is_served_and_closed_without_limits(pm, clock, notifier):
    case = start(pm, clock, validity="invalid", invalid_reason="反映的是市政道路施工噪音，不属物业服务范围")
    assert notifier.sent[0]["kind"] == "acknowledgement"
    assert notifier.sent[0]["message"] == "您反映的问题已登记，我们将尽量为您提供方便，编号 WY-2026-000001。"
    assert roles(pm, case) == {"invalid_handling": "front_desk"}
    with pytest.raises(InvalidInput) as err:
        do(pm, case, "invalid_handling", {"convenience": "提供施工单位联系电话"})
    assert set(err.value.field_errors) == {"explanation"}
    done = do(pm, case, "invalid_handling", {"convenience": "提供施工单位和城管热线电话",
                                             "explanation": "道路施工由市政负责，我们已代为反映"})
    assert done.status == "completed"
    assert notifier.sent[-1]["kind"] == "complainant" and "城管热线" in notifier.sent[-1]["message"]
    shown = pm.show(case.instance_id)
    assert shown["deadlines"] == [] and shown["closed"] == "2026-05-06T01:00:00+00:00"
    assert pm.replay(case.instance_id).consistent is True


# ----------------------------------------------------------------------------- letters, calls, e-mail


def test_phone_complaint_handled_in_time_recorded_the_same_day_and_revisited(pm, clock, notifier):
    case = start(pm, clock)                                  # received 08:30, registered 09:00
    handover = deadline(pm, case, "handover")
    assert (handover["unit"], handover["status"], handover["due"]) == ("hours", "met", "2026-05-06T01:30:00+00:00")
    assert handover["seed"] == "001:274-275"
    clock.set(at("2026-05-07T15:00"))
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert deadline(pm, case, "resolve")["status"] == "met"
    assert roles(pm, case) == {"record": "front_desk"}
    record = deadline(pm, case, "record")
    assert (record["unit"], record["last_day"], record["seed"]) == ("same_day", "2026-05-07", "001:272-273; 004:240 二.3")
    assert open_task(pm, case.instance_id, "record")["due"] == "2026-05-07T16:00:00+00:00"
    # revisit within 3 days of handling: 05-07 + 3 = Sun 05-10, rolled forward to Mon 05-11
    revisit = deadline(pm, case, "revisit")
    assert (revisit["unit"], revisit["amount"], revisit["last_day"]) == ("days", 3, "2026-05-11")

    do(pm, case, "record", RECORDED, "front_desk_wang")
    assert notifier.sent[-2]["message"] == "您的投诉（编号WY-2026-000001）已处理完毕：楼道灯已修复。运营管理部将在3天内回访。"
    assert notifier.sent[-1]["to"] == "role:operations" and "最迟于2026-05-11回访" in notifier.sent[-1]["message"]
    assert roles(pm, case) == {"revisit": "operations"}
    assert open_task(pm, case.instance_id, "revisit")["due"] == "2026-05-11T16:00:00+00:00"
    assert tick_at(pm, clock, "2026-05-09T00:00") == 0      # the 2-day limit passed; the watch had ended

    done = do(pm, case, "revisit", dict(SATISFIED, rating="very_satisfied"), "operations_liu")
    assert done.status == "completed"
    assert deadlines(pm, case) == {"handover": "met", "resolve": "met", "month": "met", "record": "met",
                                   "revisit": "met"}
    assert [m["kind"] for m in notifier.sent] == ["acknowledgement", "complainant", "staff"]
    assert pm.show(case.instance_id)["next_due"] is None
    assert pm.replay(case.instance_id).consistent is True


def test_receiver_must_tell_the_front_desk_within_one_hour(pm, clock, notifier):
    on_time = start(pm, clock, when="2026-05-06T09:59", channel="email", received_at="2026-05-06T09:00")
    assert deadline(pm, on_time, "handover")["status"] == "met"
    assert messages(notifier, "role:operations") == []

    late = start(pm, clock, when="2026-05-06T11:00", channel="letter", received_at="2026-05-06T09:00",
                 received_by="物业服务部 陈")
    handover = deadline(pm, late, "handover")
    assert handover["status"] == "breached" and handover["breached_at"] == "2026-05-06T03:00:00+00:00"
    assert handover["due"] == "2026-05-06T02:00:00+00:00"
    (notice,) = messages(notifier, "role:operations")
    assert notice.startswith("投诉WY-2026-000002：信息接收人员物业服务部 陈超过1小时才将投诉告知前台")
    assert roles(pm, late) == {"handle": "department"}      # the complaint is handled all the same


# ----------------------------------------------------------------------------- in person


def visit(pm, clock, when="2026-05-06T09:05", **overrides):
    return start(pm, clock, when=when, **dict({"channel": "visit", "received_at": "2026-05-06T09:00"}, **overrides))


def test_in_person_settled_on_the_spot_is_reported_to_the_supervisor(pm, clock, notifier):
    case = visit(pm, clock)
    assert "handover" not in deadlines(pm, case)
    assert roles(pm, case) == {"on_spot": "front_desk"}
    assert open_task(pm, case.instance_id, "on_spot")["due"] == "2026-05-06T03:00:00+00:00"   # 09:00 + 2 hours
    with pytest.raises(InvalidInput) as err:
        do(pm, case, "on_spot", {"apologised": True, "settled": True})
    assert set(err.value.field_errors) == {"on_spot_action"}
    with pytest.raises(InvalidInput) as err:
        do(pm, case, "on_spot", {"apologised": False, "settled": True, "on_spot_action": "当场疏通"})
    assert set(err.value.field_errors) == {"apologised"}
    assert roles(pm, case) == {"on_spot": "front_desk"}      # nothing changed
    clock.set(at("2026-05-06T09:40"))
    do(pm, case, "on_spot", {"apologised": True, "settled": True, "on_spot_action": "当场疏通了地漏"})
    assert messages(notifier, "role:supervisor") == ["当面投诉WY-2026-000001已当场处理：当场疏通了地漏"]
    assert deadlines(pm, case) == {"resolve": "met", "month": "open", "notify_superior": "met", "record": "open",
                                   "revisit": "open"}
    assert roles(pm, case) == {"record": "front_desk"}
    assert record_and_revisit(pm, case).status == "completed"
    assert pm.replay(case.instance_id).consistent is True


def test_in_person_not_settled_goes_to_the_supervisor_for_an_opinion(pm, clock, notifier):
    case = visit(pm, clock)
    with pytest.raises(InvalidInput) as err:
        do(pm, case, "on_spot", {"apologised": True, "settled": False})
    assert set(err.value.field_errors) == {"not_settled_reason"}
    clock.set(at("2026-05-06T10:30"))
    do(pm, case, "on_spot", {"apologised": True, "settled": False, "not_settled_reason": "需更换水泵"})
    assert deadline(pm, case, "notify_superior")["status"] == "met"
    (told,) = messages(notifier, "role:supervisor")
    assert "不能当场处理（需更换水泵）" in told
    assert roles(pm, case) == {"supervisor_opinion": "supervisor"}
    do(pm, case, "supervisor_opinion", {"opinion": "工程部今天更换水泵", "responsible_department": "工程部"}, "leader_sun")
    assert roles(pm, case) == {"handle": "department"}
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert record_and_revisit(pm, case).status == "completed"
    assert pm.replay(case.instance_id).consistent is True


def test_supervisor_is_told_automatically_when_two_hours_pass(pm, clock, notifier):
    case = visit(pm, clock)
    notify_superior = deadline(pm, case, "notify_superior")
    assert (notify_superior["unit"], notify_superior["amount"]) == ("hours", 2)
    assert notify_superior["seed"] == "001:269-271"
    assert tick_at(pm, clock, "2026-05-06T10:59") == 0
    assert roles(pm, case) == {"on_spot": "front_desk"}
    assert tick_at(pm, clock, "2026-05-06T11:00") == 1
    assert fired(pm, case) == ["superior_time_passed"]
    assert roles(pm, case) == {"supervisor_opinion": "supervisor"}   # the on-the-spot task is withdrawn
    notify_superior = deadline(pm, case, "notify_superior")
    assert notify_superior["status"] == "breached" and notify_superior["breached_at"] == "2026-05-06T03:00:00+00:00"
    (told,) = messages(notifier, "role:supervisor")
    assert told.startswith("当面投诉WY-2026-000001（3栋2单元501 张先生）两小时内未能当场处理")
    do(pm, case, "supervisor_opinion", {"opinion": "工程部处理", "responsible_department": "工程部"}, "leader_sun")
    handle_to_the_end(pm, case)
    assert deadline(pm, case, "notify_superior")["status"] == "breached"


def test_difficult_complaint_goes_to_the_department_head_at_once(pm, clock, notifier):
    case = visit(pm, clock, difficult=True)                  # in person, but not for the spot: 001:278-279
    assert "notify_superior" not in deadlines(pm, case)
    (told,) = messages(notifier, "role:supervisor")
    assert told.startswith("投诉WY-2026-000001处理难度较大或直接投诉到公司、集团或政府有关部门")
    assert roles(pm, case) == {"supervisor_opinion": "supervisor"}
    assert open_task(pm, case.instance_id, "supervisor_opinion")["due"] == "2026-05-08T16:00:00+00:00"
    with pytest.raises(InvalidInput) as err:
        do(pm, case, "supervisor_opinion", {"opinion": "协调开发商"})
    assert set(err.value.field_errors) == {"responsible_department"}
    do(pm, case, "supervisor_opinion", {"opinion": "协调开发商维修", "responsible_department": "工程部",
                                        "coordinating_departments": "开发商客服部"}, "leader_sun")
    assert roles(pm, case) == {"handle": "department"}
    handle_to_the_end(pm, case)


def test_damage_in_progress_is_stopped_before_anything_else(pm, clock, notifier):
    case = visit(pm, clock, damage_ongoing=True, content="楼上水管爆裂，水漏进我家")
    (alert,) = messages(notifier, "role:department")
    assert "正在给住户造成损害，请立即采取措施停止或挽救" in alert
    assert roles(pm, case) == {"stop_damage": "department"}
    with pytest.raises(InvalidInput) as err:
        do(pm, case, "stop_damage", {"measures": "关闭总阀", "damage_stopped": False})
    assert set(err.value.field_errors) == {"remaining_risk"}
    assert roles(pm, case) == {"stop_damage": "department"}  # nothing changed
    do(pm, case, "stop_damage", {"measures": "关闭总阀，清理积水", "damage_stopped": True}, "engineering_zhao")
    assert roles(pm, case) == {"on_spot": "front_desk"}      # then the complaint itself
    do(pm, case, "on_spot", {"apologised": True, "settled": False, "not_settled_reason": "需赔偿损失"})
    do(pm, case, "supervisor_opinion", {"opinion": "评估损失后赔偿", "responsible_department": "工程部"}, "leader_sun")
    handle_to_the_end(pm, case)


# ----------------------------------------------------------------------------- severity and overruns


def test_minor_overrun_needs_the_supervising_managers_approval(pm, clock, notifier):
    case = start(pm, clock)
    assert tick_at(pm, clock, "2026-05-08T23:59") == 0
    assert tick_at(pm, clock, "2026-05-09T00:00") == 1
    assert fired(pm, case) == ["resolve_passed"]
    resolve = deadline(pm, case, "resolve")
    assert resolve["status"] == "breached" and resolve["breached_at"] == "2026-05-08T16:00:00+00:00"
    assert roles(pm, case) == {"handle": "department", "approve_overrun_manager": "manager"}
    told = len(notifier.sent)
    with pytest.raises(InvalidInput) as err:
        do(pm, case, "approve_overrun_manager", {"overrun_approved": True, "overrun_opinion": "同意"})
    assert set(err.value.field_errors) == {"approved_until"}
    assert roles(pm, case) == {"handle": "department", "approve_overrun_manager": "manager"}
    assert len(notifier.sent) == told                        # nothing changed
    do(pm, case, "approve_overrun_manager", {"overrun_approved": True, "approved_until": "2026-05-11T18:00",
                                             "overrun_opinion": "灯管缺货，同意延期"}, "manager_qian")
    assert messages(notifier, "role:department")[-1] == ("投诉WY-2026-000001超过处理时限：已批准延至2026-05-11 18:00。"
                                                         "审批意见：灯管缺货，同意延期")
    assert roles(pm, case) == {"handle": "department"}
    clock.set(at("2026-05-11T10:00"))
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert deadline(pm, case, "resolve")["status"] == "breached"        # the overrun stays on record
    assert record_and_revisit(pm, case).status == "completed"
    assert pm.replay(case.instance_id).consistent is True


def test_important_overrun_needs_the_general_managers_approval(pm, clock, notifier):
    case = start(pm, clock, management_fault=True)
    assert "（重要投诉）" in notifier.sent[-1]["message"]
    assert messages(notifier, "role:manager") == [
        "重要投诉WY-2026-000001（3栋2单元501 张先生）：楼道灯坏了三天没人修。请按《不合格纠正与预防标准作业规程》处理，3日内处理完毕。"]
    # 3 days from Wed 05-06 end on Sat 05-09, a make-up working day: not rolled forward
    resolve = deadline(pm, case, "resolve")
    assert (resolve["amount"], resolve["last_day"], resolve["seed"]) == (3, "2026-05-09", "004:240 三.2")
    assert tick_at(pm, clock, "2026-05-09T23:59") == 0
    assert tick_at(pm, clock, "2026-05-10T00:00") == 1
    assert roles(pm, case) == {"handle": "department", "approve_overrun_gm": "general_manager"}
    do(pm, case, "approve_overrun_gm", {"overrun_approved": False, "overrun_opinion": "不同意，今天必须处理完"}, "gm_zhou")
    assert messages(notifier, "role:department")[-1] == ("投诉WY-2026-000001超过处理时限：未批准超时，请立即处理完毕。"
                                                         "审批意见：不同意，今天必须处理完")
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert record_and_revisit(pm, case).status == "completed"
    assert pm.replay(case.instance_id).consistent is True


def test_approved_overrun_is_timed_across_labour_day(pm, clock, notifier):
    # received Tue 04-28: 2 days -> Thu 04-30; the manager approves, on Labour Day, a completion
    # time after the holiday (05-01..05-05): an exact moment (unit `at`), not moved by the holiday
    case = start(pm, clock, when="2026-04-28T09:00", received_at="2026-04-28T08:30")
    assert tick_at(pm, clock, "2026-05-01T00:00") == 1
    clock.set(at("2026-05-01T09:00"))
    do(pm, case, "approve_overrun_manager", {"overrun_approved": True, "approved_until": "2026-05-06T10:00",
                                             "overrun_opinion": "节日期间灯管缺货，同意延至节后"}, "manager_qian")
    overrun = deadline(pm, case, "overrun")
    assert (overrun["unit"], overrun["due"], overrun["status"]) == ("at", "2026-05-06T02:00:00+00:00", "open")
    assert overrun["seed"] == "004:240 三.1-2"
    assert roles(pm, case) == {"handle": "department"}
    assert tick_at(pm, clock, "2026-05-06T09:59") == 0
    assert roles(pm, case) == {"handle": "department"}
    assert tick_at(pm, clock, "2026-05-06T10:00") == 1
    assert fired(pm, case) == ["resolve_passed", "overrun_passed"]
    overrun = deadline(pm, case, "overrun")
    assert (overrun["status"], overrun["breached_at"]) == ("breached", "2026-05-06T02:00:00+00:00")
    # passing the approved time is a new overrun: the supervising manager decides again
    assert roles(pm, case) == {"handle": "department", "approve_overrun_manager": "manager"}
    do(pm, case, "approve_overrun_manager", {"overrun_approved": False, "overrun_opinion": "不再延期，今天修好"},
       "manager_qian")
    assert messages(notifier, "role:department")[-1] == ("投诉WY-2026-000001超过处理时限：未批准超时，请立即处理完毕。"
                                                         "审批意见：不再延期，今天修好")
    clock.set(at("2026-05-06T15:00"))
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert record_and_revisit(pm, case).status == "completed"
    assert (deadlines(pm, case)["resolve"], deadlines(pm, case)["overrun"]) == ("breached", "breached")
    assert pm.replay(case.instance_id).consistent is True


def test_handled_before_the_approved_time_meets_the_overrun(pm, clock):
    # important: 3 days from Tue 04-28 -> Fri 05-01, rolled over Labour Day to Wed 05-06
    case = start(pm, clock, when="2026-04-28T09:00", received_at="2026-04-28T08:30", management_fault=True)
    assert tick_at(pm, clock, "2026-05-06T23:59") == 0
    assert tick_at(pm, clock, "2026-05-07T00:00") == 1
    do(pm, case, "approve_overrun_gm", {"overrun_approved": True, "approved_until": "2026-05-08T18:00",
                                        "overrun_opinion": "同意"}, "gm_zhou")
    assert deadline(pm, case, "overrun")["status"] == "open"
    clock.set(at("2026-05-08T17:59"))
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert deadline(pm, case, "overrun")["status"] == "met"
    assert tick_at(pm, clock, "2026-05-08T18:00") == 0            # stopped: nothing fires at the approved time
    assert record_and_revisit(pm, case).status == "completed"
    assert deadlines(pm, case)["overrun"] == "met"
    assert pm.replay(case.instance_id).consistent is True


def test_handled_while_the_overrun_awaits_approval_withdraws_the_approval(pm, clock):
    case = start(pm, clock)
    assert tick_at(pm, clock, "2026-05-09T00:00") == 1
    assert roles(pm, case) == {"handle": "department", "approve_overrun_manager": "manager"}
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert roles(pm, case) == {"record": "front_desk"}            # nothing left to approve
    assert "overrun" not in deadlines(pm, case)
    assert record_and_revisit(pm, case).status == "completed"
    assert pm.replay(case.instance_id).consistent is True


def test_validate_finds_no_limit_left_running_at_the_end(tmp_path, chain_key_env):
    # the month limit is stopped on every way to the end where it was started; a database and
    # the chain key under tmp_path (the defaults would make var/ in the working directory)
    result = CliRunner(env=chain_key_env).invoke(cli, ["--db", f"sqlite:///{tmp_path / 'v.sqlite3'}", "validate",
                                                       str(PROCESSES / "property_management.bpmn")])
    assert result.exit_code == 0
    assert result.output.splitlines() == ["OK: 1 file(s), processes: property_management"]


def test_minor_complaint_may_follow_the_period_the_owner_asks_for(pm, clock, notifier):
    case = start(pm, clock, owner_requested_by="2026-05-07T18:00")
    resolve = deadline(pm, case, "resolve")
    assert (resolve["unit"], resolve["due"], resolve["last_day"]) == ("at", "2026-05-07T10:00:00+00:00", None)
    assert resolve["rule"].startswith("轻微投诉按住户要求的期限内处理完毕")
    assert notifier.sent[0]["message"].endswith("处理完毕：最迟于2026年05月07日 18:00。")
    assert tick_at(pm, clock, "2026-05-07T17:59") == 0
    assert tick_at(pm, clock, "2026-05-07T18:00") == 1
    assert roles(pm, case) == {"handle": "department", "approve_overrun_manager": "manager"}
    do(pm, case, "approve_overrun_manager", {"overrun_approved": True, "approved_until": "2026-05-08T18:00",
                                             "overrun_opinion": "同意"}, "manager_qian")
    handle_to_the_end(pm, case)
    assert deadline(pm, case, "resolve")["status"] == "breached"


def test_owner_period_does_not_apply_to_an_important_complaint(pm, clock):
    case = start(pm, clock, management_fault=True, owner_requested_by="2026-05-20T18:00")
    assert deadline(pm, case, "resolve")["unit"] == "days"


def test_major_complaint_across_labour_day(pm, clock, notifier):
    # received Wed 04-29: the clear answer within 2 days -> 05-01 (Labour Day), rolled forward over
    # 05-01..05-05 (holidays and Sun 05-03) to Wed 05-06; resolved within 10 days -> Sat 05-09, a make-up
    # working day, so not rolled forward.
    case = start(pm, clock, when="2026-04-29T10:00", received_at="2026-04-29T09:40", serious_loss_or_injury=True,
                 content="物业维修时砸坏我家汽车")
    (report,) = messages(notifier, "role:general_manager")
    assert report.startswith("重大投诉WY-2026-000001（3栋2单元501 张先生）：物业维修时砸坏我家汽车")
    (ack,) = [m["message"] for m in notifier.sent if m["kind"] == "acknowledgement"]
    assert notifier.kinds()[:2] == ["staff", "acknowledgement"]           # the general manager first
    assert "（重大投诉）" in ack and "给您明确答复：最迟于2026年05月06日；解决：最迟于2026年05月09日" in ack
    answer = deadline(pm, case, "major_answer")
    assert (answer["unit"], answer["amount"], answer["last_day"]) == ("days", 2, "2026-05-06")
    resolve = deadline(pm, case, "resolve")
    assert (resolve["amount"], resolve["last_day"], resolve["seed"]) == (10, "2026-05-09", "004:240 三.3")
    assert "month" not in deadlines(pm, case)                # already major: the month rule cannot apply
    assert roles(pm, case) == {"handle": "department", "major_instruction": "general_manager"}
    assert open_task(pm, case.instance_id, "major_instruction")["due"] == "2026-05-06T16:00:00+00:00"

    clock.set(at("2026-04-30T16:00"))
    do(pm, case, "major_instruction", {"measures": "照价赔偿，工程部整改作业规程",
                                       "answer_to_owner": "公司承担全部维修费用，5月8日前修好"}, "gm_zhou")
    assert notifier.sent[-2]["to"] == "13900001111"
    assert notifier.sent[-2]["message"] == ("关于您的投诉（编号WY-2026-000001），公司明确答复如下："
                                            "公司承担全部维修费用，5月8日前修好")
    assert notifier.sent[-1]["to"] == "role:department" and "照价赔偿" in notifier.sent[-1]["message"]
    assert deadline(pm, case, "major_answer")["status"] == "met"
    assert tick_at(pm, clock, "2026-05-07T00:00") == 0       # the answer was given: its reminder is gone
    clock.set(at("2026-05-08T11:00"))
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert record_and_revisit(pm, case).status == "completed"
    assert deadlines(pm, case) == {"handover": "met", "major_answer": "met", "resolve": "met", "record": "met",
                                   "revisit": "met"}
    assert pm.replay(case.instance_id).consistent is True


def test_major_overruns_remind_and_go_to_the_general_manager(pm, clock, notifier):
    case = start(pm, clock, contract_service_unresolved=True)          # 004:238 一.1(1)
    assert deadline(pm, case, "major_answer")["last_day"] == "2026-05-08"
    assert tick_at(pm, clock, "2026-05-08T23:59") == 0
    assert tick_at(pm, clock, "2026-05-09T00:00") == 1
    assert fired(pm, case) == ["major_answer_passed"]
    assert messages(notifier, "role:general_manager")[-1] == "重大投诉WY-2026-000001已超过2日仍未给住户明确答复，请立即答复"
    assert deadline(pm, case, "major_answer")["status"] == "breached"
    assert roles(pm, case) == {"handle": "department", "major_instruction": "general_manager"}   # still to answer
    # 10 days from 05-06 -> Sat 05-16, rolled forward to Mon 05-18
    assert deadline(pm, case, "resolve")["last_day"] == "2026-05-18"
    assert tick_at(pm, clock, "2026-05-19T00:00") == 1
    assert roles(pm, case) == {"handle": "department", "major_instruction": "general_manager",
                               "approve_overrun_gm": "general_manager"}
    do(pm, case, "major_instruction", {"measures": "按合同恢复保洁频次", "answer_to_owner": "即日起恢复每日保洁"}, "gm_zhou")
    assert deadline(pm, case, "major_answer")["status"] == "breached"
    do(pm, case, "approve_overrun_gm", {"overrun_approved": True, "approved_until": "2026-05-22T18:00",
                                        "overrun_opinion": "同意"}, "gm_zhou")
    do(pm, case, "handle", HANDLED, "cleaning_he")
    assert record_and_revisit(pm, case).status == "completed"
    assert pm.replay(case.instance_id).consistent is True


# ----------------------------------------------------------------------------- the month rule


def test_unresolved_for_a_month_becomes_major_across_national_day(pm, clock, notifier):
    case = start(pm, clock, when="2026-09-01T10:00", received_at="2026-09-01T09:30")
    # a month from Tue 09-01 is Thu 10-01 (National Day), rolled forward over 10-01..10-07 to Thu 10-08
    month = deadline(pm, case, "month")
    assert (month["last_day"], month["due"]) == ("2026-10-08", "2026-10-08T16:00:00+00:00")
    assert tick_at(pm, clock, "2026-09-04T00:00") == 1       # the 2 days passed first (Thu 09-03)
    do(pm, case, "approve_overrun_manager", {"overrun_approved": True, "approved_until": "2026-10-30T18:00",
                                             "overrun_opinion": "需开发商配合"}, "manager_qian")
    assert tick_at(pm, clock, "2026-10-08T23:59") == 0
    assert tick_at(pm, clock, "2026-10-09T00:00") == 1
    assert fired(pm, case) == ["resolve_passed", "month_passed"]
    shown = pm.show(case.instance_id)
    assert shown["legal_state"] == "reclassified_major"
    assert deadline(pm, case, "month")["status"] == "breached"
    assert messages(notifier, "role:general_manager") == [
        "投诉WY-2026-000001（3栋2单元501 张先生）一个月内未解决，已转为重大投诉：楼道灯坏了三天没人修。"
        "请批示处理措施，并于2日内给住户明确答复。"]
    # major limits from the reclassification (Fri 10-09): answer in 2 days -> Sun 10-11, rolled to Mon 10-12;
    # resolved in 10 days -> Mon 10-19
    answer, major_resolve = deadline(pm, case, "major_answer"), deadline(pm, case, "major_resolve")
    assert (answer["last_day"], answer["seed"]) == ("2026-10-12", "004:238 一.1(3); 004:240 三.3")
    assert (major_resolve["unit"], major_resolve["amount"], major_resolve["last_day"]) == ("days", 10, "2026-10-19")
    assert roles(pm, case) == {"handle": "department", "reclassified_instruction": "general_manager"}
    assert open_task(pm, case.instance_id, "reclassified_instruction")["due"] == "2026-10-12T16:00:00+00:00"

    clock.set(at("2026-10-10T09:00"))                        # Sat 10-10, a make-up working day
    do(pm, case, "reclassified_instruction", {"measures": "工程部三日内完成", "answer_to_owner": "10月13日前修复"}, "gm_zhou")
    assert notifier.sent[-2]["message"].endswith("10月13日前修复")
    assert deadline(pm, case, "major_answer")["status"] == "met"
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    # revisit within 3 days of Sat 10-10 -> Tue 10-13
    assert deadline(pm, case, "revisit")["last_day"] == "2026-10-13"
    assert record_and_revisit(pm, case).status == "completed"
    assert deadlines(pm, case) == {"handover": "met", "resolve": "breached", "overrun": "met", "month": "breached",
                                   "major_answer": "met", "major_resolve": "met", "record": "met", "revisit": "met"}
    assert pm.show(case.instance_id)["legal_state"] == "reclassified_major"
    assert pm.replay(case.instance_id).consistent is True


def test_reclassified_major_not_resolved_in_ten_days_goes_to_the_general_manager(pm, clock, notifier):
    case = start(pm, clock, when="2026-09-01T10:00", received_at="2026-09-01T09:30", management_fault=True)
    assert tick_at(pm, clock, "2026-09-05T00:00") == 1       # important: 3 days -> Fri 09-04
    do(pm, case, "approve_overrun_gm", {"overrun_approved": True, "approved_until": "2026-10-30T18:00",
                                        "overrun_opinion": "同意"}, "gm_zhou")
    assert tick_at(pm, clock, "2026-10-09T00:00") == 1       # the month (rolled to 10-08) passes
    assert tick_at(pm, clock, "2026-10-13T00:00") == 1       # no clear answer by Mon 10-12: reminder
    assert messages(notifier, "role:general_manager")[-1].startswith("转为重大投诉的WY-2026-000001已超过2日")
    assert tick_at(pm, clock, "2026-10-19T23:59") == 0
    assert tick_at(pm, clock, "2026-10-20T00:00") == 1
    assert fired(pm, case)[-1] == "major_resolve_passed"
    assert deadline(pm, case, "major_resolve")["status"] == "breached"
    assert roles(pm, case) == {"handle": "department", "reclassified_instruction": "general_manager",
                               "approve_major_overrun": "general_manager"}
    do(pm, case, "approve_major_overrun", {"overrun_approved": False, "overrun_opinion": "立即处理"}, "gm_zhou")
    assert messages(notifier, "role:department")[-1].endswith("未批准超时，请立即处理完毕。审批意见：立即处理")
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    do(pm, case, "record", RECORDED, "front_desk_wang")
    do(pm, case, "revisit", SATISFIED, "operations_liu")
    # resolved, but the general manager has not yet given the clear answer: the case waits for it
    assert roles(pm, case) == {"reclassified_instruction": "general_manager"}
    assert pm.show(case.instance_id)["status"] == "running"
    done = do(pm, case, "reclassified_instruction", {"measures": "追究责任", "answer_to_owner": "已修复，致歉"}, "gm_zhou")
    assert done.status == "completed"
    assert deadlines(pm, case)["major_resolve"] == "breached"
    assert pm.replay(case.instance_id).consistent is True


def test_reclassified_major_approved_overrun_is_timed_and_withdrawn_when_resolved(pm, clock, notifier):
    case = start(pm, clock, when="2026-09-01T10:00", received_at="2026-09-01T09:30", management_fault=True)
    assert tick_at(pm, clock, "2026-09-05T00:00") == 1
    do(pm, case, "approve_overrun_gm", {"overrun_approved": True, "approved_until": "2026-10-30T18:00",
                                        "overrun_opinion": "同意"}, "gm_zhou")
    assert tick_at(pm, clock, "2026-10-09T00:00") == 1       # the month (rolled over National Day) passes
    clock.set(at("2026-10-10T09:00"))
    do(pm, case, "reclassified_instruction", {"measures": "工程部三日内完成", "answer_to_owner": "10月20日前修复"}, "gm_zhou")
    assert tick_at(pm, clock, "2026-10-20T00:00") == 1       # 10 days from 10-09 -> Mon 10-19
    do(pm, case, "approve_major_overrun", {"overrun_approved": True, "approved_until": "2026-10-23T18:00",
                                           "overrun_opinion": "同意延至周五"}, "gm_zhou")
    limit = deadline(pm, case, "major_overrun")
    assert (limit["unit"], limit["due"], limit["status"]) == ("at", "2026-10-23T10:00:00+00:00", "open")
    assert roles(pm, case) == {"handle": "department"}
    assert tick_at(pm, clock, "2026-10-23T17:59") == 0
    assert tick_at(pm, clock, "2026-10-23T18:00") == 1
    assert fired(pm, case)[-1] == "major_overrun_passed"
    assert deadline(pm, case, "major_overrun")["status"] == "breached"
    assert roles(pm, case) == {"handle": "department", "approve_major_overrun": "general_manager"}
    # resolved while the general manager has not decided: the approval is withdrawn and the case closes
    clock.set(at("2026-10-24T09:00"))
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert deadlines(pm, case)["overrun"] == "met"           # the first approved time (10-30) was kept
    done = record_and_revisit(pm, case)
    assert done.status == "completed"
    assert deadlines(pm, case)["major_overrun"] == "breached"
    assert pm.replay(case.instance_id).consistent is True


def test_resolved_within_the_month_is_not_reclassified(pm, clock):
    case = start(pm, clock)
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    do(pm, case, "record", RECORDED, "front_desk_wang")
    assert tick_at(pm, clock, "2026-05-10T00:00") == 1       # the revisit limit (Sat 05-09) passed
    assert fired(pm, case) == ["revisit_passed"]
    assert do(pm, case, "revisit", SATISFIED, "operations_liu").status == "completed"
    assert deadline(pm, case, "month")["status"] == "met"
    assert tick_at(pm, clock, "2026-06-09T00:00") == 0       # the month watch ended with the case
    assert pm.show(case.instance_id)["legal_state"] is None


# ----------------------------------------------------------------------------- record, revisit, dissatisfaction


def test_record_and_revisit_limits_tell_operations_and_management(pm, clock, notifier):
    case = start(pm, clock)
    clock.set(at("2026-05-06T15:00"))
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    assert tick_at(pm, clock, "2026-05-06T23:59") == 0
    assert tick_at(pm, clock, "2026-05-07T00:00") == 1
    assert messages(notifier, "role:operations") == ["投诉WY-2026-000001处理完毕后前台未在当天记录并通报住户"]
    assert deadline(pm, case, "record")["status"] == "breached"
    assert roles(pm, case) == {"record": "front_desk"}       # still to be recorded
    clock.set(at("2026-05-07T09:00"))
    do(pm, case, "record", RECORDED, "front_desk_wang")
    assert deadline(pm, case, "record")["status"] == "breached"
    # 3 days from Wed 05-06 -> Sat 05-09, a make-up working day
    assert deadline(pm, case, "revisit")["last_day"] == "2026-05-09"
    assert tick_at(pm, clock, "2026-05-09T23:59") == 0
    assert tick_at(pm, clock, "2026-05-10T00:00") == 1
    assert messages(notifier, "role:manager") == ["投诉WY-2026-000001处理后3天内未回访，请督促运营管理部"]
    assert deadline(pm, case, "revisit")["status"] == "breached"
    assert do(pm, case, "revisit", SATISFIED, "operations_liu").status == "completed"
    assert pm.replay(case.instance_id).consistent is True


def test_dissatisfied_owner_is_handled_again_at_most_twice(pm, clock, notifier):
    case = start(pm, clock)
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    do(pm, case, "record", RECORDED, "front_desk_wang")
    with pytest.raises(InvalidInput) as err:
        do(pm, case, "revisit", dict(SATISFIED, rating="dissatisfied"))
    assert set(err.value.field_errors) == {"owner_opinion"}
    unhappy = dict(SATISFIED, rating="dissatisfied", owner_opinion="灯还是忽明忽暗")
    do(pm, case, "revisit", unhappy, "operations_liu")
    assert roles(pm, case) == {"handle": "department"}      # first re-handling
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    record_and_revisit(pm, case, unhappy)
    assert roles(pm, case) == {"handle": "department"}      # second re-handling
    do(pm, case, "handle", HANDLED, "engineering_zhao")
    done = record_and_revisit(pm, case, unhappy)
    assert done.status == "completed"                        # the bound is reached
    assert messages(notifier, "role:manager") == ["投诉WY-2026-000001经两次重新处理，业主仍不满意：灯还是忽明忽暗"]
    handled = [e for e in pm.history(case.instance_id)
               if e["kind"] == "task_completed" and e["payload"]["task"] == "handle"]
    assert len(handled) == 3
    assert pm.replay(case.instance_id).consistent is True


# ----------------------------------------------------------------------------- holidays


def test_limits_across_qingming(pm, clock):
    # received Thu 04-02: 2 days -> Sat 04-04 (rest day), Qingming 04-05/06 -> Tue 04-07;
    # important, 3 days -> Sun 04-05 (holiday) -> Tue 04-07
    minor = start(pm, clock, when="2026-04-02T10:00", received_at="2026-04-02T09:50")
    assert deadline(pm, minor, "resolve")["last_day"] == "2026-04-07"
    important = start(pm, clock, when="2026-04-02T10:00", received_at="2026-04-02T09:50", management_fault=True)
    assert deadline(pm, important, "resolve")["last_day"] == "2026-04-07"
    # handled Fri 04-03: revisit within 3 days -> Mon 04-06 (holiday) -> Tue 04-07
    clock.set(at("2026-04-03T11:00"))
    do(pm, minor, "handle", HANDLED, "engineering_zhao")
    assert deadline(pm, minor, "revisit")["last_day"] == "2026-04-07"
    assert tick_at(pm, clock, "2026-04-07T23:59") == 1       # only the record limit (04-03) has passed
    assert fired(pm, minor) == ["record_passed"]


def test_limits_on_make_up_working_days_around_mid_autumn(pm, clock):
    # received Fri 09-18: 2 days -> Sun 09-20, a make-up working day: not rolled forward
    case = start(pm, clock, when="2026-09-18T10:00", received_at="2026-09-18T09:00")
    assert deadline(pm, case, "resolve")["last_day"] == "2026-09-20"
    # received Thu 09-24: 2 days -> Sat 09-26 (rest day) -> Sun 09-27 (rest day) -> Mon 09-28
    case = start(pm, clock, when="2026-09-24T10:00", received_at="2026-09-24T09:00")
    assert deadline(pm, case, "resolve")["last_day"] == "2026-09-28"
