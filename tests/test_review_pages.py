"""The compliance reviewer's pages through Flask's test client: who may use them, that every
reading is logged, the search form's filters, the readable history on the case page, the
replay at several events, the verification badge (one case and in bulk), and that a reviewer
can complete, claim and register nothing."""

from __future__ import annotations

import re

import pytest

from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from webapp import INTAKE, token


def start(svc, clock, **overrides):
    return svc.start("enterprise_customer", dict(INTAKE, **overrides), "reception")


def accept(svc, case_id, department="品质部"):
    task = open_task(svc, case_id, "preliminary_check")
    svc.complete_task(task["task_id"], "reception", {"outcome": "accepted", "severity": "general",
                                                     "department": department})


@pytest.fixture
def cases(svc, clock):
    """Three cases: A accepted and with the department; B with a different category; C just registered."""
    a = start(svc, clock)
    accept(svc, a.instance_id)
    clock.advance(hours=2)
    b = start(svc, clock, category="service_attitude", complainant="赵先生", contact="13900000000")
    clock.advance(hours=1)
    c = start(svc, clock, content="第三件")
    return a, b, c


def text(response):
    return response.get_data(as_text=True)


def test_only_reviewers_get_the_review_pages_and_the_header_link(as_user, svc, cases):
    assert as_user("reception").get("/review").status_code == 403
    assert svc.access_log(refused_only=True)[0]["action"] == "review_search"
    reviewer = as_user("reviewer")
    assert reviewer.get("/").headers["Location"].endswith("/review")      # no tasks: straight to the search
    page = text(reviewer.get("/review"))
    assert 'id="nav-review"' in page and "质控科（演示）" in page
    assert 'id="nav-review"' not in text(as_user("reception").get("/"))


def test_a_reviewer_reads_every_case_masked_and_every_reading_is_logged(as_user, svc, cases):
    a, b, _ = cases
    reviewer = as_user("reviewer")
    page = text(reviewer.get(f"/cases/{a.case_number}"))
    assert a.case_number in page and "电水壶漏水" in page
    assert "王女士" not in page and "13800000000" not in page and "（保密）" in page     # roles.json: masked
    replay = text(reviewer.get(f"/cases/{b.case_number}/replay?until=1"))
    assert "赵先生" not in replay and "13900000000" not in replay
    log = [(r["user"], r["action"], r["target"], r["allowed"]) for r in svc.access_log()]
    assert ("reviewer", "view_case", a.case_number, True) in log
    assert ("reviewer", "replay_case", b.case_number, True) in log


def test_identity_for_reviewers_is_a_setting_of_the_role(service, svc, cases):
    roles = load_roles(PROCESSES)
    roles["reviewer"]["sees_identity"] = True
    app = create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    client = app.test_client()
    client.post("/login", data={"login": "reviewer", "password": "demo", "csrf_token": token(client)})
    assert "王女士" in text(client.get(f"/cases/{cases[0].case_number}"))


def test_a_reviewer_can_complete_claim_and_register_nothing(as_user, svc, cases):
    a = cases[0]
    task = open_task(svc, a.instance_id, "investigate")
    reviewer = as_user("reviewer")
    before = len(svc.history(a.instance_id))
    csrf = token(reviewer, "/review")
    assert reviewer.get(f"/tasks/{task['task_id']}").status_code == 404
    assert reviewer.post(f"/tasks/{task['task_id']}", data={"csrf_token": csrf, "findings": "x"}).status_code == 404
    assert reviewer.post(f"/tasks/{task['task_id']}/claim", data={"csrf_token": csrf}).status_code == 404
    assert reviewer.post("/new/enterprise_customer", data=dict(INTAKE, csrf_token=csrf)).status_code == 403
    assert len(svc.history(a.instance_id)) == before and len(svc.list_cases()) == 3
    assert svc.inbox(roles={"department"}, status="unclaimed").total == 1
    refused = {r["action"] for r in svc.access_log(refused_only=True) if r["user"] == "reviewer"}
    assert refused == {"view_task", "complete_task", "claim_task", "start"}


