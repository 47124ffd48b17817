"""The event log (ordered, complete, tamper-evident) and replay from it."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from complaintflow.engine.models import Event
from conftest import open_task

INTAKE = {"subject": "退款未到账", "due_at": "2026-05-07T12:00:00+08:00"}


def run_full_case(svc, clock, switch):
    """review (handler fails) → retry → close → timer → message: every event kind."""
    case = svc.start("mini", INTAKE, "alice")
    clock.advance(days=2)
    svc.tick()
    svc.complete_task(open_task(svc, case.instance_id, "review")["task_id"], "bob", {"verdict": "ok"})
    switch.fail = False
    svc.retry(case.instance_id, "ops")
    svc.complete_task(open_task(svc, case.instance_id, "close")["task_id"], "bob", {"note": "结案"})
    svc.send_message(case.instance_id, "customer_reply", {"reply": "thanks"}, "carol")
    return case.instance_id


def test_history_records_who_did_what_when_with_what_data(mini, clock, switch):
    iid = run_full_case(mini, clock, switch)
    events = mini.history(iid)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["kind"] for e in events] == [
        "started", "handler_called", "timer_fired", "task_completed", "handler_called", "incident",
        "retry", "handler_called", "task_completed", "message_received"]
    started = events[0]
    assert started["actor"] == "alice" and started["at"] == "2026-05-06T01:00:00+00:00"
    assert started["payload"]["version"] == 1 and started["payload"]["data"]["subject"] == "退款未到账"
    number = events[1]["payload"]
    assert number == {"handler": "case_number.assign", "task": "number", "inputs": {"prefix": "MINI"},
                      "outputs": "MINI-2026-000001"}
    review = events[3]
    assert review["actor"] == "bob" and review["payload"]["data"] == {"verdict": "ok"}
    assert review["payload"]["name"] == "Review" and review["payload"]["role"] == "reception"
    assert events[4]["payload"]["error"] == "RuntimeError: upstream system unavailable"
    assert events[7]["payload"]["outputs"] == {"verdict_seen": "ok"}
    assert events[9]["actor"] == "carol" and events[9]["payload"]["payload"] == {"reply": "thanks"}


def test_replay_verify_rebuilds_the_stored_state_without_calling_handlers(mini, clock, switch):
    iid = run_full_case(mini, clock, switch)
    calls = switch.calls
    switch.fail = True                       # a handler call during replay would now fail loudly
    report = mini.replay(iid)
    assert report.consistent is True, report.first_difference
    assert report.replayed_until == 10
    assert switch.calls == calls
    assert report.state["completed"] is False          # the supervision task is still open
    assert [t["task"] for t in report.state["open_tasks"]] == ["supervise"]


def test_replay_until_shows_the_case_as_it_was(mini, clock, switch):
    iid = run_full_case(mini, clock, switch)
    after_timer = mini.replay(iid, until=3).state
    assert [t["task"] for t in after_timer["open_tasks"]] == ["review", "supervise"]
    after_incident = mini.replay(iid, until=4).state
    assert after_incident["errored_tasks"] == ["flaky"]
    assert after_incident["data"]["verdict"] == "ok"


def tamper(svc, statement):
    with svc.sessions() as s:
        s.execute(statement)
        s.commit()


def assert_inconsistent_at(report, event, words):
    assert report.consistent is False
    assert report.first_difference["event"] == event
    assert words in report.first_difference["reason"]


def test_tampered_event_is_found_at_its_position(mini, clock, switch):
    iid = run_full_case(mini, clock, switch)
    forged = {"task": "review", "name": "Review", "role": "reception", "data": {"verdict": "boom"}}
    tamper(mini, update(Event).where(Event.instance_id == iid, Event.seq == 4).values(payload=forged))
    assert_inconsistent_at(mini.replay(iid), 4, "changed after it was written")


def test_missing_event_is_found_at_its_position(mini, clock, switch):
    iid = run_full_case(mini, clock, switch)
    tamper(mini, delete(Event).where(Event.instance_id == iid, Event.seq == 7))
    assert_inconsistent_at(mini.replay(iid), 7, "missing")


def test_missing_last_event_is_found(mini, clock, switch):
    iid = run_full_case(mini, clock, switch)
    tamper(mini, delete(Event).where(Event.instance_id == iid, Event.seq == 10))
    assert_inconsistent_at(mini.replay(iid), 9, "differs from the stored state")


def test_rehashed_forgery_is_still_caught_by_the_state_check(mini, clock, switch):
    """Someone without the chain key rewrites a submission and recomputes the whole chain as
    an unkeyed one, passing it off as written before keyed chaining: the recorded state
    hashes no longer match what the forged log produces. (tests/test_tamper.py has the rest.)"""
    from complaintflow.engine.eventlog import GENESIS, event_digest
    iid = run_full_case(mini, clock, switch)
    with mini.sessions() as s:
        events = list(s.execute(select(Event).where(Event.instance_id == iid).order_by(Event.seq)).scalars())
        events[8].payload = dict(events[8].payload, data={"note": "forged"})
        prev = GENESIS
        for ev in events:
            ev.key_id = None
            ev.prev_hash = prev
            ev.hash = event_digest(prev, ev.seq, ev.step, ev.kind, ev.at, ev.actor, ev.task_id, ev.payload,
                                   ev.state_after)
            prev = ev.hash
        s.commit()
    report = mini.replay(iid)
    assert report.consistent is False
    assert report.first_difference["event"] == 9
