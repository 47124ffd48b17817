"""Two staff recording the same withdrawal at once (issue 13), with real concurrent processes on
SQLite and PostgreSQL, as tests/test_contention.py does for tasks: `Gate` holds both inside the
withdrawal's closing step (`test.flaky`) until both have loaded the case and delivered the
message, then lets them write. One wins; the other is told who recorded it and when, and
nothing of its action is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from complaintflow.engine.models import Event
from complaintflow.web.users import DEMO_USERS, load_users
from concurrency import Gate, Workers, _service
from test_messages import WITHDRAWAL, message_process

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def gate(tmp_path):
    return Gate(tmp_path / "gate")


@pytest.fixture
def svc(db_url, tmp_path):
    service = _service(db_url)
    service.deploy([message_process(tmp_path)])
    return service


@pytest.fixture
def workers(db_url, gate):
    made = []

    def make(n):
        made.append(Workers(n, db_url, gate))
        return made[-1]
    yield make
    for w in made:
        w.close()


def recorded(svc, instance_id):
    with svc.sessions() as s:
        return list(s.execute(select(Event).where(Event.instance_id == instance_id,
                                                  Event.kind == "message_received")).scalars())


def test_two_processes_recording_one_withdrawal_one_wins_the_other_is_told_who(svc, workers, gate):
    w = workers(2)
    for _ in range(3):
        case = svc.start("msgcase", {"subject": "发票开错"}, "reception")
        gate.block(case.instance_id)
        for i in range(2):
            w.send(i, "message", case.instance_id, "withdrawal", WITHDRAWAL, f"user{i}", ["reception"])
        gate.wait_arrivals(case.instance_id, 2, workers=w)      # both have delivered it and run the engine
        gate.open(case.instance_id)
        results = w.results(2)
        assert sorted(r["outcome"] for r in results) == ["conflict", "ok"], results
        (event,) = recorded(svc, case.instance_id)
        (lost,) = [r for r in results if r["outcome"] == "conflict"]
        assert lost["by"] == event.actor
        assert (f"'投诉人撤回投诉' (message 'withdrawal') was already recorded by {event.actor} at 2026-05-06 10:00; "
                "nothing was changed") in lost["message"]
        assert svc.show(case.instance_id)["status"] == "completed"
        assert svc.replay(case.instance_id).consistent is True


def test_two_browsers_recording_one_withdrawal_the_loser_sees_a_conflict_page(svc, workers, gate):
    w = workers(2)
    case = svc.start("msgcase", {"subject": "发票开错"}, "reception")
    gate.block(case.instance_id)
    form = dict(WITHDRAWAL, withdrawn_at="2026-05-06T09:30")
    for i in range(2):
        w.send(i, "web_message", case.case_number, "withdrawal", "reception", form)
    gate.wait_arrivals(case.instance_id, 2, workers=w)
    gate.open(case.instance_id)
    results = [r["value"] for r in w.results(2)]
    assert sorted(r["status"] for r in results) == [303, 409], [(r["status"], r["body"][:300]) for r in results]
    (page,) = [r["body"] for r in results if r["status"] == 409]
    name = load_users(DEMO_USERS).get("reception").name
    assert f"{name} 已于 2026-05-06 10:00 先行处理" in page and "Traceback" not in page
    assert len(recorded(svc, case.instance_id)) == 1
