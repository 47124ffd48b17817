"""Time limits declared in BPMN, through the service layer with a controlled clock.

The fixture process `limits` follows the food-and-drug complaint rules (seed 004:148-150):
decide on acceptance within 5 days of receipt, or the complaint is deemed accepted on the
5th day; reply within 60 days of acceptance, extendable by at most 30 days with approval
given before the 60 run out (complainant told); appraisal time is not counted (004:138)."""

from __future__ import annotations

import json

import pytest

from complaintflow.engine.calendar import BusinessCalendar
from complaintflow.engine.clock import parse_instant
from complaintflow.engine.service import ComplaintService
from conftest import TEST_CHAIN_KEY, copy_fixture, open_task

INTAKE = {"subject": "奶粉中有异物", "contact": "13900000000"}

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def limits_dir(tmp_path):
    return copy_fixture(tmp_path, "limits")


@pytest.fixture
def svc(service, limits_dir):
    service.deploy([limits_dir])
    return service


def at(text):
    return parse_instant(text)


def deadline(svc, case, name):
    return next(d for d in svc.show(case.instance_id)["deadlines"] if d["name"] == name)


def do(svc, case, task, data, user="handler_wang"):
    return svc.complete_task(open_task(svc, case.instance_id, task)["task_id"], user, data)


def accept_on_time(svc, clock, case):
    do(svc, case, "decide", {"decision": "accept"})
    return deadline(svc, case, "reply")


def test_deemed_acceptance_on_the_fifth_day_across_national_day(svc, clock):
    clock.set(at("2026-09-28T10:00"))                        # Monday before National Day
    case = svc.start("limits", INTAKE, "reception")
    accept = deadline(svc, case, "accept")
    # 5 days end on Sat 10-03, a holiday: rolled forward to Thu 10-08, the first working day
    assert accept["last_day"] == "2026-10-08" and accept["due"] == "2026-10-08T16:00:00+00:00"
    assert accept["rule"].startswith("收到之日起5日内") and accept["seed"].startswith("004:148")
    assert accept["status"] == "open" and accept["provisional"] is False
    assert open_task(svc, case.instance_id, "decide")["due"] == "2026-10-08T16:00:00+00:00"

    clock.set(at("2026-10-08T23:59"))
    assert svc.tick()["timers_fired"] == 0
    clock.set(at("2026-10-09T00:00"))
    assert svc.tick()["timers_fired"] == 1
    shown = svc.show(case.instance_id)
    assert shown["legal_state"] == "deemed_accepted"
    accept = deadline(svc, case, "accept")
    assert accept["status"] == "breached" and accept["breached_at"] == "2026-10-08T16:00:00+00:00"
    assert [t["task"] for t in shown["open_tasks"]] == ["handle"]
    # the 60 days count from the day of (deemed) acceptance: 10-08 + 60 = Mon 12-07
    assert deadline(svc, case, "reply")["last_day"] == "2026-12-07"
    assert svc.replay(case.instance_id).consistent is True


def test_acceptance_in_time_is_met_and_the_reply_counts_from_it(svc, clock):
    clock.set(at("2026-03-02T09:00"))
    case = svc.start("limits", INTAKE, "reception")
    clock.set(at("2026-03-04T11:00"))
    reply = accept_on_time(svc, clock, case)
    assert deadline(svc, case, "accept")["status"] == "met"
    assert reply["last_day"] == "2026-05-06"                 # 03-04 + 60 = 05-03 (holiday) -> 05-06
    assert svc.show(case.instance_id)["legal_state"] is None


def test_appraisal_time_is_not_counted_and_timers_are_rearmed(svc, clock):
    clock.set(at("2026-03-02T09:00"))
    case = svc.start("limits", INTAKE, "reception")
    reply = accept_on_time(svc, clock, case)
    assert reply["last_day"] == "2026-05-06"                 # 03-02 + 60 = 05-01, Labour Day: rolled to 05-06
    before = deadline(svc, case, "reply")

    clock.set(at("2026-03-10T10:00"))
    do(svc, case, "handle", {"outcome": "appraisal"})
    paused = deadline(svc, case, "reply")
    assert paused["status"] == "paused" and paused["paused_since"] == "2026-03-10T02:00:00+00:00"
    clock.set(at(before["due"]))                              # the old limit passes during the appraisal
    assert svc.tick()["timers_fired"] == 0

    clock.set(at("2026-05-20T15:00"))                         # appraisal took 71 days
    do(svc, case, "appraisal", {"note": "检测报告已出"})
    after = deadline(svc, case, "reply")
    assert after["status"] == "open" and after["paused_days"] == 71
    assert after["last_day"] == "2026-07-13"                  # 05-01 (before rolling) + 71 = Sat 07-11 -> Mon 07-13
    assert svc.show(case.instance_id)["next_due"] is not None

    clock.set(at("2026-07-13T23:00"))
    svc.tick()
    assert "supervise" not in [t["task"] for t in svc.list_tasks(instance_id=case.instance_id)]
    clock.set(at("2026-07-14T00:00"))
    svc.tick()
    assert open_task(svc, case.instance_id, "supervise")["role"] == "manager"
    assert deadline(svc, case, "reply")["status"] == "breached"
    assert svc.replay(case.instance_id).consistent is True


