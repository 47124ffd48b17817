"""The staff inbox through Flask's test client: sign-in, CSRF, intake, role inbox, task page
(server-side validation, nothing changed on error, colleague conflicts), case page,
confidentiality, language, the JSON API; and the scheduler job behind `serve`."""

from __future__ import annotations

import re

import pytest

from complaintflow.engine.clock import ensure_aware, parse_instant
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.scheduler import start_scheduler
from complaintflow.web.users import DEMO_USERS, UsersFileError, load_users
from conftest import PROCESSES, open_task
from webapp import sign_in, token

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00"}     # as the form's field sends it


def register(client, **overrides):
    data = dict(INTAKE, **overrides)
    data["csrf_token"] = token(client, "/new/enterprise_customer")
    return client.post("/new/enterprise_customer", data=data)


def accept(svc, case_id, user="reception"):
    task = open_task(svc, case_id, "preliminary_check")
    svc.complete_task(task["task_id"], user, {"outcome": "accepted", "severity": "general", "department": "品质部"})
    return open_task(svc, case_id, "investigate")


def only_case(svc):
    (case,) = svc.list_cases()
    return case


def test_pages_need_sign_in_and_wrong_passwords_are_refused_and_logged(app, svc):
    client = app.test_client()
    assert client.get("/").headers["Location"].startswith("/login")
    bad = client.post("/login", data={"login": "reception", "password": "nope", "csrf_token": token(client)})
    assert bad.status_code == 401 and "用户名或密码不正确" in bad.get_data(as_text=True)
    assert svc.access_log(refused_only=True)[0]["action"] == "sign_in"
    sign_in(client, "reception")
    page = client.get("/").get_data(as_text=True)
    assert "李客服" in page and "客服接待" in page
    client.post("/logout", data={"csrf_token": token(client, "/")})
    assert client.get("/").status_code == 302


def test_a_form_posted_without_the_csrf_token_changes_nothing(as_user, svc):
    client = as_user("reception")
    response = client.post("/new/enterprise_customer", data=INTAKE)
    assert response.status_code == 303
    assert svc.list_cases() == []
    assert "页面已过期" in client.get("/").get_data(as_text=True)


def test_registration_shows_the_case_number_and_what_the_complainant_is_told(as_user, svc):
    client = as_user("reception")
    response = register(client)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="registered-number">KH-2026-000001<' in page
    assert "我们承诺在 2026年05月08日 17:00 前给您答复" in page
    case = only_case(svc)
    assert case["started_by"] == "reception"


def test_an_invalid_registration_shows_errors_beside_the_fields_keeps_the_input_and_stores_nothing(as_user, svc):
    client = as_user("reception")
    response = register(client, category="weather", contact="")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="form-errors"' in page
    assert re.search(r'field-error[^>]*>\s*<label for="f-category"', page)
    assert "新买的电水壶漏水" in page                       # what was typed is still there
    assert svc.list_cases() == []


def test_only_roles_that_may_register_see_the_procedure(as_user):
    client = as_user("department")
    assert "enterprise_customer" not in client.get("/new").get_data(as_text=True)
    assert client.get("/new/enterprise_customer").status_code == 403


def test_the_department_finds_the_task_in_its_inbox_and_completes_it_after_a_failed_attempt(as_user, svc):
    register(as_user("reception"))
    case = only_case(svc)
    task = accept(svc, case["instance_id"])
    client = as_user("department")
    inbox = client.get("/").get_data(as_text=True)
    assert "调查核实" in inbox and "KH-2026-000001" in inbox and "05月08日（周五）17:00" in inbox
    assert as_user("reception").get("/").get_data(as_text=True).count("调查核实") == 0
    before = len(svc.history(case["instance_id"]))
    bad = client.post(f"/tasks/{task['task_id']}", data={"csrf_token": token(client, f"/tasks/{task['task_id']}"),
                                                          "findings": "密封圈缺陷"})
    assert bad.status_code == 400
    assert 'id="e-responsible_party"' in bad.get_data(as_text=True)
    assert len(svc.history(case["instance_id"])) == before     # nothing changed
    good = client.post(f"/tasks/{task['task_id']}", data={"csrf_token": token(client, f"/tasks/{task['task_id']}"),
                                                           "findings": "密封圈缺陷", "responsible_party": "company"})
    assert good.status_code == 303
    assert "任务已办结" in client.get("/").get_data(as_text=True)
    assert [t["task"] for t in svc.list_tasks(instance_id=case["instance_id"])] == ["agree_solution"]


