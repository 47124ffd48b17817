"""/api/v1 as an integration uses it: a token, its roles, the service's rules, one error shape,
idempotent starts (also with real concurrent processes, on SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from complaintflow.engine.tokens import create_token, revoke_token
from conftest import PROCESSES
from webapp import INTAKE, app, as_user, svc, token  # noqa: F401 (fixtures)

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def api(app, svc):
    """A client calling /api/v1 with a token: api(role, ...) -> client with the header set."""
    def make(*roles, name=None):
        name = name or "-".join(roles) or "none"
        secret = create_token(svc, name, roles)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        return client
    return make


def error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code, body
    return body["error"]


def start(client, data=INTAKE, **kw):
    return client.post("/api/v1/processes/enterprise_customer/cases", json={"data": data}, **kw)


def test_a_hotline_registers_a_complaint_and_reads_it_back(api, svc):
    hotline = api("reception", name="hotline")
    listed = hotline.get("/api/v1/processes").get_json()["processes"]
    mine = next(p for p in listed if p["process_id"] == "enterprise_customer")
    assert mine["may_start"] is True and mine["start_role"] == "reception"
    schema = hotline.get(mine["intake_schema"]).get_json()
    assert schema["properties"]["complainant"]["title"] == "投诉人"
    r = start(hotline)
    assert r.status_code == 201, r.get_data(as_text=True)
    case = r.get_json()
    assert case["case_number"].startswith("KH-") and r.headers["Location"] == case["case"]
    assert [t["task"] for t in case["open_tasks"]] == ["preliminary_check"]
    read = hotline.get(case["case"]).get_json()
    assert read["data"]["complainant"] == "王女士" and read["started_by"] == "api:hotline"
    # the event log and the access log name the token
    assert svc.history(case["instance_id"])[0]["actor"] == "api:hotline"
    log = svc.access_log(limit=20)
    assert any(e["user"] == "api:hotline" and e["action"] == "api.start_case" and e["allowed"] for e in log)
    history = hotline.get(case["case"] + "/history").get_json()["events"]
    assert history[0]["kind"] == "started" and "登记了投诉" in history[0]["sentence"]
    deadlines = hotline.get(case["case"] + "/deadlines").get_json()["deadlines"]
    assert deadlines and all(d["due"] for d in deadlines)


def test_without_a_valid_token_every_call_is_401_with_a_reason(app, api, svc):
    anonymous = app.test_client()
    assert "token" in error(anonymous.get("/api/v1/tasks"), 401, "unauthorized")["message"]
    wrong = app.test_client()
    wrong.environ_base["HTTP_AUTHORIZATION"] = "Bearer cft_not-a-real-secret"
    assert "not known" in error(wrong.get("/api/v1/tasks"), 401, "unauthorized")["message"]
    hotline = api("reception", name="hotline")
    assert hotline.get("/api/v1/tasks").status_code == 200
    revoke_token(svc, "hotline")
    assert "revoked" in error(hotline.get("/api/v1/tasks"), 401, "unauthorized")["message"]
    refused = [e for e in svc.access_log(refused_only=True) if e["action"] == "api.list_tasks"]
    assert len(refused) == 3


def test_a_signed_in_browser_session_is_not_a_token_and_needs_no_csrf_token_with_one(as_user, api):
    browser = as_user("reception")                # a reception user, signed in
    error(browser.get("/api/v1/tasks"), 401, "unauthorized")
    assert browser.get("/api/tasks").status_code == 200       # the read-only /api keeps working
    r = start(api("reception"))                    # a POST without any CSRF token
    assert r.status_code == 201


def test_roles_of_the_token_decide_what_it_may_register_see_and_do(api, svc):
    hotline = api("reception", name="hotline")
    department = api("department", name="dept")
    error(start(department), 403, "start_role")
    case = start(hotline).get_json()
    # the department has no task in the case yet: the case is answered as missing
    error(department.get(case["case"]), 404, "not_found")
    task_id = case["open_tasks"][0]["task_id"]
    error(department.get(f"/api/v1/tasks/{task_id}"), 404, "not_found")
    error(department.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {}}), 404, "not_found")
    assert [t["task_id"] for t in hotline.get("/api/v1/tasks").get_json()["tasks"]] == [task_id]
    assert department.get("/api/v1/tasks").get_json()["tasks"] == []
    assert svc.show(case["instance_id"])["open_tasks"][0]["status"] == "open"


def test_form_errors_are_422_with_fields_and_register_nothing(api, svc):
    hotline = api("reception", name="hotline")
    bad = dict(INTAKE, channel="fax")
    del bad["complainant"]
    err = error(start(hotline, bad), 422, "form_invalid")
    assert set(err["fields"]) == {"channel", "complainant"}
    assert "is required" in err["fields"]["complainant"][0]
    zh = error(start(hotline, bad, headers={"Accept-Language": "zh-CN"}), 422, "form_invalid")
    assert "必填" in zh["fields"]["complainant"][0]
    error(hotline.post("/api/v1/processes/enterprise_customer/cases", data="{not json",
                       content_type="application/json"), 400, "bad_json")
    assert error(hotline.post("/api/v1/processes/enterprise_customer/cases", json={"data": INTAKE, "x": 1}),
                 422, "invalid_body")["fields"] == {"x": ["Unknown field."]}
    error(start(hotline, dict(INTAKE, content="a\x00b")), 400, "bad_nul")
    error(hotline.get("/api/v1/processes/nope/intake-schema"), 404, "not_found")
    error(hotline.get("/api/v1/tasks?limit=0"), 400, "bad_parameter")
    error(hotline.get("/api/v1/nothing-here"), 404, "not_found")
    error(hotline.delete("/api/v1/tasks"), 405, "method_not_allowed")
    assert svc.list_cases() == []


def test_claim_complete_with_row_version_and_conflicts(api, svc):
    hotline = api("reception", name="hotline")
    desk = api("reception", name="desk")
    case = start(hotline).get_json()
    task = case["open_tasks"][0]["task_id"]
    claimed = hotline.post(f"/api/v1/tasks/{task}/claim").get_json()
    assert claimed["claimed_by"] == "api:hotline"
    assert "api:hotline" in error(desk.post(f"/api/v1/tasks/{task}/claim"), 409, "task_claimed")["message"]
    version = hotline.get(case["case"]).get_json()["row_version"]
    form = {"outcome": "accepted", "severity": "general", "department": "品质部"}
    err = error(hotline.post(f"/api/v1/tasks/{task}/complete", json={"data": form, "row_version": version - 1}),
                409, "case_version")
    assert f"version {version - 1}" in err["message"]
    assert hotline.post(f"/api/v1/tasks/{task}/release").get_json()["claimed_by"] is None
    done = hotline.post(f"/api/v1/tasks/{task}/complete", json={"data": form, "row_version": version})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["open_tasks"][0]["task"] != "preliminary_check"
    assert svc.history(case["instance_id"])[-1]["actor"] in ("api:hotline", "system")
    assert any(e["actor"] == "api:hotline" and e["kind"] == "task_completed"
               for e in svc.history(case["instance_id"]))
    error(hotline.post(f"/api/v1/tasks/{task}/complete", json={"data": form}), 409, "task_done_by")
    error(hotline.post(f"/api/v1/cases/{case['instance_id']}/messages", json={"name": "nothing"}), 409,
          "no_message_wait")


def test_identity_fields_are_masked_for_a_token_without_the_right_to_see_them(api, svc):
    case = start(api("reception", name="hotline")).get_json()
    task = case["open_tasks"][0]["task_id"]
    svc.complete_task(task, "reception", {"outcome": "accepted", "severity": "general", "department": "品质部"})
    department = api("department", name="dept")
    read = department.get(case["case"]).get_json()
    assert read["data"]["complainant"] != "王女士" and read["data"]["content"] == INTAKE["content"]
    assert "王女士" not in department.get(case["case"] + "/history").get_data(as_text=True)


def test_search_is_limited_to_procedures_the_token_registers_for(api):
    hotline = api("reception", name="hotline")
    case = start(hotline).get_json()
    found = hotline.get("/api/v1/cases?process=enterprise_customer").get_json()
    assert [c["case_number"] for c in found["cases"]] == [case["case_number"]]
    assert error(hotline.get("/api/v1/cases"), 400, "bad_parameter")["fields"].keys() == {"process"}
    error(api("department", name="dept").get("/api/v1/cases?process=enterprise_customer"), 403, "start_role")
    reviewer = api("reviewer")
    assert reviewer.get("/api/v1/cases?status=running").get_json()["cases"][0]["instance_id"] == case["instance_id"]


def test_a_retried_start_with_the_same_key_gets_the_first_answer(api, svc):
    hotline = api("reception", name="hotline")
    first = start(hotline, headers={"Idempotency-Key": "call-42"})
    again = start(hotline, headers={"Idempotency-Key": "call-42"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(svc.list_cases()) == 1
    error(start(hotline, dict(INTAKE, content="另一件事"), headers={"Idempotency-Key": "call-42"}), 422,
          "idempotency_key_reused")
    # keys are per token: another token's same key is another request
    assert start(api("reception", name="web"), headers={"Idempotency-Key": "call-42"}).status_code == 201
    # a refused first attempt keeps nothing: the corrected retry registers the case
    bad = start(hotline, dict(INTAKE, channel="fax"), headers={"Idempotency-Key": "call-43"})
    assert bad.status_code == 422
    assert start(hotline, headers={"Idempotency-Key": "call-43"}).status_code == 201
    assert len(svc.list_cases()) == 3
    error(start(hotline, headers={"Idempotency-Key": "x" * 300}), 400, "bad_idempotency_key")


def _start_in_process(url, secret, barrier, out):
    """A separate process with its own app on the same database, starting with one key."""
    from concurrency import TEST_KEY
    from complaintflow.engine.service import ComplaintService
    from complaintflow.web.app import create_app, load_roles
    from complaintflow.web.users import DEMO_USERS, load_users
    roles = load_roles(PROCESSES)
    app = create_app(ComplaintService(url, chain_key=TEST_KEY), users=load_users(DEMO_USERS, set(roles)),
                     roles=roles, secret_key="test", testing=True)
    client = app.test_client()
    barrier.wait(timeout=60)
    r = client.post("/api/v1/processes/enterprise_customer/cases", json={"data": INTAKE},
                    headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "same-call"})
    out.put((r.status_code, r.get_json()))


def test_concurrent_retries_with_one_key_register_one_case(db_url, app, svc):
    secret = create_token(svc, "hotline", ["reception"])
    ctx = mp.get_context("spawn")
    n = 4
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_start_in_process, args=(db_url, secret, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    answers = [out.get(timeout=180) for _ in range(n)]
    for p in procs:
        p.join(timeout=30)
    assert {status for status, _ in answers} == {201}, answers
    assert len({body["instance_id"] for _, body in answers}) == 1
    assert len(svc.list_cases()) == 1
