"""The engine state is serialized once per action: the stored text, and the hash each driver
event records (`state_after`) is the SHA-256 of that same text (docs/performance.md, "Cost per
user action"). Events written before hold the hash of a second, key-sorted serialization;
`replay --verify` must keep accepting those, for cases written wholly before the change and
for cases that had actions on both sides of it — on every shipped procedure."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from sqlalchemy import select

from complaintflow.engine import runtime
from complaintflow.engine.models import Event, Instance, InstanceState
from complaintflow.engine.scenario_reader import scenario_files
from complaintflow.engine.scenarios import Runner, ScenarioRun
from conftest import PROCESSES, TEST_CHAIN_KEY, open_task
from test_tamper import rechain

INTAKE = {"subject": "退款未到账", "due_at": "2026-05-07T12:00:00+08:00"}


def written_before_the_change(text: str) -> str:
    """`state_after` as the service wrote it before serialize-once: the canonical form."""
    return runtime.state_hash(json.loads(text))


@pytest.fixture(scope="module")
def runner():
    with Runner(PROCESSES) as r:
        yield r


PROCEDURES = sorted({p.parent.name for p in scenario_files([PROCESSES / "tests"])})


def first_scenario(runner, procedure):
    """The procedure's first scenario (of its first scenario file)."""
    path = scenario_files([PROCESSES / "tests" / procedure])[0]
    scenarios, errors = runner.load([path])
    assert not errors, errors
    return scenarios[0]


def test_every_shipped_procedure_has_a_scenario_here():
    assert len(PROCEDURES) >= 15 and "enterprise_customer" in PROCEDURES


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_replay_verifies_a_case_upgraded_halfway(runner, tmp_path, monkeypatch, procedure):
    """The procedure's scenario runs its first half with the old writer (the canonical hash)
    and the rest with the new one (the hash of the stored text), as a case that was open
    across the upgrade: replay --verify checks every step's state_after, old and new."""
    scenario = first_scenario(runner, procedure)
    db_file = tmp_path / "case.sqlite3"
    shutil.copyfile(runner.template, db_file)
    run = ScenarioRun(runner, scenario, db_file)
    written = {"old": [], "new": []}
    new_form = runtime.text_hash

    def writer(form):
        def digest(text):
            written[form].append(written_before_the_change(text) if form == "old" else new_form(text))
            return written[form][-1]
        return digest

    upgrade_at = max(1, len(scenario.steps) // 2)
    try:
        for n, step in enumerate(scenario.steps):
            monkeypatch.setattr(runtime, "text_hash", writer("old" if n < upgrade_at else "new"))
            run.do(step)          # raises if the scenario's own expectations fail
        monkeypatch.undo()
        svc = run.service
        with svc.sessions() as s:
            cases = s.execute(select(Instance.id)).scalars().all()
            recorded = set(s.execute(select(Event.state_after).where(Event.state_after.is_not(None))).scalars())
        print(procedure, len(scenario.steps), {k: len(v) for k, v in written.items()})
        assert cases and written["old"] and set(written["old"] + written["new"]) <= recorded
        for iid in cases:
            report = svc.replay(iid)
            assert report.consistent is True, (procedure, report.first_difference)
    finally:
        run.service.engine.dispose()


def test_state_after_is_the_hash_of_the_stored_text(mini, clock, switch):
    case = mini.start("mini", INTAKE, "alice")
    clock.advance(hours=1)
    switch.fail = False
    mini.complete_task(open_task(mini, case.instance_id, "review")["task_id"], "bob", {"verdict": "ok"})
    with mini.sessions() as s:
        text = s.get(InstanceState, case.instance_id).state
        drivers = s.execute(select(Event.state_after).where(Event.instance_id == case.instance_id,
                                                            Event.state_after.is_not(None))
                            .order_by(Event.seq)).scalars().all()
    assert drivers[-1] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert len(set(drivers)) == len(drivers) == 2          # each action its own state


def test_a_state_after_of_neither_form_is_reported_at_its_event(mini, clock, switch):
    """Accepting two forms does not mean accepting anything: a driver whose state_after is the
    hash of another state (the chain recomputed by a holder of the key) fails at that event."""
    case = mini.start("mini", INTAKE, "alice")
    clock.advance(hours=1)
    switch.fail = False
    mini.complete_task(open_task(mini, case.instance_id, "review")["task_id"], "bob", {"verdict": "ok"})
    with mini.sessions() as s:
        seq = s.execute(select(Event.seq).where(Event.instance_id == case.instance_id,
                                                Event.kind == "task_completed")).scalar_one()

    def another_state(events):
        events[seq - 1].state_after = hashlib.sha256(b"another state").hexdigest()
    rechain(mini, case.instance_id, another_state, key=TEST_CHAIN_KEY)
    report = mini.replay(case.instance_id)
    assert report.consistent is False
    assert report.first_difference["event"] == seq
    assert "differs from the state recorded by the live run" in report.first_difference["reason"]
