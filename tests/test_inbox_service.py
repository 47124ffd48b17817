"""The service layer under the staff inbox: role inboxes (soonest due first, overdue and
provisional marked, filters, counts), claims, the case page's path, and the access log."""

from __future__ import annotations

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import Conflict, InvalidInput, NotAllowed
from conftest import PROCESSES, open_task

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}


@pytest.fixture
def ec(service):
    service.deploy([PROCESSES / "enterprise_customer.bpmn"])
    return service


def accepted(ec, **intake):
    case = ec.start("enterprise_customer", dict(INTAKE, **intake), "li")
    task = open_task(ec, case.instance_id, "preliminary_check")
    ec.complete_task(task["task_id"], "li", {"outcome": "accepted", "severity": "general", "department": "品质部"})
    return case


def test_the_inbox_lists_a_roles_tasks_soonest_due_first_and_marks_overdue(ec, clock):
    late = accepted(ec, promised_resolution_at="2026-05-12T17:00:00+08:00")
    soon = accepted(ec, promised_resolution_at="2026-05-07T12:00:00+08:00")
    ec.start("enterprise_customer", INTAKE, "li")          # a reception task, not the department's
    page = ec.inbox(roles={"department"})
    assert [t["case_number"] for t in page.tasks] == [soon.case_number, late.case_number]
    assert page.total == 2 and not any(t["overdue"] for t in page.tasks)
    assert page.tasks[0]["deadline"] == "promised" and page.tasks[0]["deadline_status"] == "open"
    clock.set(parse_instant("2026-05-07T12:00:00+08:00"))
    page = ec.inbox(roles={"department"})
    assert [t["overdue"] for t in page.tasks] == [True, False]
    assert [t["case_number"] for t in ec.inbox(roles={"department"}, status="overdue").tasks] == [soon.case_number]
    assert ec.inbox_counts({"department", "reception", "manager"}) == {
        "department": {"open": 2, "overdue": 1}, "manager": {"open": 0, "overdue": 0},
        "reception": {"open": 1, "overdue": 0}}


def test_filters_by_procedure_and_category_and_pages(ec):
    a = accepted(ec, category="service_attitude")
    accepted(ec, category="product_quality")
    assert [t["case_number"] for t in ec.inbox(roles={"department"}, category="service_attitude").tasks] == [a.case_number]
    assert ec.inbox(roles={"department"}, process_id="hospital_patient").total == 0
    page = ec.inbox(roles={"department"}, limit=1, offset=1)
    assert page.total == 2 and len(page.tasks) == 1
    with pytest.raises(InvalidInput, match="status must be one of"):
        ec.inbox(roles={"department"}, status="late")


def test_a_claimed_task_is_not_taken_by_a_colleague(ec):
    case = accepted(ec)
    task = open_task(ec, case.instance_id, "investigate")
    ec.claim_task(task["task_id"], "zhao", roles={"department"})
    assert ec.inbox(roles={"department"}, user="zhao", status="mine").total == 1
    assert ec.inbox(roles={"department"}, user="qian", status="unclaimed").total == 0
    with pytest.raises(Conflict, match="was claimed by zhao"):
        ec.claim_task(task["task_id"], "qian", roles={"department"})
    with pytest.raises(Conflict, match="was claimed by zhao"):
        ec.complete_task(task["task_id"], "qian", {"findings": "x", "responsible_party": "company"})
    with pytest.raises(Conflict, match="only the user who claimed it can release it"):
        ec.release_task(task["task_id"], "qian", roles={"department"})
    assert open_task(ec, case.instance_id, "investigate")["task_id"] == task["task_id"]   # nothing changed
    ec.release_task(task["task_id"], "zhao", roles={"department"})
    ec.claim_task(task["task_id"], "qian", roles={"department"})
    done = ec.complete_task(task["task_id"], "qian", {"findings": "密封圈", "responsible_party": "company"})
    assert [t["task"] for t in done.open_tasks] == ["agree_solution"]


def test_claiming_needs_the_role_and_an_open_task(ec):
    case = accepted(ec)
    task = open_task(ec, case.instance_id, "investigate")
    with pytest.raises(NotAllowed, match="is for role 'department'"):
        ec.claim_task(task["task_id"], "li", roles={"reception"})
    ec.complete_task(task["task_id"], "zhao", {"findings": "x", "responsible_party": "company"})
    with pytest.raises(Conflict, match="no longer open \\(completed by zhao"):
        ec.claim_task(task["task_id"], "zhao", roles={"department"})


def test_the_case_detail_gives_the_data_and_the_path_taken(ec):
    case = accepted(ec)
    detail = ec.case_detail(case.instance_id)
    assert detail["data"]["complainant"] == "王女士" and detail["data"]["outcome"] == "accepted"
    path = detail["path"]
    assert {"receive", "assign_case_number", "preliminary_check", "outcome_gateway"} <= set(path["done"])
    assert set(path["current"]) == {"investigate", "promise_watch"}   # handling, and the watch waiting
    assert {"flow_receive", "flow_checked", "flow_accepted"} <= set(path["flows"])
    assert "flow_refused" not in path["flows"] and "notify_refusal" not in path["done"]


def test_refused_access_is_logged(ec):
    ec.log_access("qian", "view_task", "t-1", False, "role 'department' not held")
    ec.log_access("li", "view_case", "c-1", True)
    (refused,) = ec.access_log(refused_only=True)
    assert (refused["user"], refused["action"], refused["allowed"]) == ("qian", "view_task", False)
    assert len(ec.access_log()) == 2


def test_the_case_data_keeps_the_newest_values_when_a_watch_branch_ends_late(ec):
    """Across re-handling rounds, and with the promise watch ending only at the reply, the
    case page shows the values staff entered last."""
    case = accepted(ec)

    def do(task, data):
        ec.complete_task(open_task(ec, case.instance_id, task)["task_id"], "zhao", data)

    for n in range(2):
        do("investigate", {"findings": f"第{n + 1}次调查", "responsible_party": "company"})
        do("agree_solution", {"solution_type": "replacement", "solution": "换新", "customer_agreed": True})
        do("feedback", {"reply": f"第{n + 1}次答复", "reply_channel": "phone"})
        do("satisfaction_survey", {"satisfied": "no"})
    data = ec.case_detail(case.instance_id)["data"]
    assert (data["rehandle_count"], data["findings"], data["reply"]) == (2, "第2次调查", "第2次答复")
    assert data["promise_kept"] == {"name": "promised", "status": "met"}


def test_the_inbox_reads_each_roles_tasks_through_an_index_not_by_scanning(ec):
    """What keeps the inbox fast with 100,000 open cases (bench/bench_inbox.py measures it):
    no statement of an inbox page scans the task or case tables."""
    from sqlalchemy import event
    accepted(ec)
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(ec.engine, "before_cursor_execute", capture)
    try:
        for status in ("all", "overdue", "mine", "unclaimed"):
            ec.inbox(roles={"department", "reception", "manager"}, user="zhao", status=status, offset=50)
        ec.inbox(roles={"department"}, process_id="enterprise_customer")
        ec.inbox_counts({"department", "reception"})
    finally:
        event.remove(ec.engine, "before_cursor_execute", capture)
    assert statements
    with ec.engine.connect() as conn:
        for statement, parameters in statements:
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            scans = [p for p in plan if p.startswith("SCAN") and ("human_tasks" in p or "instances" in p)
                     and "INDEX" not in p]
            assert scans == [], f"{statement}\n{plan}"
