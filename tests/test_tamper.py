"""Tamper evidence against someone who can write the database (issue 9).

The event log is chained with a key the database does not hold, and `replay --verify` checks
the query side (task rows, deadlines, the case row) against the log. Forgeries here are made
the way a database writer would: SQL updates, with every hash recomputed that can be
recomputed without the key.
"""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from complaintflow.engine.eventlog import (GENESIS, ChainKeyError, event_digest, key_id, keyed_digest,
                                           load_chain_key)
from complaintflow.engine.models import Deadline, Event, HumanTask, Instance
from complaintflow.web.cli import cli
from conftest import PROCESSES, TEST_CHAIN_KEY, open_task

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}
OTHER_KEY = bytes(range(32))


@pytest.fixture
def ec(service):
    service.deploy([PROCESSES])
    return service


def do(svc, iid, task, user, data):
    return svc.complete_task(open_task(svc, iid, task)["task_id"], user, data)


def accepted_case(ec):
    """Registered by reception_li and accepted: one completed task, one open, the promise running."""
    case = ec.start("enterprise_customer", INTAKE, "reception_li")
    do(ec, case.instance_id, "preliminary_check", "reception_li",
       {"outcome": "accepted", "severity": "general", "department": "品质部"})
    return case


def answered_case(ec, clock):
    case = accepted_case(ec)
    clock.advance(days=1)
    do(ec, case.instance_id, "investigate", "dept_zhao", {"findings": "密封圈缺陷", "responsible_party": "company"})
    do(ec, case.instance_id, "agree_solution", "dept_zhao",
       {"solution_type": "replacement", "solution": "换新", "customer_agreed": True})
    do(ec, case.instance_id, "feedback", "reception_li", {"reply": "已为您换新", "reply_channel": "phone"})
    return case


def events_of(svc, s, iid):
    return list(s.execute(select(Event).where(Event.instance_id == iid).order_by(Event.seq)).scalars())


def sql(svc, statement):
    with svc.sessions() as s:
        s.execute(statement)
        s.commit()


def rechain(svc, iid, edit=None, *, key=None, key_name="keep", unkeyed=False, first=1):
    """Apply `edit` to the events, then recompute every link from event `first` on the way a
    database writer can: unkeyed SHA-256, or HMAC with a key of their own; and point the case
    row at the new head (a Core update, so the row version does not move)."""
    with svc.sessions() as s:
        events = events_of(svc, s, iid)
        if edit:
            edit(events)
        prev = events[first - 2].hash if first > 1 else GENESIS
        for ev in events[first - 1:]:
            ev.prev_hash = prev
            if unkeyed:
                ev.key_id = None
                ev.hash = event_digest(prev, ev.seq, ev.step, ev.kind, ev.at, ev.actor, ev.task_id, ev.payload,
                                       ev.state_after)
            else:
                if key_name != "keep":
                    ev.key_id = key_name
                ev.hash = keyed_digest(key, iid, prev, ev.seq, ev.step, ev.kind, ev.at, ev.actor, ev.task_id,
                                       ev.payload, ev.state_after)
            prev = ev.hash
        s.commit()
    sql(svc, update(Instance).where(Instance.id == iid).values(last_event_hash=prev))


def set_actor(seq, actor):
    def edit(events):
        events[seq - 1].actor = actor
    return edit


def seq_of(svc, iid, kind, **payload):
    for e in svc.history(iid):
        if e["kind"] == kind and all(e["payload"].get(k) == v for k, v in payload.items()):
            return e["seq"]
    raise AssertionError(f"no {kind} {payload}")


def _task_id(svc, iid, spec):
    with svc.sessions() as s:
        return s.execute(select(HumanTask.id).where(HumanTask.instance_id == iid,
                                                    HumanTask.task_spec == spec)).scalar_one()


def make_legacy(svc, iid):
    """Turn a case into what complaintflow wrote before schema 0004: no key_id, an unkeyed
    SHA-256 chain (the very function the old writer used)."""
    rechain(svc, iid, unkeyed=True)


def reasons(report):
    return [d["reason"] for d in report.differences] or [report.first_difference["reason"]]


# --- the chain ------------------------------------------------------------------------------

