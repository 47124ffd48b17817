"""Promise loops (承诺答复, 003:235): "到承诺的时间一定要给对方答复，直到彻底解决".

The fixture process `promise` (tests/fixtures/promise): the first answer either resolves the
complaint or promises a time (`deadline.start` with `until` = the promised moment, at most 3
rounds); at that time staff answer again — resolved, or a new promised time (a new round); a
promise not answered in time is supervised; unresolved after the third round the manager takes
it over. Through the real service with a FixedClock, across National Day 2026."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.cli import cli
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, copy_fixture, open_task
from webapp import sign_in

INTAKE = {"subject": "宽带频繁掉线", "contact": "13800000000"}


def at(text):
    return parse_instant(text)


@pytest.fixture
def promise_dir(tmp_path):
    return copy_fixture(tmp_path, "promise")


@pytest.fixture
def svc(service, promise_dir):
    service.deploy([promise_dir])
    return service


def promise(svc, case):
    return next(d for d in svc.show(case.instance_id)["deadlines"] if d["name"] == "promise")


def answer(svc, clock, case, task, when, promised=None, user="reception"):
    clock.set(at(when))
    data = {"answer": "正在排查线路", "resolved": promised is None}
    if promised:
        data["promised_at"] = promised
    return svc.complete_task(open_task(svc, case.instance_id, task)["task_id"], user, data)


def starts(svc, case):
    """The deadline.start records of the case's event log, oldest first."""
    return [e["payload"]["outputs"] for e in svc.history(case.instance_id)
            if e["kind"] == "handler_called" and e["payload"].get("handler") == "deadline.start"]


def three_rounds(svc, clock):
    """Round 1 answered in time, round 2 runs out over National Day (supervised), round 3 open."""
    clock.set(at("2026-09-29T09:00"))
    case = svc.start("promise", INTAKE, "reception")
    answer(svc, clock, case, "first_reply", "2026-09-29T09:30", promised="2026-09-30T17:00")
    answer(svc, clock, case, "answer", "2026-09-30T15:00", promised="2026-10-02T10:00")
    clock.set(at("2026-10-02T10:00"))
    assert svc.tick()["timers_fired"] == 1
    answer(svc, clock, case, "answer", "2026-10-02T11:00", promised="2026-10-08T10:00")
    return case


def test_each_new_promise_is_a_round_and_the_earlier_rounds_stay_in_the_log(svc, clock):
    case = three_rounds(svc, clock)
    limit = promise(svc, case)
    assert limit["round"] == 3 and limit["status"] == "open"
    assert limit["unit"] == "at" and limit["due"] == "2026-10-08T02:00:00+00:00"
    records = starts(svc, case)
    assert [r["round"] for r in records] == [1, 2, 3]
    assert [r["rounds_left"] for r in records] == [2, 1, 0] and {r["max_rounds"] for r in records} == {3}
    assert "previous" not in records[0]
    # round 1 was answered (a new promise) before its promised 09-30 17:00: met, when answered
    assert records[1]["previous"] == {"round": 1, "due": "2026-09-30T09:00:00+00:00", "status": "met",
                                      "at": "2026-09-30T07:00:00+00:00"}
    # round 2's promised 10-02 10:00 (a holiday: a promise is a moment, holidays included) passed
    assert records[2]["previous"] == {"round": 2, "due": "2026-10-02T02:00:00+00:00", "status": "breached",
                                      "at": "2026-10-02T02:00:00+00:00"}


def test_a_promised_moment_is_reached_at_that_minute_on_a_holiday(svc, clock):
    clock.set(at("2026-09-30T16:00"))
    case = svc.start("promise", INTAKE, "reception")
    answer(svc, clock, case, "first_reply", "2026-09-30T16:10", promised="2026-10-03T09:30")
    clock.set(at("2026-10-03T09:29"))                          # National Day, a minute before
    assert svc.tick()["timers_fired"] == 0
    assert promise(svc, case)["status"] == "open"
    assert not [t for t in svc.list_tasks(instance_id=case.instance_id) if t["task"] == "supervise"]
    clock.set(at("2026-10-03T09:30"))
    assert svc.tick()["timers_fired"] == 1
    assert promise(svc, case)["status"] == "breached"
    assert open_task(svc, case.instance_id, "supervise")["role"] == "manager"
    open_task(svc, case.instance_id, "answer")                  # still to be answered


def test_after_the_last_round_allowed_the_manager_takes_over(svc, clock):
    case = three_rounds(svc, clock)
    answer(svc, clock, case, "answer", "2026-10-08T09:00", promised="2026-10-09T10:00")
    task = open_task(svc, case.instance_id, "escalate")
    assert task["role"] == "manager"
    assert not [t for t in svc.list_tasks(instance_id=case.instance_id) if t["task"] == "answer"]
    assert promise(svc, case)["round"] == 3                    # no fourth round was started
    clock.set(at("2026-10-08T09:30"))
    svc.complete_task(task["task_id"], "manager", {"note": "转网络部联合处理"})
    svc.complete_task(open_task(svc, case.instance_id, "supervise")["task_id"], "manager", {"note": "已督办"})
    limit = promise(svc, case)
    assert limit["status"] == "met" and svc.show(case.instance_id)["status"] == "completed"


def test_resolved_in_a_later_round_ends_the_loop(svc, clock):
    clock.set(at("2027-02-04T09:00"))
    case = svc.start("promise", INTAKE, "reception")
    answer(svc, clock, case, "first_reply", "2027-02-04T09:10", promised="2027-02-05T17:00")
    answer(svc, clock, case, "answer", "2027-02-05T16:00", promised="2027-02-09T10:00")   # Spring Festival
    answer(svc, clock, case, "answer", "2027-02-09T09:59")
    limit = promise(svc, case)
    assert (limit["round"], limit["status"]) == (2, "met")
    assert svc.show(case.instance_id)["status"] == "completed"


