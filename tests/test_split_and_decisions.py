"""Engine features the procedures rely on: one record split into several cases
(case.split), DMN decisions at run time, and the staff / external / acknowledgement notices."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import copy_fixture, open_task


@pytest.fixture
def split_dir(tmp_path):
    return copy_fixture(tmp_path, "split")


@pytest.fixture
def sp(service, split_dir):
    service.deploy([split_dir])
    return service


def test_a_mixed_record_is_split_into_separate_cases(sp):
    parent = sp.start("split", {"request_types": ["complaint", "report"], "content": "卖过期食品并拒绝退款"}, "li")
    task = open_task(sp, parent.instance_id, "divide")
    done = sp.complete_task(task["task_id"], "li", {"parts": [
        {"request_types": ["complaint"], "content": "拒绝退款", "contact": "139"},
        {"request_types": ["report"], "content": "销售过期食品"}]})
    assert done.status == "completed"
    cases = sp.list_cases(process_id="split")
    numbers = sorted(c["case_number"] for c in cases)
    assert numbers == ["SP-2026-000001", "SP-2026-000002", "SP-2026-000003"]
    children = [c for c in cases if c["case_number"] != parent.case_number]
    for child in children:
        assert child["status"] == "running"
        assert [t["task"] for t in sp.list_tasks(instance_id=child["instance_id"])] == ["handle"]
        started = sp.history(child["instance_id"])[0]
        assert started["payload"]["data"]["split_from"] == parent.case_number
        assert started["actor"] == f"system (split of {parent.case_number})"
        assert sp.replay(child["instance_id"]).consistent is True
    called = [e for e in sp.history(parent.instance_id) if e["kind"] == "handler_called"
              and e["payload"]["handler"] == "case.split"]
    assert [c["case_number"] for c in called[0]["payload"]["outputs"]["cases"]] == numbers[1:]
    assert sp.replay(parent.instance_id).consistent is True


def test_a_split_part_the_intake_form_refuses_starts_no_case_at_all(sp):
    parent = sp.start("split", {"request_types": ["complaint", "inquiry"], "content": "混合"}, "li")
    task = open_task(sp, parent.instance_id, "divide")
    result = sp.complete_task(task["task_id"], "li", {"parts": [
        {"request_types": ["complaint"], "content": "退款"},
        {"request_types": ["weather"], "content": "问天气"}]})
    assert result.status == "incident"
    (incident,) = result.incidents
    assert "part 2 of the split" in incident["message"] and "request_types" in incident["message"]
    # the valid first part was rolled back with the second: only the parent exists
    assert [c["case_number"] for c in sp.list_cases(process_id="split")] == [parent.case_number]


def test_a_split_that_fails_after_its_first_case_started_leaves_nothing_of_it(sp, monkeypatch):
    """The first new case was started in full (its task row and events wait for the end of the
    action) when the second fails: neither is written, the parent gets the incident."""
    from complaintflow.engine.models import Event, HumanTask
    from sqlalchemy import func, select
    parent = sp.start("split", {"request_types": ["complaint", "report"], "content": "混合"}, "li")
    task = open_task(sp, parent.instance_id, "divide")
    start_in, calls = sp._start_in, []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return start_in(*args, **kwargs)
    monkeypatch.setattr(sp, "_start_in", second_fails)
    result = sp.complete_task(task["task_id"], "li", {"parts": [
        {"request_types": ["complaint"], "content": "退款"}, {"request_types": ["report"], "content": "过期"}]})
    assert result.status == "incident" and "the database went away" in result.incidents[0]["message"]
    assert [c["case_number"] for c in sp.list_cases(process_id="split")] == [parent.case_number]
    with sp.sessions() as s:
        others = [HumanTask.instance_id != parent.instance_id, Event.instance_id != parent.instance_id]
        assert s.execute(select(func.count()).select_from(HumanTask).where(others[0])).scalar() == 0
        assert s.execute(select(func.count()).select_from(Event).where(others[1])).scalar() == 0
    assert sp.replay(parent.instance_id).consistent is True


def test_a_business_rule_task_sets_case_data_from_its_dmn_table(sp):
    complaint = sp.start("split", {"request_types": ["complaint"], "content": "退款"}, "li")
    report = sp.start("split", {"request_types": ["report"], "content": "无照经营"}, "li")
    for case, unit in ((complaint, "mediation desk"), (report, "inspection")):
        replayed = sp.replay(case.instance_id)
        assert replayed.consistent is True
        assert replayed.state["data"]["unit"] == unit
        task = open_task(sp, case.instance_id, "handle")
        assert sp.complete_task(task["task_id"], "li", {"note": unit}).status == "completed"


def test_editing_one_process_decision_table_does_not_version_another_process(service, split_dir, mini_dir):
    # both processes in one directory, as in processes/
    shutil.copy(mini_dir / "mini.bpmn", split_dir / "mini.bpmn")
    shutil.copytree(mini_dir / "forms" / "mini", split_dir / "forms" / "mini")
    roles = split_dir / "roles.json"
    merged = {**json.loads(roles.read_text(encoding="utf-8")),
              **json.loads((mini_dir / "roles.json").read_text(encoding="utf-8"))}
    roles.write_text(json.dumps(merged, ensure_ascii=False), encoding="utf-8")
    first = {d.process_id: d.version for d in service.deploy([split_dir])}
    dmn = split_dir / "split_route.dmn"
    dmn.write_text(dmn.read_text(encoding="utf-8").replace('"inspection"', '"稽查大队"'), encoding="utf-8")
    second = {d.process_id: (d.version, d.created) for d in service.deploy([split_dir])}
    assert first == {"split": 1, "mini": 1}
    assert second == {"split": (2, True), "mini": (1, False)}


def _ctx(notifier, clock, **params):
    from complaintflow.handlers import HandlerContext, Services
    services = Services(clock=clock, case_numbers=None, notifier=notifier, case=None)
    return HandlerContext(params=params, data={}, services=services, instance_id="i", process_id="p", task_name="t")


def test_the_acknowledgement_names_the_case_number_and_each_limit_as_complainants_read_it(notifier, clock):
    from complaintflow.handlers import notify
    notify.acknowledge(_ctx(notifier, clock, case_number="YB-2026-000001", contact="138", limits={
        "答复": {"due": "2026-05-15T00:00:00+08:00", "last_day": "2026-05-14", "provisional": False},
        "延长后": {"due": "2027-01-09T00:00:00+08:00", "last_day": "2027-01-08", "provisional": True},
        "上级知悉": "2026-05-06T11:00:00+08:00"}))
    (sent,) = notifier.sent
    assert sent["kind"] == "acknowledgement" and sent["to"] == "138"
    assert sent["message"] == ("您的投诉已登记，编号 YB-2026-000001。答复：最迟于2026年05月14日；"
                               "延长后：最迟于2027年01月08日（暂定）；上级知悉：最迟于2026年05月06日 11:00。")


def test_staff_and_external_notices_need_an_addressee(notifier, clock):
    from complaintflow.handlers import notify
    notify.staff(_ctx(notifier, clock, role="director", case_number="YY-1", message="重大投诉"))
    notify.external(_ctx(notifier, clock, to="公安机关", case_number="YY-1", message="涉嫌违法犯罪"))
    assert [(m["kind"], m["to"]) for m in notifier.sent] == [("staff", "role:director"), ("external", "公安机关")]
    with pytest.raises(ValueError, match="role"):
        notify.staff(_ctx(notifier, clock, role="", message="x"))
    with pytest.raises(ValueError, match="'to'"):
        notify.external(_ctx(notifier, clock, to=None, message="x"))


def test_a_gateway_condition_that_fails_becomes_an_incident_saying_which_expression(service, split_dir):
    bpmn = split_dir / "split.bpmn"
    bpmn.write_text(bpmn.read_text(encoding="utf-8").replace("len(request_types) &gt; 1",
                                                             "request_types[2] == 'report'"), encoding="utf-8")
    service.deploy([split_dir])            # valid, but this case's list has one item: an IndexError at run time
    result = service.start("split", {"request_types": ["complaint"], "content": "退款"}, "li")
    assert result.status == "incident"
    (incident,) = result.incidents
    assert incident["task"] == "mixed"
    assert "Error evaluating expression 'request_types[2] == 'report''" in incident["message"]
