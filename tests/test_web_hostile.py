"""The web inbox under hostile input (issue 9): numeric parameters out of range, oversize
requests, copied session cookies, password guessing, case-number enumeration, cookies over
HTTPS. Flask's test client on the controlled clock; nothing here sleeps."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
from werkzeug.security import generate_password_hash

from complaintflow.engine.errors import InvalidInput
from complaintflow.engine.models import WebSession
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from test_web import INTAKE, accept, only_case, register, token

SETTINGS = ("COMPLAINTFLOW_MAX_REQUEST_BYTES", "COMPLAINTFLOW_SECURE_COOKIES", "COMPLAINTFLOW_LOGIN_MAX_FAILURES",
            "COMPLAINTFLOW_LOGIN_LOCKOUT_MINUTES", "COMPLAINTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS",
            "COMPLAINTFLOW_RATELIMIT_STORAGE_URI", "COMPLAINTFLOW_TRUSTED_PROXIES")


@pytest.fixture
def make_app(service, monkeypatch):
    """An inbox app on the test's service, with the given settings in the environment."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    service.deploy([PROCESSES / "enterprise_customer.bpmn"])
    roles = load_roles(PROCESSES)

    def make(users=None, **env):
        for name, value in env.items():
            monkeypatch.setenv(name, str(value))
        return create_app(service, users=users or load_users(DEMO_USERS, set(roles)), roles=roles,
                          secret_key="test", testing=True)
    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def svc(app):
    return app.extensions["complaintflow"].service


def page_text(response) -> str:
    """A response body without its CSRF tokens (signed with a timestamp, they differ between
    any two pages served in different seconds)."""
    return re.sub(r'name="csrf_token" value="[^"]+"', "", response.get_data(as_text=True))


def attempt(client, login, password="demo", address="10.0.0.1"):
    return client.post("/login", data={"login": login, "password": password, "csrf_token": token(client)},
                       environ_base={"REMOTE_ADDR": address})


def sign_in(client, login, password="demo", address="10.0.0.1"):
    response = attempt(client, login, password, address)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


# --- 1. numeric parameters are bounded ------------------------------------------------------

def test_an_inbox_page_number_out_of_range_or_not_a_number_is_a_clear_400(app):
    client = sign_in(app.test_client(), "department")
    for page in ["99999999999999999999", "-1", "0", "abc", "1e3", "10001", " 2", "２", "9" * 5000]:
        response = client.get("/", query_string={"page": page})
        assert response.status_code == 400, page
        assert "页码应为 1 到 10000 之间的整数" in response.get_data(as_text=True)


def test_an_inbox_page_in_range_still_works(app):
    client = sign_in(app.test_client(), "department")
    assert client.get("/?page=2").status_code == 200
    assert client.get("/?page=").status_code == 200             # empty: the first page


def test_an_api_limit_out_of_range_or_not_a_number_is_a_400_in_json(app):
    client = sign_in(app.test_client(), "department")
    for limit in ["99999999999999999999", "0", "201", "-5", "ten", "5.5"]:
        response = client.get("/api/tasks", query_string={"limit": limit})
        assert response.status_code == 400, limit
        assert response.get_json()["error"] == "parameter 'limit': must be a whole number in 1..200"
    assert client.get("/api/tasks?limit=200").status_code == 200


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_nul_character_anywhere_is_a_400_not_a_database_error(app, svc):
    client = sign_in(app.test_client(), "reception")
    for url in ["/cases/KH%00", "/tasks/a%00b", "/?process=a%00b", "/?category=%00"]:
        response = client.get(url)
        assert response.status_code == 400, url
        assert "空字符" in response.get_data(as_text=True)
    assert client.get("/api/cases/KH%00/history").get_json()["error"].startswith("parameter 'ref'")
    data = dict(INTAKE, content="漏水\x00", csrf_token=token(client, "/new/enterprise_customer"))
    assert client.post("/new/enterprise_customer", data=data).status_code == 400
    assert client.post("/login", data={"login": "x\x00", "password": "p", "csrf_token": token(client)}).status_code == 400
    assert svc.list_cases() == []


