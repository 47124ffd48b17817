"""How many SQL statements an action sends (SQLite). Statement counts are deterministic, unlike
timings: each action costs per statement, so a change that adds one shows here
(docs/performance.md, "Cost per user action")."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from conftest import copy_fixture, open_task

INTAKE = {"subject": "快递丢失", "due_at": "2026-05-08T17:00:00+08:00"}


@pytest.fixture
def statements(mini, switch):
    switch.fail = False                           # the fixture's handler answers: no incident
    mini.start("mini", INTAKE, "li")              # the version cached, this year's case counter made
    sent = []
    event.listen(mini.engine, "before_cursor_execute", lambda conn, cur, stmt, *a: sent.append(stmt))
    return sent


def test_a_start_sends_at_most_six_statements(mini, statements):
    # the version, the case number (its own short transaction), then one INSERT per table:
    # the case, its events (all in one), its open task, its state
    case = mini.start("mini", INTAKE, "li")
    assert case.status == "running" and [t["task"] for t in case.open_tasks] == ["review"]
    assert len(statements) <= 6, "\n".join(statements)
    assert sum(s.lstrip().upper().startswith("INSERT INTO EVENTS") for s in statements) == 1


def test_a_completion_sends_at_most_six_statements(mini, clock, statements):
    case = mini.start("mini", INTAKE, "li")
    task = open_task(mini, case.instance_id, "review")
    clock.advance(hours=1)
    statements.clear()
    done = mini.complete_task(task["task_id"], "bob", {"verdict": "ok"})
    # the task with its case's open tasks, the case and its state, by one read (one snapshot);
    # then the case row (its version checked), the events, the state, the next task; the task
    # completed by an UPDATE on condition that nobody claimed it meanwhile (no re-read of the claim)
    assert len(statements) <= 6, "\n".join(statements)
    assert sum(s.lstrip().upper().startswith("SELECT") for s in statements) == 1
    assert done.status == "running" and [t["task"] for t in done.open_tasks] == ["close"]
    assert mini.replay(case.instance_id).consistent is True
    assert [t["task"] for t in mini.list_tasks(instance_id=case.instance_id)] == ["close"]
    assert not any(s.lstrip().upper().startswith("SELECT HUMAN_TASKS.CLAIMED_BY") for s in statements)


def test_a_start_that_starts_a_limit_reads_no_deadline_rows(service, tmp_path, switch):
    """A case started in this action has no deadline rows yet: its deadline book is not read."""
    service.deploy([copy_fixture(tmp_path, "limits")])
    service.start("limits", {"subject": "奶粉中有异物", "contact": "13900000000"}, "reception")
    sent = []
    event.listen(service.engine, "before_cursor_execute", lambda conn, cur, stmt, *a: sent.append(stmt))
    case = service.start("limits", {"subject": "奶粉中有异物", "contact": "13900000001"}, "reception")
    assert [d["name"] for d in service.show(case.instance_id)["deadlines"]] == ["accept"]
    starting = sent[:sent.index(next(s for s in sent if s.lstrip().upper().startswith("INSERT INTO EVENTS"))) + 1]
    assert not any("FROM deadlines" in s for s in starting), "\n".join(starting)
    assert sum(s.lstrip().upper().startswith("INSERT INTO DEADLINES") for s in starting) == 1
    assert len(starting) <= 7, "\n".join(starting)
