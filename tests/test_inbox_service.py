"""The service layer under the staff inbox: role inboxes (soonest due first, overdue and
provisional marked, filters, counts), claims, the case page's path, and the access log."""

from __future__ import annotations

import pytest

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import Conflict, InvalidInput, NotAllowed
from conftest import PROCESSES, open_task
from webapp import app, as_user, svc  # noqa: F401 (fixtures)

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
    counts = ec.inbox_counts({"department", "reception", "manager"})
    assert {role: (c["open"], c["overdue"], c["open_capped"]) for role, c in counts.items()} == {
        "department": (2, 1, False), "manager": (0, 0, False), "reception": (1, 0, False)}


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


def test_counts_stop_at_the_cap_and_the_page_says_more_than(ec, monkeypatch, clock):
    """Counts read at most COUNT_CAP index entries (so they cost the same at a million
    cases); a count that reaches it is shown as "N+" (99+ with the shipped cap of 100)."""
    from complaintflow.engine import inbox
    cases = [accepted(ec, promised_resolution_at="2026-05-07T12:00:00+08:00") for _ in range(3)]
    clock.set(parse_instant("2026-05-07T12:00:00+08:00"))            # all three overdue
    monkeypatch.setattr(inbox, "COUNT_CAP", 2)
    assert ec.inbox_counts({"department"}) == {"department": {"open": 2, "overdue": 2, "open_capped": True,
                                                              "overdue_capped": True}}
    page = ec.inbox(roles={"department"}, limit=1)
    assert (page.total, page.capped, len(page.tasks)) == (2, True, 1)
    deep = ec.inbox(roles={"department"}, limit=1, offset=2)       # the last page: counted past it, exact
    assert (deep.total, deep.capped, len(deep.tasks)) == (3, False, 1)
    shown = {ec.inbox(roles={"department"}, limit=1, offset=k).tasks[0]["case_number"] for k in range(3)}
    assert shown == {c.case_number for c in cases}                  # deep pages still reach every task
    monkeypatch.setattr(inbox, "COUNT_CAP", 1000)
    assert ec.inbox_counts({"department"})["department"] == {"open": 3, "overdue": 3, "open_capped": False,
                                                            "overdue_capped": False}


def test_the_inbox_page_shows_a_capped_count_as_more_than(app, svc, as_user, monkeypatch):
    from complaintflow.engine import inbox
    for _ in range(3):
        accepted(svc)
    monkeypatch.setattr(inbox, "COUNT_CAP", 2)
    html = as_user("department").get("/").get_data(as_text=True)
    assert "<strong>1+</strong>" in html           # the panel's count reached the cap
    assert "共 3 项" in html                         # the page counts at least one row past itself: exact here


def _plans(service, run) -> list[tuple[str, list[str]]]:
    """SQLite's plan of every SELECT that `run()` sends."""
    from sqlalchemy import event
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(service.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(service.engine, "before_cursor_execute", capture)
    assert statements
    with service.engine.connect() as conn:
        return [(st, [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {st}", params)])
                for st, params in statements]


def _no_scans(plans):
    for statement, plan in plans:
        scans = [p for p in plan if p.startswith("SCAN") and ("human_tasks" in p or "instances" in p)
                 and "INDEX" not in p]
        assert scans == [], f"{statement}\n{plan}"


def test_the_inbox_reads_each_roles_tasks_through_an_index_not_by_scanning(ec):
    """What keeps the inbox fast with 100,000 open cases (bench/bench_inbox.py measures it):
    no statement of an inbox page scans the task or case tables."""
    accepted(ec)

    def run():
        for status in ("all", "overdue", "mine", "unclaimed"):
            ec.inbox(roles={"department", "reception", "manager"}, user="zhao", status=status, offset=50)
        ec.inbox(roles={"department"}, process_id="enterprise_customer")
        ec.inbox_counts({"department", "reception"})
    _no_scans(_plans(ec, run))


def test_task_lists_counts_and_a_case_by_number_are_read_through_indexes(ec):
    """The probes of bench/bench_million.py (flat to 1,000,000 cases): `tasks --role`
    (list_tasks), the counts per role and `show` by case number read indexes only; the task
    list and the counts take each role's first rows in index order (no sort of all of a role's
    tasks, no count of them all), and overdue tasks are sought in the index, not filtered."""
    case = accepted(ec)
    _no_scans(_plans(ec, lambda: (ec.list_tasks(role="department"), ec.list_tasks(roles={"department", "reception"}),
                                  ec.show(case.case_number), ec.resolve_case(case.case_number))))
    (listing,) = _plans(ec, lambda: ec.list_tasks(role="department"))
    assert any("USING INDEX ix_human_tasks_open_role_due (status=? AND role=?)" in p for p in listing[1]), listing
    assert not any(p == "USE TEMP B-TREE FOR ORDER BY" and "LIMIT" not in listing[0] for p in listing[1])
    (counts,) = _plans(ec, lambda: ec.inbox_counts({"department"}))
    # (not a covering index: a task assigned to one person is read to leave it out)
    assert any("INDEX ix_human_tasks_open_role_due (status=? AND role=? AND priority=? AND due_sort<?)" in p
               for p in counts[1]), counts
    assert counts[0].count("LIMIT") == 2, counts[0]          # both counts stop at the cap
