"""Closed cases kept small (engine/compaction.py, schema 0009), with nothing lost: a closed
case's engine state is packed by the closing action (or by `complaintflow compact` for cases
closed before), and everything a reader sees — `show`, the history, the case page's data and
path, `replay --verify`, the dossier — stays the same. Packing is all or nothing per case."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text, update

from complaintflow.engine import runtime
from complaintflow.engine.compaction import compact_closed, state_text, unpack
from complaintflow.engine.models import Instance, InstanceState
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


def stored(svc, iid) -> InstanceState:
    with svc.sessions() as s:
        return s.get(InstanceState, iid)


def as_closed_before_0009(svc, iid) -> None:
    """The case's state row as a case closed before schema 0009 has it: the text, not packed."""
    row = stored(svc, iid)
    with svc.sessions() as s, s.begin():
        s.execute(update(InstanceState).where(InstanceState.instance_id == iid)
                  .values(state=unpack(row.packed, iid), packed=None))


def what_readers_see(svc, iid) -> dict:
    detail = svc.case_detail(iid)
    doc = dossier.build(svc, iid, may_see_identity=False, exported_by="qa", verify=True)
    return {"show": svc.show(iid), "history": svc.history(iid), "data": detail["data"], "path": detail["path"],
            "awaited": detail["awaited"], "replay": svc.replay(iid).as_dict(),
            "dossier": dossier.render_html(doc)}


def test_a_closing_case_packs_its_state_and_every_reader_sees_the_same_case(ec, clock):
    iid = walk(ec, clock, STEPS[:-1])
    open_row = stored(ec, iid)
    assert open_row.packed is None and open_row.state           # open: the text, as before
    ec.complete_task(open_task(ec, iid, "summary_archive")["task_id"], "li", {"summary": "已处理"})

    row = stored(ec, iid)
    assert row.state == "" and row.packed is not None
    whole = state_text(row)
    assert runtime.text_hash(whole) == row.state_hash           # the very text the close hashed
    assert len(row.packed) * 5 < len(whole.encode("utf-8"))
    seen = what_readers_see(ec, iid)
    assert seen["replay"]["consistent"] is True, seen["replay"]["first_difference"]
    assert seen["show"]["status"] == "completed"
    assert seen["data"]["summary"] == "已处理" and seen["data"]["satisfied"] == "yes"
    assert "summary_archive" in seen["path"]["done"] and seen["path"]["current"] == []


def test_compact_packs_cases_closed_before_and_changes_nothing_anyone_reads(ec, clock):
    closed = walk(ec, clock)
    packed_at_close = stored(ec, closed).packed
    as_closed_before_0009(ec, closed)
    running = walk(ec, clock, STEPS[:2])
    before = what_readers_see(ec, closed)
    assert before["replay"]["consistent"] is True, before["replay"]["first_difference"]

    calls = []
    assert compact_closed(ec, batch=1, progress=lambda done, todo: calls.append((done, todo))) == \
        {"compacted": 1, "closed": 1}
    assert calls == [(1, 1)]
    assert stored(ec, closed).packed == packed_at_close and stored(ec, closed).state == ""
    assert what_readers_see(ec, closed) == before
    assert compact_closed(ec) == {"compacted": 0, "closed": 1}       # done once
    # an open case keeps its text and goes on
    assert stored(ec, running).packed is None
    task, user, data = STEPS[2]
    ec.complete_task(open_task(ec, running, task)["task_id"], user, data)
    assert ec.replay(running).consistent is True


def _fail_updates_of(svc, iid, when):
    """A database that refuses to write the state row of case `iid` (a full disk, a lost
    connection): every UPDATE of it fails inside its transaction."""
    with svc.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text(f"CREATE TRIGGER refuse BEFORE UPDATE ON instance_states "
                              f"WHEN NEW.instance_id = '{iid}' AND {when} BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; "
                              "END $$ LANGUAGE plpgsql"))
            conn.execute(text(f"CREATE TRIGGER refuse BEFORE UPDATE ON instance_states FOR EACH ROW "
                              f"WHEN (NEW.instance_id = '{iid}' AND {when}) EXECUTE FUNCTION refuse()"))