def test_an_untouched_case_verifies_with_every_event_keyed(ec, clock):
    case = answered_case(ec, clock)
    report = ec.replay(case.instance_id)
    assert report.consistent is True, report.first_difference
    assert report.notes == []                      # shipped handlers only: every summary field checked
    assert report.chain["keyed_events"] == report.events and report.chain["unkeyed_events"] == 0
    assert report.chain["key_id"] == key_id(TEST_CHAIN_KEY)
    assert report.chain["head"]["seq"] == report.events
    with ec.sessions() as s:
        assert {e.key_id for e in events_of(ec, s, case.instance_id)} == {key_id(TEST_CHAIN_KEY)}


def test_changed_actor_with_a_recomputed_unkeyed_chain_is_found(ec):
    """The measured attack of issue 9: an actor changed, the SHA-256 chain and the case's
    last_event_hash recomputed. The links are keyed now, so the event no longer matches."""
    case = accepted_case(ec)
    done = seq_of(ec, case.instance_id, "task_completed")
    with ec.sessions() as s:
        events = events_of(ec, s, case.instance_id)
        events[done - 1].actor = "mallory"
        prev = GENESIS
        for ev in events:
            ev.prev_hash = prev
            ev.hash = event_digest(prev, ev.seq, ev.step, ev.kind, ev.at, ev.actor, ev.task_id, ev.payload,
                                   ev.state_after)
            prev = ev.hash
        s.commit()
    sql(ec, update(Instance).where(Instance.id == case.instance_id).values(last_event_hash=prev))
    report = ec.replay(case.instance_id)
    assert report.consistent is False
    assert report.first_difference["event"] == 1
    assert "changed after it was written" in report.first_difference["reason"]


def test_changed_actor_passed_off_as_an_old_unkeyed_chain_is_found_by_the_task_row(ec):
    """The same edit, with the chain relabelled as written before keyed chaining: the chain
    holds, but the task row still says who really completed the task."""
    case = accepted_case(ec)
    done = seq_of(ec, case.instance_id, "task_completed")
    rechain(ec, case.instance_id, set_actor(done, "mallory"), unkeyed=True)
    report = ec.replay(case.instance_id)
    assert report.consistent is False
    assert report.chain["unprotected_events"] == report.events
    tid = _task_id(ec, case.instance_id, "preliminary_check")
    assert reasons(report) == [f"human_tasks row {tid} (task 'preliminary_check'): completed_by is "
                               f"'reception_li' but the log says 'mallory' (event {done})"]


def test_a_chain_recomputed_with_another_key_is_found(ec):
    case = accepted_case(ec)
    done = seq_of(ec, case.instance_id, "task_completed")
    # the forger's own key, named as theirs: not the key in use
    rechain(ec, case.instance_id, set_actor(done, "mallory"), key=OTHER_KEY, key_name=key_id(OTHER_KEY))
    report = ec.replay(case.instance_id)
    assert report.consistent is False and report.first_difference["event"] == 1
    assert "not verifiable with this key" in report.first_difference["reason"]
    # the forger's key under the real key's name: the links do not match
    rechain(ec, case.instance_id, key=OTHER_KEY, key_name=key_id(TEST_CHAIN_KEY))
    report = ec.replay(case.instance_id)
    assert report.consistent is False and report.first_difference["event"] == 1
    assert "changed after it was written" in report.first_difference["reason"]


def test_verifying_with_a_different_key_says_the_chain_is_not_verifiable_with_it(ec, make_service):
    case = accepted_case(ec)
    report = make_service(chain_key=OTHER_KEY).replay(case.instance_id)
    assert report.consistent is False
    assert report.first_difference["key"] == "not verifiable with this key"
    assert f"chained with key {key_id(TEST_CHAIN_KEY)}" in report.first_difference["reason"]
    assert report.chain["verifiable_with_key"] is False


def test_an_old_unkeyed_case_still_verifies_and_is_reported_as_unkeyed(ec):
    case = accepted_case(ec)
    make_legacy(ec, case.instance_id)
    report = ec.replay(case.instance_id)
    assert report.consistent is True, report.first_difference
    assert report.chain["keyed_events"] == 0
    assert report.chain["unkeyed_events"] == report.chain["unprotected_events"] == report.events
    assert "only unkeyed-hashed" in report.chain_summary