def test_a_promised_time_not_in_the_future_is_refused_and_nothing_changes(svc, clock):
    clock.set(at("2026-09-29T09:00"))
    case = svc.start("promise", INTAKE, "reception")
    answer(svc, clock, case, "first_reply", "2026-09-29T09:30", promised="2026-09-30T17:00")
    before = len(svc.history(case.instance_id))
    for promised in ("2026-09-30T10:00", "2026-09-30T09:00"):          # earlier than now; exactly now
        with pytest.raises(InvalidInput) as err:
            answer(svc, clock, case, "answer", "2026-09-30T10:00", promised=promised)
        said = err.value.text("zh")
        assert "「下次承诺答复时间」须晚于现在（2026-09-30 10:00）" in said, said
    assert len(svc.history(case.instance_id)) == before
    limit = promise(svc, case)
    assert (limit["round"], limit["due"]) == (1, "2026-09-30T09:00:00+00:00")
    open_task(svc, case.instance_id, "answer")


def test_the_handler_refuses_a_past_promise_as_an_incident_naming_the_moment(service, promise_dir, clock):
    form = promise_dir / "forms" / "promise" / "answer.json"
    form.write_text(form.read_text(encoding="utf-8").replace(', "x-future": true', ""), encoding="utf-8")
    service.deploy([promise_dir])
    clock.set(at("2026-09-29T09:00"))
    case = service.start("promise", INTAKE, "reception")
    answer(service, clock, case, "first_reply", "2026-09-29T09:30", promised="2026-09-29T08:00")
    incidents = service.show(case.instance_id)["incidents"]
    assert len(incidents) == 1 and "2026-09-29T08:00:00+08:00" in incidents[0]["message"]
    assert "is not after now" in incidents[0]["message"]
    assert not [d for d in service.show(case.instance_id)["deadlines"] if d["name"] == "promise"]


def test_validate_checks_the_bound_and_until(service, promise_dir):
    bpmn = promise_dir / "promise.bpmn"
    text = bpmn.read_text(encoding="utf-8")
    bound = '<spiffworkflow:parameter id="max_rounds" type="any" value=\'3\' />'
    assert bound in text
    for value, said in (("0", "max_rounds 0 must be a whole number of at least 1"),
                        ("2.5", "max_rounds 2.5 must be a whole number of at least 1")):
        bpmn.write_text(text.replace(bound, bound.replace("'3'", f"'{value}'")), encoding="utf-8")
        messages = [p.message for p in service.validate([promise_dir]).problems]
        assert any(said in m for m in messages), messages
    both = bound + '<spiffworkflow:parameter id="unit" type="any" value=\'"days"\' />'
    bpmn.write_text(text.replace(bound, both), encoding="utf-8")
    messages = [p.message for p in service.validate([promise_dir]).problems]
    assert any("'until' (a promised moment) replaces 'unit'" in m for m in messages), messages
    bpmn.write_text(text, encoding="utf-8")
    assert not service.validate([promise_dir]).problems


def test_the_case_page_shows_the_round_and_the_rounds(svc, clock):
    roles = load_roles(PROCESSES)
    app = create_app(svc, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="test", testing=True)
    clock.set(at("2026-09-29T09:00"))
    single = svc.start("promise", INTAKE, "reception")
    answer(svc, clock, single, "first_reply", "2026-09-29T09:05", promised="2026-10-30T17:00")
    case = three_rounds(svc, clock)
    client = sign_in(app.test_client(), "reception")
    page = client.get(f"/cases/{case.case_number}").get_data(as_text=True)
    block = re.search(r'<div class="rounds" data-deadline="promise">(.*?)</div>', page, re.S).group(1)
    assert "承诺答复时间" in block and "第 3 轮（最多 3 轮）" in block
    items = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li)).strip() for li in re.findall(r"<li.*?</li>", block, re.S)]
    assert len(items) == 3, items
    assert items[0].startswith("第 1 轮：承诺 2026-09-30 17:00") and "2026-09-30 15:00 已答复" in items[0]
    assert items[1].startswith("第 2 轮：承诺 2026-10-02 10:00") and "2026-10-02 10:00 超期未答复" in items[1]
    assert items[2].startswith("第 3 轮：承诺 2026-10-08 10:00") and "进行中" in items[2]
    page = client.get(f"/cases/{single.case_number}").get_data(as_text=True)
    assert 'class="rounds"' not in page and "第 1 轮" not in page           # one round: no list
    client.get("/lang/en")
    page = client.get(f"/cases/{case.case_number}").get_data(as_text=True)
    block = re.search(r'<div class="rounds" data-deadline="promise">(.*?)</div>', page, re.S).group(1)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", block))
    assert "round 3 (at most 3)" in text and "Round 2: promised 2026-10-02 10:00 · 2026-10-02 10:00 not answered in time" in text, text


def test_show_gives_the_round(svc, clock, db_url, chain_key_env):
    case = three_rounds(svc, clock)
    runner = CliRunner(env=chain_key_env)
    result = runner.invoke(cli, ["--db", db_url, "--now", "2026-10-02T12:00", "show", case.case_number])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.strip().startswith("promise"))
    assert "round 3" in line and "a fixed moment" in line, line
    result = runner.invoke(cli, ["--db", db_url, "--now", "2026-10-02T12:00", "show", case.case_number, "--json"])
    assert result.exit_code == 0, result.output
    assert [d["round"] for d in json.loads(result.output)["deadlines"]] == [3]
