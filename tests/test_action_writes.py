"""How an action writes (docs/performance.md, "Cost per user action"): the case row by one
version-checked Core UPDATE instead of the ORM's flush, each form's validator made once. What a
user notices must not change: every change of the case is stored, a stale version is refused with
nothing stored, and a form changed in a new version is checked by its new rules."""

from __future__ import annotations

import json

import pytest

from complaintflow.engine.errors import Conflict, InvalidInput

from conftest import open_task

INTAKE = {"subject": "快递丢失", "due_at": "2026-05-08T17:00:00+08:00"}


def test_each_action_stores_the_case_row_and_its_next_version(mini, clock, switch):
    switch.fail = False
    case = mini.start("mini", INTAKE, "li")
    before = mini.show(case.instance_id)
    task = open_task(mini, case.instance_id, "review")
    clock.advance(hours=1)
    done = mini.complete_task(task["task_id"], "bob", {"verdict": "ok"}, expected_version=before["row_version"])
    after = mini.show(case.instance_id)
    assert after["row_version"] == before["row_version"] + 1
    assert after["events"] == done.events > before["events"]     # the log's head, on the case row
    close = open_task(mini, case.instance_id, "close")
    # the moment of the change is stored too: an action dated before it is refused
    clock.advance(minutes=-30)
    with pytest.raises(InvalidInput, match="time only moves forward"):
        mini.complete_task(close["task_id"], "bob", {})
    clock.advance(hours=1)
    # a second completion that still names the version it saw is refused, and nothing is stored
    with pytest.raises(Conflict) as refused:
        mini.complete_task(close["task_id"], "bob", {}, expected_version=before["row_version"])
    assert str(before["row_version"]) in str(refused.value)
    assert mini.show(case.instance_id) == after
    assert [t["task"] for t in mini.list_tasks(instance_id=case.instance_id)] == ["close"]
    assert mini.replay(case.instance_id).consistent is True


def test_a_form_changed_in_a_new_version_is_checked_by_its_new_rules(mini, mini_dir, switch):
    switch.fail = False
    mini.start("mini", INTAKE, "li")                       # version 1's form, validated once
    form = mini_dir / "forms" / "mini" / "intake.json"
    schema = json.loads(form.read_text(encoding="utf-8"))
    schema["properties"]["subject"]["maxLength"] = 2
    form.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    assert [d.version for d in mini.deploy([mini_dir]) if d.process_id == "mini"] == [2]
    cases = len(mini.list_cases())
    with pytest.raises(InvalidInput) as refused:
        mini.start("mini", INTAKE, "li")                   # the new version: at most 2 characters
    assert "subject" in (refused.value.field_errors or {})
    assert len(mini.list_cases()) == cases
    assert mini.start("mini", INTAKE, "li", version=1).status == "running"    # the old version keeps its form
