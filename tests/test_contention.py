"""Where two actors meet: two users on one task, a user and the scheduler, several ticks,
a slow outside system — each with real concurrent processes on one database (SQLite and
PostgreSQL). A collision is a clean conflict that names who won; nothing is lost, doubled
or left locked; work the system does itself never dies from one case.

Collisions are made certain, not hoped for: `Gate` (concurrency.py) holds each colliding
process inside a handler until all of them have loaded the case, then lets them write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput
from complaintflow.engine.models import Event, HumanTask
from concurrency import INTAKE, MINI, TEST_KEY, Gate, Workers, _service
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

TESTS = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "complaintflow")


@pytest.fixture
def gate(tmp_path):
    return Gate(tmp_path / "gate")


@pytest.fixture
def svc(db_url):
    service = _service(db_url)
    service.deploy([MINI, PROCESSES / "enterprise_customer.bpmn"])
    return service


@pytest.fixture
def workers(request, db_url, gate):
    made = []

    def make(n, **kw):
        w = Workers(n, db_url, gate, **kw)
        made.append(w)
        return w
    yield make
    for w in made:
        w.close()


def events(svc, instance_id, kind):
    with svc.sessions() as s:
        return list(s.execute(select(Event).where(Event.instance_id == instance_id, Event.kind == kind)).scalars())


def completed_review(svc, instance_id):
    with svc.sessions() as s:
        return s.execute(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                 HumanTask.task_spec == "review")).scalar_one()


def test_two_processes_completing_one_task_one_wins_the_other_is_told_who(svc, workers, gate):
    w = workers(2)
    for _ in range(4):
        case = svc.start("mini", INTAKE, "alice")
        gate.block(case.instance_id)
        task_id = case.open_tasks[0]["task_id"]
        for i in range(2):
            w.send(i, "complete", task_id, f"user{i}", {"verdict": "ok"})
        gate.wait_arrivals(case.instance_id, 2, workers=w)       # both have loaded the case and run the engine
        gate.open(case.instance_id)
        results = w.results(2)
        assert sorted(r["outcome"] for r in results) == ["conflict", "ok"], results
        winner = completed_review(svc, case.instance_id).completed_by
        (lost,) = [r for r in results if r["outcome"] == "conflict"]
        assert lost["by"] == winner
        assert f"already completed by {winner} at 2026-05-06 10:00; nothing was changed" in lost["message"]
        assert len(events(svc, case.instance_id, "task_completed")) == 1
        assert svc.replay(case.instance_id).consistent is True


def test_two_browsers_completing_one_task_the_loser_sees_a_conflict_page(svc, workers, gate):
    w = workers(2)
    case = svc.start("mini", INTAKE, "alice")
    gate.block(case.instance_id)
    task_id = case.open_tasks[0]["task_id"]
    for i in range(2):
        w.send(i, "web_complete", task_id, "reception", {"verdict": "ok"})
    gate.wait_arrivals(case.instance_id, 2, workers=w)
    gate.open(case.instance_id)
    results = [r["value"] for r in w.results(2)]
    statuses = sorted(r["status"] for r in results)
    assert statuses == [303, 409], [(r["status"], r["body"][:300]) for r in results]
    (page,) = [r["body"] for r in results if r["status"] == 409]
    name = load_users(DEMO_USERS).get("reception").name
    assert f"{name} 已于 2026-05-06 10:00 先行处理" in page and "Traceback" not in page
    assert len(events(svc, case.instance_id, "task_completed")) == 1


def test_a_user_and_the_scheduler_on_one_case_the_user_is_told_a_timer_fired(svc, workers, gate):
    case = svc.start("mini", dict(INTAKE, due_at="2026-05-06T12:00:00+08:00"), "alice")
    gate.block(case.instance_id)
    w = workers(2)
    w.send(0, "clock", "2026-05-06T13:00:00+08:00")
    w.results(1)
    w.send(0, "complete", case.open_tasks[0]["task_id"], "bob", {"verdict": "ok"})
    gate.wait_arrivals(case.instance_id, 1, workers=w)    # bob's action has loaded the case
    w.send(1, "tick", "2026-05-06T13:00:00+08:00")
    (ticked,) = w.results(1)                              # the tick is not held up by bob
    assert ticked["outcome"] == "ok" and ticked["value"]["timers_fired"] == 1, ticked
    gate.open(case.instance_id)
    (lost,) = w.results(1)
    assert lost["outcome"] == "conflict", lost
    assert "was changed by system at 2026-05-06 13:00 (a timer fired) while this action ran" in lost["message"]
    assert [t["task"] for t in svc.list_tasks(instance_id=case.instance_id)] == ["review", "supervise"]
    w.send(0, "complete", case.open_tasks[0]["task_id"], "bob", {"verdict": "ok"})   # bob tries again
    gate.open(case.instance_id)
    assert w.results(1)[0]["outcome"] == "ok"
    assert svc.replay(case.instance_id).consistent is True


def _cli(db_url, gate, *args):
    key = gate.dir / "key"
    if not key.exists():
        key.write_text(TEST_KEY.hex())
    env = dict(os.environ, COMPLAINTFLOW_DATABASE_URL=db_url, COMPLAINTFLOW_HANDLERS="support_handlers",
               PYTHONPATH=str(TESTS), CF_TEST_GATE=str(gate.dir), COMPLAINTFLOW_CHAIN_KEY_FILE=str(gate.dir / "key"))
    env.pop("COMPLAINTFLOW_NOW", None)
    return subprocess.Popen([CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_task_completed_while_another_completion_reads_stays_completed(svc, workers, gate):
    """Found by the crash run: user B's completion of one task read the case's open tasks,
    then user A completed another task of the case and committed, then B loaded the case as
    A left it. B's rows were from before A, so A's task still looked open, and B's sync
    marked it cancelled over A's acknowledged completion. Now B loses the race and is told
    who won; A's task stays completed, and B's task can be completed again."""
    case = svc.start("mini", INTAKE, "alice")
    svc.clock.set(parse_instant("2026-05-07T12:00:00+08:00"))
    svc.tick()                                  # the review is overdue: the manager supervises
    review = open_task(svc, case.instance_id, "review")
    supervise = open_task(svc, case.instance_id, "supervise")
    w = workers(1)
    w.send(0, "clock", "2026-05-07T12:30:00+08:00")
    assert w.results(1)[0]["outcome"] == "ok"
    w.send(0, "complete_held_after_read", supervise["task_id"], "bob", {"note": "督办"}, case.instance_id)
    gate.wait_arrivals(case.instance_id, 1, workers=w)      # bob has read the case's open tasks
    svc.clock.set(parse_instant("2026-05-07T12:10:00+08:00"))
    svc.complete_task(review["task_id"], "alice", {"verdict": "ok"})
    gate.open(case.instance_id)
    (bob,) = w.results(1)
    assert bob["outcome"] == "conflict" and bob["by"] == "alice", bob
    assert "nothing was changed" in bob["message"] or "未作任何更改" in bob["message"], bob
    with svc.sessions() as s:
        rows = {r.task_spec: r for r in s.execute(select(HumanTask).where(
            HumanTask.instance_id == case.instance_id)).scalars()}
    assert (rows["review"].status, rows["review"].completed_by) == ("completed", "alice")
    assert rows["supervise"].status == "open"
    assert [e.actor for e in events(svc, case.instance_id, "task_completed")] == ["alice"]
    svc.clock.set(parse_instant("2026-05-07T12:40:00+08:00"))
    svc.complete_task(supervise["task_id"], "bob", {"note": "督办"})
    assert svc.replay(case.instance_id).consistent is True


def test_two_cli_completions_of_one_task_exit_0_and_5_without_a_traceback(db_url, gate, tmp_path):
    first = _cli(db_url, gate, "deploy", str(MINI))
    assert first.wait() == 0, first.stderr.read()
    started = _cli(db_url, gate, "--now", "2026-05-06T09:00", "start", "mini", "--user", "alice",
                   "--data", json.dumps(INTAKE), "--json")
    out, err = started.communicate()
    assert started.returncode == 0, err
    case = json.loads(out)
    gate.block(case["instance_id"])
    task_id = case["open_tasks"][0]["task_id"]
    procs = [_cli(db_url, gate, "--now", "2026-05-06T10:00", "complete", task_id, "--user", f"user{i}",
                  "--data", '{"verdict": "ok"}') for i in range(2)]
    gate.wait_arrivals(case["instance_id"], 2)
    gate.open(case["instance_id"])
    done = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert sorted(code for code, _, _ in done) == [0, 5], done
    (loser,) = [err for code, _, err in done if code == 5]
    assert "Traceback" not in loser and loser.startswith("error: task 'Review'")
    assert "already completed by user" in loser and "nothing was changed" in loser


def test_two_users_claiming_one_task_at_once_exactly_one_holds_it(svc, workers):
    w = workers(2)
    for _ in range(12):
        case = svc.start("mini", INTAKE, "alice")
        task_id = case.open_tasks[0]["task_id"]
        for i in range(2):
            w.send(i, "claim", task_id, f"user{i}")
        results = w.results(2)
        assert sorted(r["outcome"] for r in results) == ["conflict", "ok"], results
        holder = next(r["value"] for r in results if r["outcome"] == "ok")
        lost = next(r for r in results if r["outcome"] == "conflict")
        assert f"was claimed by {holder}" in lost["message"]
        with svc.sessions() as s:
            assert s.get(HumanTask, task_id).claimed_by == holder


@pytest.mark.parametrize("ticks", [2, 3, 4])
def test_concurrent_ticks_all_succeed_and_fire_each_timer_once(svc, workers, ticks):
    cases = [svc.start("mini", dict(INTAKE, due_at="2026-05-06T12:00:00+08:00"), "alice") for _ in range(16)]
    w = workers(ticks)
    for i in range(ticks):
        w.send(i, "tick", "2026-05-06T13:00:00+08:00")
    results = w.results(ticks)
    assert [r["outcome"] for r in results] == ["ok"] * ticks, results
    assert all(r["value"]["failed"] == [] for r in results)
    assert sum(r["value"]["timers_fired"] for r in results) == len(cases)
    for case in cases:
        assert len(events(svc, case.instance_id, "timer_fired")) == 1
        assert [t["task"] for t in svc.list_tasks(instance_id=case.instance_id)] == ["review", "supervise"]
        assert svc.replay(case.instance_id).consistent is True


def test_cli_ticks_started_together_all_exit_0(db_url, svc, gate):
    cases = [svc.start("mini", dict(INTAKE, due_at="2026-05-06T12:00:00+08:00"), "alice") for _ in range(10)]
    procs = [_cli(db_url, gate, "--now", "2026-05-06T13:00", "tick", "--json") for _ in range(3)]
    done = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [code for code, _, _ in done] == [0, 0, 0], done
    assert sum(json.loads(out)["timers_fired"] for _, out, _ in done) == len(cases)
    for case in cases:
        assert len(events(svc, case.instance_id, "timer_fired")) == 1


def test_a_hung_gateway_on_one_case_does_not_stop_work_on_another(svc, workers, gate):
    """A registration whose SMS gateway hangs holds no lock: staff complete tasks on other
    cases meanwhile (before, on SQLite they waited 30 s and failed with `database is locked`)."""
    other = svc.start("enterprise_customer", dict(_ENTERPRISE, contact="13800000002"), "reception")
    task = open_task(svc, other.instance_id, "preliminary_check")
    w = workers(2)
    gate.block("13800000001")                      # this complainant's notice hangs
    w.send(0, "start", "enterprise_customer", dict(_ENTERPRISE, contact="13800000001"), "reception")
    gate.wait_arrivals("13800000001", 1, workers=w)           # the registration is inside the gateway call
    w.send(1, "complete", task["task_id"], "reception",
           {"outcome": "accepted", "severity": "general", "department": "品质部"})
    (done,) = w.results(1, timeout=25)             # returns while the gateway still hangs
    assert done["outcome"] == "ok", done
    gate.open("13800000001")
    (slow,) = w.results(1)
    assert slow["outcome"] == "ok" and slow["value"].startswith("KH-2026-"), slow


_ENTERPRISE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000",
               "category": "product_quality", "content": "新买的电水壶漏水",
               "promised_resolution_at": "2026-05-08T17:00:00+08:00"}


def test_a_handler_that_gives_no_answer_becomes_an_incident_and_can_be_retried(db_url, gate, monkeypatch):
    monkeypatch.setenv("CF_TEST_GATE", str(gate.dir))
    svc = _service(db_url, handler_timeout=30)
    svc.deploy([MINI])
    case = svc.start("mini", INTAKE, "alice")
    gate.block(case.instance_id)
    svc.handler_timeout = 0.5      # only for the call whose handler is held at the gate
    result = svc.complete_task(case.open_tasks[0]["task_id"], "bob", {"verdict": "ok"})
    assert result.status == "incident"
    assert "handler 'test.flaky' gave no answer within 0.5 s" in result.incidents[0]["message"]
    gate.open(case.instance_id)
    svc.handler_timeout = 30       # the retried handler answers; a loaded machine must not time it out
    svc.clock.advance(minutes=5)
    retried = svc.retry(case.instance_id, "bob")
    assert retried.status == "running" and [t["task"] for t in retried.open_tasks] == ["close"]
    assert svc.replay(case.instance_id).consistent is True


def test_an_action_dated_before_the_cases_last_event_is_refused(svc, gate, db_url):
    case = svc.start("mini", INTAKE, "alice")              # at 10:00
    before = len(svc.history(case.instance_id))
    svc.clock.set(parse_instant("2026-05-06T09:00:00+08:00"))
    with pytest.raises(InvalidInput, match="time only moves forward"):
        svc.complete_task(case.open_tasks[0]["task_id"], "bob", {"verdict": "ok"})
    with pytest.raises(InvalidInput, match="time only moves forward"):
        svc.send_message(case.instance_id, "customer_reply", {}, "bob")
    assert len(svc.history(case.instance_id)) == before
    proc = _cli(db_url, gate, "--now", "2026-05-06T09:30", "complete", case.open_tasks[0]["task_id"],
                "--user", "bob", "--data", '{"verdict": "ok"}')
    assert proc.wait(timeout=60) == 2
    assert "time only moves forward" in proc.stderr.read()
    assert len(svc.history(case.instance_id)) == before
