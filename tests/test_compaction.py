"""Closed cases kept small (engine/compaction.py, schemas 0009 and 0010), with nothing lost: a
closed case keeps its state's hash and what the case page shows of it (`closed_cases`), not
its engine state, which replay rebuilds from the log; cases closed before are converted by
`complaintflow compact`. Everything a reader sees — `show`, the history, the case page's
data and path, `replay --verify`, the dossier — stays the same as when the state was kept.
Converting is all or nothing per case. Event payloads are stored as UTF-8 and `prev_hash`
empty; rows written before read and verify the same."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, text, update

from complaintflow.engine import runtime
from complaintflow.engine.compaction import compact_closed, events_used, pack_view, read_view, restore_states, state_text
from complaintflow.engine.models import ClosedCase, Event, Instance, InstanceState
from complaintflow.web import dossier
from complaintflow.web.cli import cli
from conftest import PROCESSES, open_task

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}
STEPS = [("preliminary_check", "li", {"outcome": "accepted", "severity": "general", "department": "品质部"}),
         ("investigate", "zhao", {"findings": "密封圈缺陷", "responsible_party": "company"}),
         ("agree_solution", "zhao", {"solution_type": "replacement", "solution": "换新", "customer_agreed": True}),
         ("feedback", "li", {"reply": "已为您换新", "reply_channel": "phone"}),
         ("satisfaction_survey", "li", {"satisfied": "yes"}),
         ("summary_archive", "li", {"summary": "已处理"})]


@pytest.fixture
def ec(service):
    service.deploy([PROCESSES / "enterprise_customer.bpmn"])
    return service


def walk(svc, clock, steps=STEPS) -> str:
    case = svc.start("enterprise_customer", INTAKE, "li")
    for task, user, data in steps:
        clock.advance(hours=1)
        svc.complete_task(open_task(svc, case.instance_id, task)["task_id"], user, data)
    return case.instance_id


def stored(svc, iid) -> InstanceState | None:
    with svc.sessions() as s:
        return s.get(InstanceState, iid)


def kept(svc, iid) -> ClosedCase | None:
    with svc.sessions() as s:
        return s.get(ClosedCase, iid)


def view_of(svc, iid) -> dict:
    with svc.sessions() as s:
        return read_view(s, s.get(ClosedCase, iid))


def as_closed_before_0010(svc, iid, *, packed=True) -> str:
    """The case as a case closed before schema 0010 has it: its state row (packed as 0009
    packed it, or its text as before 0009), no `closed_cases` row. Returns the state text."""
    with svc.engine.begin() as conn:
        restore_states(conn)
        conn.execute(delete(ClosedCase.__table__))
    row = stored(svc, iid)
    whole = state_text(row)
    if not packed:
        with svc.sessions() as s, s.begin():
            s.execute(update(InstanceState).where(InstanceState.instance_id == iid).values(state=whole, packed=None))
    return whole


def what_readers_see(svc, iid) -> dict:
    detail = svc.case_detail(iid)
    doc = dossier.build(svc, iid, may_see_identity=False, exported_by="qa", verify=True)
    return {"show": svc.show(iid), "history": svc.history(iid), "data": detail["data"], "path": detail["path"],
            "awaited": detail["awaited"], "replay": svc.replay(iid).as_dict(),
            "dossier": dossier.render_html(doc)}


def test_a_closing_case_keeps_its_view_and_state_hash_and_every_reader_sees_the_same_case(ec, clock):
    iid = walk(ec, clock, STEPS[:-1])
    assert stored(ec, iid).state and kept(ec, iid) is None          # open: the state text, as before
    ec.complete_task(open_task(ec, iid, "summary_archive")["task_id"], "li", {"summary": "已处理"})

    assert stored(ec, iid) is None                                   # the state row is gone
    row = kept(ec, iid)
    with ec.sessions() as s:
        closing = s.execute(select(Event).where(Event.instance_id == iid, Event.state_after.is_not(None))
                            .order_by(Event.seq.desc()).limit(1)).scalar_one()
    assert row.state_hash == closing.state_after                    # the hash of the state it closed with
    assert len(row.view) < 500             # compressed against the payloads of the events before it
    seen = what_readers_see(ec, iid)
    assert seen["replay"]["consistent"] is True, seen["replay"]["first_difference"]
    assert seen["show"]["status"] == "completed"
    assert seen["data"]["summary"] == "已处理" and seen["data"]["satisfied"] == "yes"
    assert "summary_archive" in seen["path"]["done"] and seen["path"]["current"] == []
    assert "flow_summarised" in seen["path"]["flows"]

    # the same as when the state itself was kept (rebuilt by replay, its hash checked)
    whole = as_closed_before_0010(ec, iid)
    assert runtime.text_hash(whole) == row.state_hash
    assert what_readers_see(ec, iid) == seen


@pytest.mark.parametrize("packed", [True, False], ids=["packed-0009", "text"])
def test_compact_converts_cases_closed_before_and_changes_nothing_anyone_reads(ec, clock, packed):
    closed = walk(ec, clock)
    view_at_close = view_of(ec, closed)
    as_closed_before_0010(ec, closed, packed=packed)
    running = walk(ec, clock, STEPS[:2])
    before = what_readers_see(ec, closed)
    assert before["replay"]["consistent"] is True, before["replay"]["first_difference"]

    calls = []
    assert compact_closed(ec, batch=1, progress=lambda done, todo: calls.append((done, todo))) == \
        {"compacted": 1, "closed": 1}
    assert calls == [(1, 1)]
    assert stored(ec, closed) is None and view_of(ec, closed) == view_at_close
    assert what_readers_see(ec, closed) == before
    assert compact_closed(ec) == {"compacted": 0, "closed": 1}       # done once
    # an open case keeps its state and goes on
    assert stored(ec, running).state and kept(ec, running) is None
    task, user, data = STEPS[2]
    ec.complete_task(open_task(ec, running, task)["task_id"], user, data)
    assert ec.replay(running).consistent is True


def _refuse_inserts_of(svc, iid):
    """A database that refuses to write the kept view of case `iid` (a full disk, a lost
    connection): every INSERT of it fails inside its transaction."""
    with svc.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text(f"CREATE TRIGGER refuse BEFORE INSERT ON closed_cases "
                              f"WHEN NEW.instance_id = '{iid}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; "
                              "END $$ LANGUAGE plpgsql"))
            conn.execute(text(f"CREATE TRIGGER refuse BEFORE INSERT ON closed_cases FOR EACH ROW "
                              f"WHEN (NEW.instance_id = '{iid}') EXECUTE FUNCTION refuse()"))


def _allow_inserts(svc):
    with svc.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse" + (" ON closed_cases" if conn.dialect.name != "sqlite" else "")))


def test_compaction_is_all_or_nothing_no_case_is_ever_half_converted(ec, clock):
    ids = sorted(walk(ec, clock) for _ in range(3))
    texts = {}
    for iid in ids:
        texts[iid] = as_closed_before_0010(ec, iid, packed=False)
    _refuse_inserts_of(ec, ids[1])

    with pytest.raises(Exception, match="disk full"):
        compact_closed(ec, batch=2)
    for iid in ids:          # the failed batch (the first two cases) rolled back whole
        assert (stored(ec, iid).state, kept(ec, iid)) == (texts[iid], None)

    _allow_inserts(ec)
    assert compact_closed(ec, batch=2)["compacted"] == 3
    for iid in ids:
        assert stored(ec, iid) is None and kept(ec, iid).state_hash == runtime.text_hash(texts[iid])
        assert ec.replay(iid).consistent is True


def test_a_closing_action_that_fails_to_write_leaves_the_case_open_with_its_state(ec, clock):
    iid = walk(ec, clock, STEPS[:-1])
    before = stored(ec, iid)
    events = len(ec.history(iid))
    _refuse_inserts_of(ec, iid)
    with pytest.raises(Exception, match="disk full"):
        ec.complete_task(open_task(ec, iid, "summary_archive")["task_id"], "li", {"summary": "已处理"})
    row = stored(ec, iid)
    assert (row.state, row.packed, row.state_hash) == (before.state, None, before.state_hash)
    assert kept(ec, iid) is None
    assert ec.show(iid)["status"] == "running" and len(ec.history(iid)) == events
    _allow_inserts(ec)
    ec.complete_task(open_task(ec, iid, "summary_archive")["task_id"], "li", {"summary": "已处理"})
    assert stored(ec, iid) is None and kept(ec, iid) is not None and ec.replay(iid).consistent is True


def test_a_kept_view_or_hash_edited_or_damaged_is_found_by_replay(ec, clock):
    iid = walk(ec, clock)
    row, edited = kept(ec, iid), view_of(ec, iid)

    def put(**values):
        with ec.sessions() as s, s.begin():
            s.execute(update(ClosedCase).where(ClosedCase.instance_id == iid).values(**values))

    put(view=b"not zlib")
    report = ec.replay(iid)
    assert report.consistent is False and "cannot be unpacked" in report.first_difference["reason"]

    edited["data"]["summary"] = "改过"
    put(view=pack_view(edited, [e["payload"] for e in ec.history(iid)][:events_used(row.view)]))
    report = ec.replay(iid)
    assert report.consistent is False and report.first_difference["path"] == "$.data.summary"
    assert ec.case_detail(iid)["data"]["summary"] == "改过"        # what the page shows, found above

    put(view=row.view, state_hash="ab" * 32)
    report = ec.replay(iid)
    assert report.consistent is False and "kept hash differs" in report.first_difference["reason"]
    put(state_hash=row.state_hash)
    assert ec.replay(iid).consistent is True


def test_event_hashes_are_32_bytes_and_prev_hash_is_implied(ec, clock):
    iid = walk(ec, clock)
    with ec.engine.connect() as conn:
        raw = conn.execute(text("SELECT hash, prev_hash FROM events WHERE instance_id = :i ORDER BY seq"),
                           {"i": iid}).all()
    assert raw and all(len(bytes(h)) == 32 and len(bytes(p)) == 0 for h, p in raw)
    with ec.sessions() as s:
        inst = s.get(Instance, iid)
    report = ec.replay(iid)
    assert report.consistent is True
    assert report.chain["head"]["hash"] == inst.last_event_hash == bytes(raw[-1][0]).hex()


def test_a_prev_hash_written_wrong_still_breaks_the_chain(ec, clock):
    """Events written before schema 0010 carry prev_hash; one that names another event's hash
    is found where it is, as before."""
    iid = walk(ec, clock)
    with ec.sessions() as s, s.begin():
        s.execute(update(Event).where(Event.instance_id == iid, Event.seq == 5).values(prev_hash="cd" * 32))
    report = ec.replay(iid)
    assert report.consistent is False and report.first_difference["event"] == 5
    assert "does not follow event 4" in report.first_difference["reason"]


def test_payloads_are_stored_as_utf8_and_escaped_ones_written_before_still_verify(ec, clock):
    iid = walk(ec, clock)
    with ec.engine.connect() as conn:
        raw = conn.execute(text("SELECT seq, payload FROM events WHERE instance_id = :i ORDER BY seq"),
                           {"i": iid}).all()
    first = raw[0][1] if isinstance(raw[0][1], str) else json.dumps(raw[0][1])
    if ec.engine.dialect.name == "sqlite":      # (psycopg hands PostgreSQL's json back parsed)
        assert "王女士" in first and "\\u" not in first and ", " not in first
    seen = what_readers_see(ec, iid)
    # the same payloads as json.dumps wrote them before (\uXXXX escapes, spaces)
    with ec.engine.begin() as conn:
        for seq, payload in raw:
            value = json.loads(payload) if isinstance(payload, str) else payload
            conn.execute(text("UPDATE events SET payload = :p WHERE instance_id = :i AND seq = :s"),
                         {"p": json.dumps(value), "i": iid, "s": seq})
        if conn.dialect.name == "sqlite":
            assert "\\u738b" in conn.execute(text("SELECT payload FROM events WHERE instance_id = :i AND seq = 1"),
                                             {"i": iid}).scalar_one()
    assert what_readers_see(ec, iid) == seen


def test_the_compact_command_reports_its_progress(ec, clock, db_url, chain_key_env, monkeypatch):
    iid = walk(ec, clock)
    as_closed_before_0010(ec, iid)
    for key, value in chain_key_env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["--db", db_url, "compact", "--batch", "10"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "compacted 1 of 1 closed case(s)" in result.output
    assert "compacted 1 closed case(s); 1 closed case(s) in all" in result.output
    as_json = CliRunner().invoke(cli, ["--db", db_url, "compact", "--json"], catch_exceptions=False)
    assert json.loads(as_json.output) == {"compacted": 0, "closed": 1}
    assert stored(ec, iid) is None and ec.replay(iid).consistent is True


def test_a_task_of_a_closed_case_is_refused_as_done_not_as_missing(ec, clock):
    """A closed case has no state row: completing one of its tasks again still says who
    completed it (the completion reads the case's rows without requiring one)."""
    from complaintflow.engine.errors import Conflict
    iid = walk(ec, clock)
    (done,) = [t for t in ec.show(iid)["completed_tasks"] if t["task"] == "summary_archive"]
    with pytest.raises(Conflict, match="already completed by") as refused:
        ec.complete_task(done["task_id"], "li", {"summary": "再次"})
    assert refused.value.by == "li"
    assert ec.history(iid)[-1]["kind"] == "handler_called" and ec.replay(iid).consistent is True