def test_the_search_filters_and_pages(as_user, cases):
    a, b, c = cases
    reviewer = as_user("reviewer")

    def found(query=""):
        return re.findall(r'<tr data-case="([^"]+)"', text(reviewer.get("/review" + query)))

    assert found() == [c.case_number, b.case_number, a.case_number]            # newest received first
    assert found(f"?case_number={b.case_number}") == [b.case_number]
    assert found("?category=service_attitude") == [b.case_number]
    assert found("?department=品质部") == [a.case_number]
    assert found("?process=enterprise_customer&status=running") == [c.case_number, b.case_number, a.case_number]
    assert found("?status=completed") == []
    assert found("?breached=1") == []
    assert found("?received_from=2030-01-01") == []
    assert found("?limit=10&offset=2") == [a.case_number]
    assert found("?received_from=2026-05-06&received_to=2026-05-06") == [c.case_number, b.case_number, a.case_number]
    assert reviewer.get("/review?limit=5").status_code == 400                   # bounded like the inbox
    assert reviewer.get("/review?offset=-1").status_code == 400
    assert reviewer.get("/review?received_from=2026-13-01").status_code == 400


def test_the_case_page_shows_a_readable_history_with_the_raw_data_behind_a_toggle(as_user, cases):
    page = text(as_user("department").get(f"/cases/{cases[0].case_number}"))
    history = page[page.index('id="history"'):]
    assert "完成了「初步核实」" in history and "李客服" in history
    assert "<details class=\"raw\"><summary>原始数据</summary>" in history
    assert "\\u" not in history                                             # Chinese, not escaped
    assert "王女士" not in history and "13800000000" not in history           # the department does not see identity
    assert "verify-now" not in page                                          # staff get no badge


def test_the_replay_page_shows_the_case_after_each_event(as_user, svc, cases):
    a = cases[0]
    reviewer = as_user("reviewer")
    total = len(svc.history(a.instance_id))
    first = text(reviewer.get(f"/cases/{a.case_number}/replay?until=1"))
    assert 'data-until="1"' in first and 'id="step-back"' not in first and 'id="step-forward"' in first
    assert "初步核实" in first[first.index('id="replay-tasks"'):first.index("waiting_timers") if "waiting_timers" in first else None]
    last = text(reviewer.get(f"/cases/{a.case_number}/replay"))
    assert f'data-until="{total}"' in last and 'id="step-forward"' not in last
    assert "调查核实" in last[last.index('id="replay-tasks"'):]
    # each event of the history jumps to its replay
    assert f'/cases/{a.case_number}/replay?until={total}' in first
    assert reviewer.get(f"/cases/{a.case_number}/replay?until=0").status_code == 400
    assert reviewer.get(f"/cases/{a.case_number}/replay?until=x").status_code == 400
    assert f'data-until="{total}"' in text(reviewer.get(f"/cases/{a.case_number}/replay?until=999"))
    assert as_user("tourism_authority").get(f"/cases/{a.case_number}/replay").status_code == 404


def test_the_replay_diagram_marks_the_path_up_to_the_event(as_user, svc, cases):
    a = cases[0]
    reviewer = as_user("reviewer")
    total = len(svc.history(a.instance_id))
    first = text(reviewer.get(f"/cases/{a.case_number}/replay?until=1"))
    last = text(reviewer.get(f"/cases/{a.case_number}/replay?until={total}"))
    assert 'data-element="preliminary_check" data-state="current"' in first
    assert 'data-element="preliminary_check" data-state="done"' in last
    assert 'data-element="investigate" data-state="current"' in last