def test_extension_needs_approval_has_a_cap_and_tells_the_complainant(svc, clock, notifier):
    clock.set(at("2026-03-02T09:00"))
    case = svc.start("limits", INTAKE, "reception")
    reply = accept_on_time(svc, clock, case)
    clock.set(at("2026-04-20T10:00"))

    do(svc, case, "handle", {"outcome": "extend"})
    assert open_task(svc, case.instance_id, "approve_extension")["role"] == "leadership_group"
    do(svc, case, "approve_extension", {"approved": True, "days": 30}, user="leader_li")
    extended = deadline(svc, case, "reply")
    assert extended["extended_by"] == 30 and extended["last_day"] == "2026-06-01"   # 05-01 + 30 = Sun 05-31 -> Mon 06-01
    assert notifier.sent[-1]["kind"] == "complainant" and "正在办理" in notifier.sent[-1]["message"]

    told = len(notifier.sent)
    do(svc, case, "handle", {"outcome": "extend"})
    do(svc, case, "approve_extension", {"approved": True, "days": 1}, user="leader_li")
    refused = [e for e in svc.history(case.instance_id) if e["kind"] == "handler_called"
               and e["payload"]["handler"] == "deadline.extend"][-1]["payload"]["outputs"]
    assert refused["granted"] is False and "at most 90 days in total" in refused["reason"]
    assert deadline(svc, case, "reply")["extended_by"] == 30 and len(notifier.sent) == told

    do(svc, case, "handle", {"outcome": "extend"})
    do(svc, case, "approve_extension", {"approved": False, "days": 5}, user="leader_li")
    assert deadline(svc, case, "reply")["extended_by"] == 30
    assert reply["due"] != extended["due"]


def test_an_extension_approved_after_the_limit_ran_out_is_refused(svc, clock):
    clock.set(at("2026-03-02T09:00"))
    case = svc.start("limits", INTAKE, "reception")
    reply = accept_on_time(svc, clock, case)
    clock.set(at(reply["due"]))
    svc.tick()                                                # breach noticed, supervision opened
    do(svc, case, "handle", {"outcome": "extend"})
    do(svc, case, "approve_extension", {"approved": True, "days": 10}, user="leader_li")
    outputs = [e for e in svc.history(case.instance_id) if e["kind"] == "handler_called"
               and e["payload"]["handler"] == "deadline.extend"][-1]["payload"]["outputs"]
    assert outputs["granted"] is False and "after the limit ran out" in outputs["reason"]


def test_reminder_one_working_day_before(svc, clock, notifier):
    clock.set(at("2026-03-02T09:00"))
    case = svc.start("limits", INTAKE, "reception")
    assert accept_on_time(svc, clock, case)["last_day"] == "2026-05-06"   # Wed
    clock.set(at("2026-05-05T23:59"))
    svc.tick()
    assert "reminder" not in [m["message"] for m in notifier.sent]
    clock.set(at("2026-05-06T00:00"))                         # the start of the last working day
    svc.tick()
    assert notifier.sent[-1]["to"] == "role:handler" and "还剩一个工作日" in notifier.sent[-1]["message"]
    assert deadline(svc, case, "reply")["status"] == "open"   # a reminder is not a breach


def test_provisional_deadlines_are_recomputed_when_the_year_is_published(db_url, clock, registry, notifier,
                                                                           limits_dir, tmp_path):
    clock.set(at("2026-12-28T10:00"))
    before = ComplaintService(db_url, clock=clock, handlers=registry, notifier=notifier,
                              calendar=BusinessCalendar(), chain_key=TEST_CHAIN_KEY)
    before.deploy([limits_dir])
    case = before.start("limits", INTAKE, "reception")
    accept = deadline(before, case, "accept")
    assert accept["provisional"] is True and accept["last_day"] == "2027-01-04"   # 01-02 Sat rolls to Mon
    (task,) = before.inbox(roles={"handler"}).tasks
    assert (task["task"], task["due"], task["provisional"]) == ("decide", "2027-01-04T16:00:00+00:00", True)

    published = tmp_path / "calendar.json"       # the operator enters the 2027 arrangement
    published.write_text(json.dumps({"years": {"2027": {"official": True, "holidays": {"2027-01-04": "元旦调休"}}}}),
                         encoding="utf-8")
    after = ComplaintService(db_url, clock=clock, handlers=registry, notifier=notifier,
                             calendar=BusinessCalendar.from_file(published), chain_key=TEST_CHAIN_KEY)
    result = after.recompute_provisional()
    assert result["cases_changed"] == 1
    change = result["changes"][0]["changes"]["accept"]
    assert change["provisional"] is False and change["to"] == "2027-01-05T16:00:00+00:00"
    accept = deadline(after, case, "accept")
    assert accept["provisional"] is False and accept["last_day"] == "2027-01-05"
    (task,) = after.inbox(roles={"handler"}).tasks             # the open task's due time moved with it
    assert (task["task"], task["due"], task["provisional"]) == ("decide", "2027-01-05T16:00:00+00:00", False)
    assert [e["kind"] for e in after.history(case.instance_id)][-1] == "deadlines_recomputed"
    assert after.recompute_provisional()["cases_changed"] == 0

    clock.set(at("2027-01-05T00:00"))                         # the old due moment: re-armed, nothing fires
    assert after.tick()["timers_fired"] == 0
    clock.set(at("2027-01-06T00:00"))
    assert after.tick()["timers_fired"] == 1
    assert after.show(case.instance_id)["legal_state"] == "deemed_accepted"
    assert after.replay(case.instance_id).consistent is True