def _allow_updates(svc):
    with svc.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse" + (" ON instance_states" if conn.dialect.name != "sqlite" else "")))


def test_compaction_is_all_or_nothing_no_case_is_ever_half_packed(ec, clock):
    ids = sorted(walk(ec, clock) for _ in range(3))
    for iid in ids:
        as_closed_before_0009(ec, iid)
    texts = {iid: stored(ec, iid).state for iid in ids}
    _fail_updates_of(ec, ids[1], "1 = 1")

    with pytest.raises(Exception, match="disk full"):
        compact_closed(ec, batch=2)
    for iid in ids:          # the failed batch (the first two cases) rolled back whole
        row = stored(ec, iid)
        assert (row.state, row.packed) == (texts[iid], None)

    _allow_updates(ec)
    assert compact_closed(ec, batch=2)["compacted"] == 3
    for iid in ids:
        assert state_text(stored(ec, iid)) == texts[iid]
        assert ec.replay(iid).consistent is True


def test_a_closing_action_that_fails_to_write_leaves_the_case_open_and_unpacked(ec, clock):
    iid = walk(ec, clock, STEPS[:-1])
    before = stored(ec, iid)
    events = len(ec.history(iid))
    _fail_updates_of(ec, iid, "NEW.packed IS NOT NULL")
    with pytest.raises(Exception, match="disk full"):
        ec.complete_task(open_task(ec, iid, "summary_archive")["task_id"], "li", {"summary": "已处理"})
    row = stored(ec, iid)
    assert (row.state, row.packed, row.state_hash) == (before.state, None, before.state_hash)
    assert ec.show(iid)["status"] == "running" and len(ec.history(iid)) == events
    _allow_updates(ec)
    ec.complete_task(open_task(ec, iid, "summary_archive")["task_id"], "li", {"summary": "已处理"})
    assert stored(ec, iid).packed is not None and ec.replay(iid).consistent is True


def test_a_packed_state_edited_or_damaged_is_found_by_replay(ec, clock):
    iid = walk(ec, clock)
    row = stored(ec, iid)
    with ec.sessions() as s, s.begin():
        s.execute(update(InstanceState).where(InstanceState.instance_id == iid).values(packed=b"not zlib"))
    report = ec.replay(iid)
    assert report.consistent is False and "cannot be unpacked" in report.first_difference["reason"]

    edited = json.loads(unpack(row.packed, iid))
    edited["data"]["summary"] = "改过"
    with ec.sessions() as s, s.begin():        # the text put back beside the packed bytes, edited
        s.execute(update(InstanceState).where(InstanceState.instance_id == iid)
                  .values(packed=row.packed, state=json.dumps(edited, ensure_ascii=False)))
    report = ec.replay(iid)
    assert report.consistent is False and report.first_difference["path"] == "$.data.summary"


def test_event_hashes_are_stored_as_32_bytes_and_read_as_hex(ec, clock):
    iid = walk(ec, clock)
    with ec.engine.connect() as conn:
        raw = conn.execute(text("SELECT hash, prev_hash FROM events WHERE instance_id = :i ORDER BY seq"),
                           {"i": iid}).all()
    assert raw and all(len(bytes(h)) == 32 and len(bytes(p)) == 32 for h, p in raw)
    with ec.sessions() as s:
        inst = s.get(Instance, iid)
    report = ec.replay(iid)
    assert report.consistent is True
    assert report.chain["head"]["hash"] == inst.last_event_hash == bytes(raw[-1][0]).hex()


def test_the_compact_command_reports_its_progress(ec, clock, db_url, chain_key_env, monkeypatch):
    iid = walk(ec, clock)
    as_closed_before_0009(ec, iid)
    for key, value in chain_key_env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["--db", db_url, "compact", "--batch", "10"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "packed 1 of 1 closed case(s)" in result.output
    assert "packed 1 closed case(s); 1 closed case(s) in all" in result.output
    as_json = CliRunner().invoke(cli, ["--db", db_url, "compact", "--json"], catch_exceptions=False)
    assert json.loads(as_json.output) == {"compacted": 0, "closed": 1}
    assert stored(ec, iid).state == "" and ec.replay(iid).consistent is True