def test_a_number_too_large_in_a_task_form_is_a_field_error_and_changes_nothing(app, svc):
    register(sign_in(app.test_client(), "reception"))
    case = only_case(svc)
    task = accept(svc, case["instance_id"])
    svc.complete_task(task["task_id"], "department", {"findings": "已查明", "responsible_party": "company"})
    agree = open_task(svc, case["instance_id"], "agree_solution")
    client = sign_in(app.test_client(), agree["role"])
    before = len(svc.history(case["instance_id"]))
    url = f"/tasks/{agree['task_id']}"
    response = client.post(url, data={"csrf_token": token(client, url), "solution_type": "refund", "solution": "退款",
                                      "customer_agreed": "true", "amount": "9" * 4000})
    assert response.status_code == 400
    assert re.search(r'id="e-amount"[^>]*>[^<]*数值超出', response.get_data(as_text=True))
    assert len(svc.history(case["instance_id"])) == before


def test_a_table_row_number_out_of_range_is_a_form_error_not_a_crash(app, svc):
    svc.deploy([PROCESSES / "tourism.bpmn"])
    info = svc.process_info("tourism")
    client = sign_in(app.test_client(), info["meta"]["start_role"])
    url = "/new/tourism"
    response = client.post(url, data={"csrf_token": token(client, url), "representatives." + "9" * 5000: "张三"})
    assert response.status_code == 400
    assert "行号" in response.get_data(as_text=True)
    assert svc.list_cases() == []


# --- 2. request size --------------------------------------------------------------------------

class Unreadable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self):
        return True

    def readinto(self, buffer):
        raise AssertionError("the body of an oversize request was read")