def test_completing_a_task_a_colleague_just_completed_says_so(app, svc):
    register(sign_in(app.test_client(), "reception"))
    case = only_case(svc)
    task = accept(svc, case["instance_id"])
    mine = sign_in(app.test_client(), "department")
    csrf = token(mine, f"/tasks/{task['task_id']}")                 # page open
    svc.complete_task(task["task_id"], "colleague", {"findings": "已查明", "responsible_party": "company"})
    response = mine.post(f"/tasks/{task['task_id']}", data={"csrf_token": csrf, "findings": "x",
                                                             "responsible_party": "company"})
    assert response.status_code == 409                 # the conflict page: who, when, nothing changed
    page = response.get_data(as_text=True)
    assert "colleague 已于 2026-05-06 09:00 先行处理" in page and "未作任何更改" in page


def test_a_user_of_another_role_cannot_open_or_complete_the_task_and_the_attempt_is_logged(as_user, svc):
    register(as_user("reception"))
    case = only_case(svc)
    task = accept(svc, case["instance_id"])
    other = as_user("manager")
    assert other.get(f"/tasks/{task['task_id']}").status_code == 404      # as if there were none (issue 9)
    response = other.post(f"/tasks/{task['task_id']}", data={"csrf_token": token(other, "/"), "findings": "x",
                                                              "responsible_party": "company"})
    assert response.status_code == 404
    refused = svc.access_log(refused_only=True)
    assert [(r["user"], r["action"]) for r in refused] == [("manager", "complete_task"), ("manager", "view_task")]
    assert open_task(svc, case["instance_id"], "investigate")["task_id"] == task["task_id"]


def test_the_case_page_shows_timeline_deadlines_and_the_diagram_with_the_path(as_user, svc):
    register(as_user("reception"))
    case = only_case(svc)
    accept(svc, case["instance_id"])
    page = as_user("department").get(f"/cases/{case['case_number']}").get_data(as_text=True)
    assert "李客服（客服接待）完成了「初步核实」" in page                          # who (name, role), what
    assert 'data-deadline="promised"' in page and "进行中" in page
    assert '<svg' in page and 'data-element="preliminary_check" data-state="done"' in page
    assert 'data-element="investigate" data-state="current"' in page


def test_complainant_identity_is_shown_only_to_roles_that_need_it(as_user, svc):
    register(as_user("reception"))
    case = only_case(svc)
    accept(svc, case["instance_id"])
    reception = as_user("reception").get(f"/cases/{case['instance_id']}").get_data(as_text=True)
    department = as_user("department").get(f"/cases/{case['instance_id']}").get_data(as_text=True)
    assert "王女士" in reception and "13800000000" in reception
    assert "王女士" not in department and "13800000000" not in department and "（保密）" in department
    assert "电水壶漏水" in department                                            # the matter itself is shown


def test_a_case_outside_ones_roles_is_refused(as_user, svc):
    register(as_user("reception"))
    case = only_case(svc)
    assert as_user("tourism_authority").get(f"/cases/{case['instance_id']}").status_code == 404   # as if missing
    assert svc.access_log(refused_only=True)[0]["action"] == "view_case"


def test_claim_and_release_from_the_inbox(as_user, svc):
    register(as_user("reception"))
    case = only_case(svc)
    task = accept(svc, case["instance_id"])
    client = as_user("department")
    client.post(f"/tasks/{task['task_id']}/claim", data={"csrf_token": token(client, "/")})
    assert open_task(svc, case["instance_id"], "investigate")["task_id"] == task["task_id"]
    assert svc.inbox(roles={"department"}, user="department", status="mine").total == 1
    assert "释放" in client.get("/").get_data(as_text=True)
    client.post(f"/tasks/{task['task_id']}/release", data={"csrf_token": token(client, "/")})
    assert svc.inbox(roles={"department"}, status="unclaimed").total == 1


def test_staff_can_switch_to_english(as_user):
    client = as_user("reception")
    assert "待办" in client.get("/").get_data(as_text=True)
    client.get("/lang/en")
    page = client.get("/").get_data(as_text=True)
    assert "Inbox" in page and "Sign out" in page and 'lang="en"' in page


def test_the_json_api_needs_a_session_and_applies_the_same_rules(app, as_user, svc):
    assert app.test_client().get("/api/tasks").status_code == 401
    register(as_user("reception"))
    case = only_case(svc)
    accept(svc, case["instance_id"])
    department = as_user("department")
    assert [t["task"] for t in department.get("/api/tasks").get_json()] == ["investigate"]
    shown = department.get(f"/api/cases/{case['case_number']}").get_json()
    assert shown["data"]["complainant"] == "（保密）" and shown["data"]["content"] == "新买的电水壶漏水"
    history = department.get(f"/api/cases/{case['instance_id']}/history").get_json()
    assert history[0]["payload"]["data"]["contact"] == "（保密）"
    assert as_user("tourism_authority").get(f"/api/cases/{case['instance_id']}").status_code == 404
    assert department.get("/api/cases/nope").status_code == 404