def test_an_old_case_continued_after_the_upgrade_is_covered_by_its_keyed_events(ec):
    case = accepted_case(ec)
    make_legacy(ec, case.instance_id)
    old = ec.replay(case.instance_id).events
    do(ec, case.instance_id, "investigate", "dept_zhao", {"findings": "密封圈缺陷", "responsible_party": "company"})
    do(ec, case.instance_id, "agree_solution", "dept_zhao",
       {"solution_type": "replacement", "solution": "换新", "customer_agreed": True})
    report = ec.replay(case.instance_id)
    assert report.consistent is True, report.first_difference
    assert report.chain["unkeyed_events"] == old and report.chain["keyed_events"] == report.events - old >= 2
    assert report.chain["unprotected_events"] == 0
    assert "cover them" in report.chain_summary

    # a keyed event relabelled as unkeyed cannot hide after a keyed one
    last = report.events
    rechain(ec, case.instance_id, unkeyed=True, first=last)
    report = ec.replay(case.instance_id)
    assert report.consistent is False and report.first_difference["event"] == last
    assert "unkeyed link after keyed events" in report.first_difference["reason"]

    # rewriting the unkeyed part means re-linking the first keyed event, which needs the key
    with ec.sessions() as s:
        events = events_of(ec, s, case.instance_id)
        events[0].actor = "mallory"
        prev = GENESIS
        for ev in events[:old]:
            ev.prev_hash = prev
            ev.hash = prev = event_digest(prev, ev.seq, ev.step, ev.kind, ev.at, ev.actor, ev.task_id, ev.payload,
                                          ev.state_after)
        events[old].prev_hash = prev
        s.commit()
    report = ec.replay(case.instance_id)
    assert report.consistent is False and report.first_difference["event"] == old + 1
    assert "changed after it was written" in report.first_difference["reason"]


def test_a_whole_case_passed_off_as_unkeyed_is_only_as_safe_as_the_database(ec):
    """The limit of keyed chaining (docs/architecture.md): a writer without the key can relabel
    every event of a case as written before keyed chaining, and keep the rows in step. The
    report then says every event is unprotected, which `--require-key` refuses."""
    case = accepted_case(ec)
    rechain(ec, case.instance_id, set_actor(1, "mallory"), unkeyed=True)
    sql(ec, update(Instance).where(Instance.id == case.instance_id).values(started_by="mallory"))
    report = ec.replay(case.instance_id)
    assert report.consistent is True
    assert report.chain["unprotected_events"] == report.events


def test_missing_key_file_is_refused_when_the_database_holds_keyed_events(ec, tmp_path):
    accepted_case(ec)
    with pytest.raises(ChainKeyError) as err:
        load_chain_key(ec.engine, tmp_path / "nowhere" / "chain_key")
    assert "does not exist" in str(err.value) and key_id(TEST_CHAIN_KEY) in str(err.value)
    assert not (tmp_path / "nowhere" / "chain_key").exists()


def test_the_key_file_is_made_on_first_start_private_and_kept(make_service, tmp_path):
    svc = make_service()                           # a database without keyed events
    path = tmp_path / "keys" / "chain_key"
    key = load_chain_key(svc.engine, path)
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_chain_key(svc.engine, path) == key
    path.write_text("not a key\n")
    with pytest.raises(ChainKeyError) as err:
        load_chain_key(svc.engine, path)
    assert "does not hold a chain key" in str(err.value)


# --- the query side ---------------------------------------------------------------------------

def test_changed_completed_by_is_found_with_its_row_and_field(ec):
    case = accepted_case(ec)
    tid = _task_id(ec, case.instance_id, "preliminary_check")
    done = seq_of(ec, case.instance_id, "task_completed")
    sql(ec, update(HumanTask).where(HumanTask.id == tid).values(completed_by="mallory"))
    report = ec.replay(case.instance_id)
    assert report.consistent is False
    assert report.first_difference["reason"] == (
        f"human_tasks row {tid} (task 'preliminary_check'): completed_by is 'mallory' but the log says "
        f"'reception_li' (event {done})")
    assert (report.first_difference["table"], report.first_difference["row"], report.first_difference["field"]) \
        == ("human_tasks", tid, "completed_by")


def test_a_task_marked_completed_that_is_open_is_found(ec):
    case = accepted_case(ec)
    tid = _task_id(ec, case.instance_id, "investigate")
    sql(ec, update(HumanTask).where(HumanTask.id == tid).values(status="completed", completed_by="dept_zhao"))
    report = ec.replay(case.instance_id)
    assert report.consistent is False
    fields = {(d["row"], d["field"]) for d in report.differences}
    assert fields == {(tid, "status"), (tid, "completed_by")}
    assert any(r.startswith(f"human_tasks row {tid} (task 'investigate'): status is 'completed' but the log says "
                            "'open'") for r in reasons(report))