def test_an_oversize_post_is_refused_with_413_before_its_body_is_read(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 2 * 1024 * 1024
    client = app.test_client()
    response = client.post("/login", environ_overrides={
        "wsgi.input": Unreadable(), "CONTENT_LENGTH": str(300 * 1024 * 1024),
        "CONTENT_TYPE": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert "请求内容过大" in response.get_data(as_text=True)
    sign_in(client, "reception")                                       # a normal sign-in still works


def test_the_request_size_limit_is_a_setting_and_applies_to_every_form(make_app):
    app = make_app(COMPLAINTFLOW_MAX_REQUEST_BYTES=20_000)
    client = sign_in(app.test_client(), "reception")
    data = dict(INTAKE, content="长" * 10_000, csrf_token=token(client, "/new/enterprise_customer"))
    assert client.post("/new/enterprise_customer", data=data).status_code == 413
    assert register(client).status_code == 303
    api = client.get("/api/tasks", environ_overrides={"wsgi.input": Unreadable(), "CONTENT_LENGTH": "30000"})
    assert api.status_code == 413 and "error" in api.get_json()


def test_a_bad_setting_is_refused_at_start_naming_it(make_app, monkeypatch):
    for name, value in [("COMPLAINTFLOW_MAX_REQUEST_BYTES", "2MB"), ("COMPLAINTFLOW_MAX_REQUEST_BYTES", "0"),
                        ("COMPLAINTFLOW_SECURE_COOKIES", "perhaps"), ("COMPLAINTFLOW_LOGIN_MAX_FAILURES", "-1"),
                        ("COMPLAINTFLOW_TRUSTED_PROXIES", "all"), ("COMPLAINTFLOW_RATELIMIT_STORAGE_URI", "nosuch://x")]:
        with pytest.raises(InvalidInput, match=name):
            make_app(**{name: value})
        monkeypatch.delenv(name)


# --- 3. sessions kept on the server -------------------------------------------------------------

def session_cookie(client):
    return client.get_cookie("session").value


def test_a_cookie_copied_before_sign_out_no_longer_works_after_it(app, svc):
    client = sign_in(app.test_client(), "reception")
    copied = session_cookie(client)
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/").status_code == 200                          # the copy works while signed in
    client.post("/logout", data={"csrf_token": token(client, "/")})
    response = thief.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert thief.get("/api/tasks").status_code == 401
    with svc.sessions() as s:
        (row,) = s.query(WebSession).all()
    assert row.user == "reception" and row.ended_at is not None and row.address == "10.0.0.1"


def test_the_cookie_carries_no_user_name_only_a_token_whose_hash_is_stored(app, svc):
    client = sign_in(app.test_client(), "reception")
    with client.session_transaction() as cookie:
        assert "user" not in cookie
        digest = hashlib.sha256(cookie["sid"].encode()).hexdigest()
    with svc.sessions() as s:
        row = s.get(WebSession, digest)
        assert row is not None and row.user == "reception"


def test_a_cookie_with_an_unknown_token_is_not_signed_in(app):
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["sid"] = "forged"
        cookie["user"] = "admin"                              # what the old cookie carried
    assert client.get("/").status_code == 302


def test_a_password_change_in_the_users_file_ends_sessions_made_before_it(make_app, tmp_path):
    import os
    roles = load_roles(PROCESSES)
    path = tmp_path / "users.toml"

    def write(password, stamp):
        path.write_text(f'[users.li]\nname = "李客服"\nroles = ["reception"]\n'
                        f'password_hash = "{generate_password_hash(password)}"\n', encoding="utf-8")
        os.utime(path, ns=(stamp, stamp))

    write("old-secret", 1_000_000_000_000_000_000)
    app = make_app(users=load_users(path, set(roles)))
    client = sign_in(app.test_client(), "li", "old-secret")
    other = sign_in(app.test_client(), "li", "old-secret")
    assert client.get("/").status_code == 200
    write("new-secret", 1_000_000_100_000_000_000)
    assert client.get("/").status_code == 302                             # ended by the change
    assert other.get("/api/tasks").status_code == 401
    sign_in(client, "li", "new-secret")
    assert client.get("/").status_code == 200
    assert attempt(app.test_client(), "li", "old-secret").status_code == 401


def test_a_user_removed_from_the_users_file_is_signed_out(make_app, tmp_path):
    import os
    roles = load_roles(PROCESSES)
    path = tmp_path / "users.toml"
    digest = generate_password_hash("pw")
    path.write_text(f'[users.li]\nroles = ["reception"]\npassword_hash = "{digest}"\n'
                    f'[users.wang]\nroles = ["department"]\npassword_hash = "{digest}"\n')
    app = make_app(users=load_users(path, set(roles)))
    li, wang = sign_in(app.test_client(), "li", "pw"), sign_in(app.test_client(), "wang", "pw")
    path.write_text(f'[users.wang]\nroles = ["department"]\npassword_hash = "{digest}"\n')
    os.utime(path, ns=(2_000_000_000_000_000_000,) * 2)
    assert li.get("/").status_code == 302 and wang.get("/").status_code == 200


def test_a_broken_users_file_keeps_the_last_good_one(make_app, tmp_path):
    import os
    roles = load_roles(PROCESSES)
    path = tmp_path / "users.toml"
    path.write_text(f'[users.li]\nroles = ["reception"]\npassword_hash = "{generate_password_hash("pw")}"\n')
    app = make_app(users=load_users(path, set(roles)))
    client = sign_in(app.test_client(), "li", "pw")
    path.write_text("[users.li\n")                                   # half-saved by an editor
    os.utime(path, ns=(2_000_000_000_000_000_000,) * 2)
    assert client.get("/").status_code == 200


def test_last_seen_is_written_at_most_once_a_minute(app, svc, clock):
    client = sign_in(app.test_client(), "reception")

    def last_seen():
        with svc.sessions() as s:
            (row,) = s.query(WebSession).all()
            return row.last_seen_at
    signed_in = last_seen()
    clock.advance(seconds=59)
    client.get("/")
    assert last_seen() == signed_in
    clock.advance(seconds=2)
    client.get("/")
    assert last_seen() == clock.now()


# --- 4. password guessing --------------------------------------------------------------------

class FakeTime:
    """Stands in for the `time` module inside the limits library's memory storage, which
    reads time.time() directly and has no clock of its own to inject."""

    def __init__(self, start=1_800_000_000.0):
        self.now = start

    def time(self):
        return self.now


@pytest.fixture
def limiter_time(monkeypatch):
    import limits.storage.memory
    fake = FakeTime()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    return fake


def test_five_wrong_passwords_lock_the_user_out_even_with_the_right_one_and_it_is_logged(app, svc, limiter_time):
    client = app.test_client()
    for _ in range(5):
        assert attempt(client, "reception", "guess").status_code == 401
    locked = attempt(client, "reception", "demo")
    assert locked.status_code == 429
    assert "登录失败次数过多，请 15 分钟后再试" in locked.get_data(as_text=True)
    assert int(locked.headers["Retry-After"]) == 15 * 60
    refused = svc.access_log(refused_only=True)
    assert len(refused) == 6 and refused[0]["user"] == "reception" and refused[0]["action"] == "sign_in"
    assert "locked" in refused[0]["reason"]
    assert attempt(app.test_client(), "reception", "demo", address="10.9.9.9").status_code == 429  # any address
    sign_in(app.test_client(), "department")                          # another user is unaffected
    limiter_time.now += 14 * 60
    assert attempt(client, "reception", "demo").status_code == 429
    limiter_time.now += 61
    sign_in(client, "reception")                                       # the lockout has run out


def test_only_failed_attempts_count(app, limiter_time):
    for _ in range(6):
        sign_in(app.test_client(), "reception")
    client = app.test_client()
    for _ in range(4):
        attempt(client, "reception", "guess")
    sign_in(client, "reception")


def test_many_users_tried_from_one_address_lock_that_address_only(make_app, limiter_time):
    app = make_app(COMPLAINTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS=6)
    client = app.test_client()
    for login in ["a", "b", "c", "d", "e", "f"]:
        assert attempt(client, login, "guess", address="10.0.0.66").status_code == 401
    locked = attempt(client, "reception", "demo", address="10.0.0.66")
    assert locked.status_code == 429 and "登录失败次数过多" in locked.get_data(as_text=True)
    sign_in(app.test_client(), "reception", address="10.0.0.77")


def test_the_lockout_settings_are_read_from_the_environment(make_app, limiter_time):
    app = make_app(COMPLAINTFLOW_LOGIN_MAX_FAILURES=2, COMPLAINTFLOW_LOGIN_LOCKOUT_MINUTES=3)
    client = app.test_client()
    attempt(client, "reception", "x"), attempt(client, "reception", "y")
    client.get("/lang/en")
    locked = attempt(client, "reception", "demo")
    assert locked.status_code == 429 and "try again in 3 minutes" in locked.get_data(as_text=True)
    limiter_time.now += 3 * 60 + 1
    sign_in(client, "reception")


def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for(make_app, limiter_time, svc):
    app = make_app(COMPLAINTFLOW_TRUSTED_PROXIES=1, COMPLAINTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS=2)
    client = app.test_client()
    for login in ("a", "b"):
        client.post("/login", data={"login": login, "password": "x", "csrf_token": token(client)},
                    headers={"X-Forwarded-For": "203.0.113.5"}, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    other = app.test_client()
    response = other.post("/login", data={"login": "reception", "password": "demo", "csrf_token": token(other)},
                          headers={"X-Forwarded-For": "203.0.113.6"}, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert response.status_code == 302                           # the proxy's own address is not locked
    with svc.sessions() as s:
        assert s.query(WebSession).one().address == "203.0.113.6"


# --- 5. no case-number enumeration ------------------------------------------------------------

def test_a_case_one_may_not_see_looks_exactly_like_a_missing_one_and_the_look_is_logged(app, svc):
    register(sign_in(app.test_client(), "reception"))
    case = only_case(svc)
    department = sign_in(app.test_client(), "department")             # no task of theirs yet
    hidden = department.get(f"/cases/{case['case_number']}")
    missing = department.get("/cases/KH-2026-000002")
    assert hidden.status_code == missing.status_code == 404
    assert page_text(hidden) == page_text(missing)
    api_hidden = department.get(f"/api/cases/{case['case_number']}")
    api_missing = department.get("/api/cases/KH-2026-000002")
    assert api_hidden.status_code == api_missing.status_code == 404
    assert api_hidden.get_data() == api_missing.get_data()
    history_hidden = department.get(f"/api/cases/{case['instance_id']}/history")
    history_missing = department.get("/api/cases/KH-2026-000002/history")
    assert history_hidden.status_code == history_missing.status_code == 404
    assert history_hidden.get_data() == history_missing.get_data()
    logged = [(r["action"], r["target"], r["reason"]) for r in svc.access_log(refused_only=True)]
    assert ("view_case", case["case_number"], ) == logged[-1][:2]
    assert "no role of department" in logged[-1][2]
    assert len(logged) == 6                                         # the misses are recorded too


def test_a_task_of_another_role_looks_exactly_like_a_missing_one(app, svc):
    register(sign_in(app.test_client(), "reception"))
    case = only_case(svc)
    task = accept(svc, case["instance_id"])
    manager = sign_in(app.test_client(), "manager")
    csrf = token(manager, "/")
    missing_id = "00000000-0000-0000-0000-000000000000"
    for method, suffix in [("get", ""), ("post", ""), ("post", "/claim"), ("post", "/release")]:
        send = getattr(manager, method)
        kw = {"data": {"csrf_token": csrf}} if method == "post" else {}
        hidden = send(f"/tasks/{task['task_id']}{suffix}", **kw)
        missing = send(f"/tasks/{missing_id}{suffix}", **kw)
        assert hidden.status_code == missing.status_code == 404, (method, suffix)
        assert page_text(hidden) == page_text(missing), (method, suffix)
    actions = [(r["action"], r["target"]) for r in svc.access_log(refused_only=True) if r["target"] == task["task_id"]]
    assert sorted(a for a, _ in actions) == ["claim_task", "claim_task", "complete_task", "view_task"]
    assert svc.inbox(roles={"department"}, status="unclaimed").total == 1      # the claims changed nothing


# --- 6. cookies over HTTPS ---------------------------------------------------------------------

def test_session_cookies_are_secure_when_the_setting_says_https(make_app):
    plain = make_app()
    assert plain.config["SESSION_COOKIE_SECURE"] is False
    response = attempt(plain.test_client(), "reception")
    assert "Secure" not in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]

    app = make_app(COMPLAINTFLOW_SECURE_COOKIES="on")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    client = app.test_client()
    page = client.get("/login", base_url="https://inbox.example")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = client.post("/login", base_url="https://inbox.example", headers={"Referer": "https://inbox.example/login"},
                           data={"login": "reception", "password": "demo", "csrf_token": csrf})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --- open redirects -------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example/", "/\\/evil.example", "https://evil.example/",
                                    "/\t/evil.example", " //evil.example"])
def test_sign_in_never_redirects_off_site(app, target):
    client = app.test_client()
    response = client.post("/login", query_string={"next": target},
                           data={"login": "reception", "password": "demo", "csrf_token": token(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_sign_in_goes_back_to_the_page_asked_for(app):
    client = app.test_client()
    response = client.post("/login", query_string={"next": "/new?x=1"},
                           data={"login": "reception", "password": "demo", "csrf_token": token(client)})
    assert response.headers["Location"] == "/new?x=1"