def test_the_badge_checks_one_case_and_the_bulk_check_runs_in_the_background(app, as_user, svc, cases):
    a = cases[0]
    reviewer = as_user("reviewer")
    page = text(reviewer.get(f"/cases/{a.case_number}"))
    assert 'data-verified="none"' in page
    csrf = token(reviewer, "/review")
    assert reviewer.post(f"/cases/{a.case_number}/verify", data={"csrf_token": csrf}).status_code == 303
    page = text(reviewer.get(f"/cases/{a.case_number}"))
    assert 'data-verified="ok"' in page and "✓ 一致" in page and "核验于 2026-05-" in page
    # staff cannot run checks
    staff = as_user("department")
    assert staff.post(f"/cases/{a.case_number}/verify", data={"csrf_token": token(staff, "/")}).status_code == 403

    assert reviewer.post("/review/verify", data={"csrf_token": csrf, "process": "enterprise_customer"}).status_code == 303
    app.extensions["complaintflow.bulk_check"].wait(60)
    state = reviewer.get("/review/verify").get_json()
    assert state["running"] is False and state["result"]["checked"] == 3 and state["result"]["consistent"] == 3
    page = text(reviewer.get("/review"))
    assert "共核验 3 件，一致 3 件，不一致 0 件" in page and page.count('data-verified="ok"') == 3
    actions = [r["action"] for r in svc.access_log() if r["user"] == "reviewer"]
    assert "verify_case" in actions and "verify_all" in actions


def test_a_tampered_case_shows_its_first_difference(as_user, svc, cases):
    from sqlalchemy import update
    from complaintflow.engine.models import Event
    a = cases[0]
    with svc.sessions() as s:
        s.execute(update(Event).where(Event.instance_id == a.instance_id, Event.seq == 1)
                  .values(actor="someone_else"))
        s.commit()
    reviewer = as_user("reviewer")
    reviewer.post(f"/cases/{a.case_number}/verify", data={"csrf_token": token(reviewer, "/review")})
    page = text(reviewer.get(f"/cases/{a.case_number}"))
    badge = page[page.index('data-verified="bad"'):]
    assert "✗ 不一致" in badge and "第 1 条事件" in badge[:600]            # where it first differs, in words
    replay = text(reviewer.get(f"/cases/{a.case_number}/replay?until=3"))
    assert 'data-verified="bad"' in replay                                 # the badge on the replay too


def test_a_log_that_cannot_be_replayed_says_so_on_the_replay(as_user, svc, cases):
    from sqlalchemy import select
    from complaintflow.engine.models import Event
    a = cases[0]
    with svc.sessions() as s:
        event = s.execute(select(Event).where(Event.instance_id == a.instance_id, Event.kind == "task_completed")
                          ).scalars().first()
        event.payload = dict(event.payload, data=dict(event.payload["data"], outcome="rejected"))
        seq = event.seq
        s.commit()
    replay = text(as_user("reviewer").get(f"/cases/{a.case_number}/replay?until={seq}"))
    assert 'id="replay-problem"' in replay and "无法按事件日志回放到此处" in replay


def test_the_raw_data_is_pretty_printed_chinese_and_masked(as_user, svc, clock):
    case = start(svc, clock, content="很长的投诉内容" * 50)
    page = text(as_user("reviewer").get(f"/cases/{case.case_number}"))
    raw = page[page.index("<pre>") + 5:page.index("</pre>")]
    assert "很长的投诉内容" in raw and "\\u" not in raw and "\n  " in raw     # Chinese, indented
    assert "王女士" not in raw and "（保密）" in raw


def test_the_reviewer_pages_in_english(as_user, cases):
    reviewer = as_user("reviewer")
    reviewer.get("/lang/en")
    page = text(reviewer.get("/review"))
    assert "Find cases" in page and "Check cases" in page and "not checked yet" in page
    replay = text(reviewer.get(f"/cases/{cases[0].case_number}/replay?until=2"))
    assert f"Replay of {cases[0].case_number}: after event 2 of" in replay and "next event →" in replay