def test_every_role_has_a_demo_user_and_a_broken_users_file_is_refused(tmp_path):
    roles = load_roles(PROCESSES)
    users = load_users(DEMO_USERS, set(roles))
    assert {r for u in users.users.values() for r in u.roles} == set(roles)
    bad = tmp_path / "users.toml"
    bad.write_text('[users.li]\nroles = ["reception", "astronaut"]\npassword_hash = "scrypt:1:2:3$x$y"\n')
    with pytest.raises(UsersFileError, match="user 'li': unknown role\\(s\\) astronaut"):
        load_users(bad, set(roles))
    bad.write_text('[users.li]\nroles = ["reception"]\npassword_hash = "demo"\n')
    with pytest.raises(UsersFileError, match="'password_hash' must be a werkzeug password hash"):
        load_users(bad, set(roles))


def test_scheduler_job_fires_due_timers(mini, clock):
    case = mini.start("mini", {"subject": "电梯故障", "due_at": "2026-05-06T12:00:00+08:00"}, "alice")
    scheduler = start_scheduler(mini, 5)
    try:
        job = scheduler.get_job("complaintflow-tick")
        assert job.trigger.interval.total_seconds() == 5
        assert job.max_instances == 1 and job.coalesce is True
    finally:
        # the first tick runs at once in the scheduler's thread: let it end (nothing is due yet)
        # so that it cannot race the call below for the case (it did, now and then)
        scheduler.shutdown(wait=True)
    clock.advance(hours=4)
    job.func()                          # what APScheduler runs every 5 s
    assert open_task(mini, case.instance_id, "supervise")["role"] == "manager"


def test_scheduler_refuses_a_zero_interval(mini):
    with pytest.raises(ValueError, match="at least 1"):
        start_scheduler(mini, 0)


def test_an_anonymous_reporter_is_never_shown_to_the_handling_unit(service):
    from test_market_regulator import REPORT, dispatch, name_handler
    service.deploy([PROCESSES / "market_regulator.bpmn"])
    roles = load_roles(PROCESSES)
    app = create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    report = {k: v for k, v in REPORT.items() if k != "requester_name"}
    case = service.start("market_regulator", dict(report, anonymous=True), "complaint_center")
    dispatch(service, case)
    name_handler(service, case)
    assert "verify_report" in {t["task"] for t in service.list_tasks(instance_id=case.instance_id)}
    centre = sign_in(app.test_client(), "complaint_center").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    handler = sign_in(app.test_client(), "handler")
    page = handler.get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "13900000002" in centre                        # the desk that registered the report
    assert "13900000002" not in page and "（保密）" in page  # the handler, though it may see complainants
    history = handler.get(f"/api/cases/{case.instance_id}/history").get_json()
    assert "13900000002" not in str(history)


@pytest.mark.parametrize("process_id, sample", [
    ("hospital_patient", "INTAKE"), ("market_regulator", "COMPLAINT"), ("medical_insurance", "INTAKE"),
    ("property_management", "INTAKE"), ("tourism", "INTAKE"), ("enterprise_customer", "INTAKE"),
    ("consumer_association", "INTAKE"), ("health_supervision", "INTAKE"),
    ("school", "INTAKE"), ("labour_inspection", "INTAKE"), ("government_service", "INTAKE"),
    ("hospital_price", "INTAKE"), ("bank", "INTAKE"), ("scenic_area", "INTAKE"),
    ("utility_service", "INTAKE"), ("employee_internal", "INTAKE"), ("telecom_service", "INTAKE")])
def test_every_shipped_procedure_can_be_registered_from_the_inbox_by_its_registering_role(service, process_id, sample):
    import importlib

    from werkzeug.datastructures import MultiDict

    from complaintflow.web import formgen
    service.deploy([PROCESSES / f"{process_id}.bpmn"])
    roles = load_roles(PROCESSES)
    app = create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="t", testing=True)
    info = service.process_info(process_id)
    data = getattr(importlib.import_module(f"test_{process_id}"), sample)
    if data.get("received_at"):         # registered when it arrived: a receipt may not lie ahead
        service.clock.set(max(service.clock.now(), ensure_aware(parse_instant(data["received_at"]))))
    values = formgen.to_form_values(info["forms"][info["meta"]["start_form"]], data)
    form = MultiDict([(k, x) for k, v in values.items() for x in (v if isinstance(v, list) else [v])])
    client = sign_in(app.test_client(), info["meta"]["start_role"])
    form["csrf_token"] = token(client, f"/new/{process_id}")
    response = client.post(f"/new/{process_id}", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    (case,) = service.list_cases()
    assert f'id="registered-number">{case["case_number"]}<' in page
    assert 'class="ack"' in page                        # what the complainant was told