def test_changed_deadline_status_is_found_with_its_row_and_field(ec, clock):
    case = accepted_case(ec)
    started = seq_of(ec, case.instance_id, "handler_called", handler="deadline.start")
    sql(ec, update(Deadline).where(Deadline.instance_id == case.instance_id).values(status="met"))
    report = ec.replay(case.instance_id)
    with ec.sessions() as s:
        row = s.execute(select(Deadline).where(Deadline.instance_id == case.instance_id)).scalar_one()
    assert report.consistent is False
    assert reasons(report) == [f"deadlines row {row.id} ('promised'): status is 'met' but the log says 'open' "
                               f"(event {started})"]


def test_a_met_limit_turned_breached_and_a_moved_due_time_are_found(ec, clock):
    case = answered_case(ec, clock)
    stopped = seq_of(ec, case.instance_id, "handler_called", handler="deadline.stop")
    assert ec.replay(case.instance_id).consistent is True
    with ec.sessions() as s:
        row = s.execute(select(Deadline).where(Deadline.instance_id == case.instance_id)).scalar_one()
    assert row.status == "met"
    sql(ec, update(Deadline).where(Deadline.id == row.id).values(status="breached", due_at=row.due_at.replace(day=7)))
    report = ec.replay(case.instance_id)
    assert report.consistent is False
    assert {d["field"] for d in report.differences} == {"status", "due_at"}
    assert (f"deadlines row {row.id} ('promised'): status is 'breached' but the log says 'met' (event {stopped})"
            in reasons(report))


def test_changed_case_status_and_case_number_are_found(ec):
    case = accepted_case(ec)
    iid = case.instance_id
    numbered = seq_of(ec, iid, "handler_called", handler="case_number.assign")
    last_driver = max(e["seq"] for e in ec.history(iid) if e["state_after"])
    sql(ec, update(Instance).where(Instance.id == iid).values(status="completed", case_number="KH-2026-999999"))
    report = ec.replay(iid)
    assert report.consistent is False
    assert reasons(report) == [
        f"instances row {iid} (case KH-2026-000001): status is 'completed' but the log says 'running' "
        f"(event {last_driver})",
        f"instances row {iid} (case KH-2026-000001): case_number is 'KH-2026-999999' but the log says "
        f"'KH-2026-000001' (event {numbered})"]


def test_closed_at_and_legal_state_are_checked_too(ec, clock):
    case = answered_case(ec, clock)
    iid = case.instance_id
    sql(ec, update(Instance).where(Instance.id == iid).values(closed_at=clock.now(), legal_state="deemed_accepted"))
    report = ec.replay(iid)
    assert {d["field"] for d in report.differences} == {"closed_at", "legal_state"}


# --- the command ------------------------------------------------------------------------------

def test_the_command_names_unkeyed_events_and_require_key_refuses_them(ec, db_url, tmp_path, monkeypatch):
    keyed = accepted_case(ec).instance_id
    legacy = ec.start("enterprise_customer", INTAKE, "reception_li").instance_id
    make_legacy(ec, legacy)
    key_file = tmp_path / "chain_key"
    key_file.write_text(TEST_CHAIN_KEY.hex() + "\n")
    monkeypatch.setenv("COMPLAINTFLOW_CHAIN_KEY_FILE", str(key_file))
    monkeypatch.delenv("COMPLAINTFLOW_NOW", raising=False)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli, ["--db", db_url, *args], catch_exceptions=False)

    out = run("replay", keyed, "--verify", "--require-key")
    assert out.exit_code == 0, out.output
    assert "chained with key" in out.output and "consistent" in out.output
    out = run("replay", legacy, "--verify")
    assert out.exit_code == 0 and "only unkeyed-hashed" in out.output and "UNKEYED" in out.output
    out = run("replay", legacy, "--verify", "--require-key")
    assert out.exit_code == 7 and "REFUSED (--require-key)" in out.output

    key_file.write_text(OTHER_KEY.hex() + "\n")
    out = run("replay", keyed, "--verify", "--json")
    assert out.exit_code == 7
    assert json.loads(out.output)["first_difference"]["key"] == "not verifiable with this key"