def test_a_designer_changes_a_limit_in_the_xml_only(svc, clock, limits_dir):
    """医保办 (000:253-254): reply in 10 working days, extendable with the leadership group's
    approval to at most 20. Same process, limits edited in the BPMN, deployed as version 2."""
    clock.set(at("2026-03-02T09:00"))
    old_case = svc.start("limits", INTAKE, "reception")
    path = limits_dir / "limits.bpmn"
    xml = path.read_text(encoding="utf-8")
    old_limit = 'value=\'"days"\' /><spiffworkflow:parameter id="amount" type="any" value="60"'
    xml = xml.replace(old_limit, old_limit.replace('"days"', '"workdays"').replace('"60"', '"10"'))
    xml = xml.replace('id="max_total" type="any" value="90"', 'id="max_total" type="any" value="20"')
    assert xml.count('value="10"') == 2
    path.write_text(xml, encoding="utf-8")
    (v2,) = svc.deploy([limits_dir])
    assert v2.version == 2 and v2.created

    new_case = svc.start("limits", INTAKE, "reception")
    for case in (old_case, new_case):
        do(svc, case, "decide", {"decision": "accept"})
    assert deadline(svc, old_case, "reply")["unit"] == "days"
    new = deadline(svc, new_case, "reply")
    assert (new["unit"], new["amount"], new["last_day"]) == ("workdays", 10, "2026-03-16")

    do(svc, new_case, "handle", {"outcome": "extend"})
    do(svc, new_case, "approve_extension", {"approved": True, "days": 10}, user="leader_li")
    assert deadline(svc, new_case, "reply")["last_day"] == "2026-03-30"
    do(svc, new_case, "handle", {"outcome": "extend"})
    do(svc, new_case, "approve_extension", {"approved": True, "days": 1}, user="leader_li")
    assert deadline(svc, new_case, "reply")["extended_by"] == 10        # capped at 20 working days in total


def test_show_lists_every_deadline_of_the_case(svc, clock):
    clock.set(at("2026-03-02T09:00"))
    case = svc.start("limits", INTAKE, "reception")
    accept_on_time(svc, clock, case)
    names = [(d["name"], d["status"]) for d in svc.show(case.instance_id)["deadlines"]]
    assert names == [("accept", "met"), ("reply", "open")]


def test_validate_checks_deadline_declarations(service, limits_dir):
    path = limits_dir / "limits.bpmn"
    xml = path.read_text(encoding="utf-8")
    xml = xml.replace('deadlines["reply.remind"]', 'deadlines["replly"]', 1)
    xml = xml.replace("""value='"days"'""", """value='"weeks"'""", 1)
    path.write_text(xml, encoding="utf-8")
    messages = [p.message for p in service.validate([limits_dir]).problems]
    assert any("waits for deadline 'replly', which no deadline.start" in m for m in messages)
    assert any("unit \"weeks\" is not one of" in m for m in messages)


def test_a_limit_restarted_in_the_step_its_timer_fired_is_open_with_its_new_due(service, tmp_path, clock):
    # A new round of the same limit (e.g. chasing every N days) started by the path the
    # limit's own timer opened: the tick must not mark the new round breached.
    folder = copy_fixture(tmp_path, "limits")
    bpmn = folder / "limits.bpmn"
    text = bpmn.read_text(encoding="utf-8")
    restart = ('<spiffworkflow:parameter id="name" type="any" value=\'"reply"\' /><spiffworkflow:parameter id="unit" '
               'type="any" value=\'"days"\' /><spiffworkflow:parameter id="amount" type="any" value="60" />'
               '<spiffworkflow:parameter id="from" type="any" value=\'accept_limit["last_day"]\' />')
    assert restart in text
    bpmn.write_text(text.replace(restart, restart.replace('value=\'"reply"\'', 'value=\'"accept"\'')
                                 .replace('value=\'accept_limit["last_day"]\'', "value='None'")), encoding="utf-8")
    service.deploy([folder])
    clock.set(at("2026-09-28T10:00"))
    case = service.start("limits", INTAKE, "reception")
    assert deadline(service, case, "accept")["last_day"] == "2026-10-08"
    clock.set(at("2026-10-09T00:00"))                      # the first round runs out; the path restarts it
    assert service.tick()["timers_fired"] >= 1
    again = deadline(service, case, "accept")
    assert again["status"] == "open" and again["breached_at"] is None
    assert again["last_day"] == "2026-12-08"               # 60 days counted from the tick, 10-09
