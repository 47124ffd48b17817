"""The OpenAPI document of /api/v1 describes what the routes do: every route is in it, and every
answer a client gets in a realistic session (successes and the errors) is one the document
lists for that operation, with a body that its schema accepts."""

from __future__ import annotations

import re

import jsonschema
import pytest

from complaintflow.engine.tokens import create_token
from webapp import INTAKE, app, svc  # noqa: F401 (fixtures)


@pytest.fixture
def doc(app):
    return app.test_client().get("/api/v1/openapi.json").get_json()


class Checked:
    """A client whose every /api/v1 answer is checked against the document."""

    def __init__(self, app, doc, secret):
        self.client, self.doc, self.seen = app.test_client(), doc, set()
        self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        self.templates = [(re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", p) + "$"), p) for p in doc["paths"]]

    def call(self, method, url, **kw):
        response = getattr(self.client, method)(url, **kw)
        path = url.split("?")[0]
        template = next(t for rx, t in self.templates if rx.match(path))
        op = self.doc["paths"][template][method]
        status = str(response.status_code)
        assert status in op["responses"], f"{method.upper()} {template} answered {status}, not documented"
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        jsonschema.validate(response.get_json(), {**schema, "components": self.doc["components"]},
                            cls=jsonschema.Draft202012Validator)
        self.seen.add((method, template, response.status_code))
        return response


def test_every_route_under_api_v1_is_in_the_document_and_nothing_else(app, doc):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint not in ("api_v1.openapi_json", "api_v1.docs_page"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert routes == documented
    assert doc["openapi"] == "3.1.0"
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_answer_of_a_working_session_matches_the_document(app, svc, doc):
    hotline = Checked(app, doc, create_token(svc, "hotline", ["reception"]))
    dept = Checked(app, doc, create_token(svc, "dept", ["department"]))
    reviewer = Checked(app, doc, create_token(svc, "audit", ["reviewer"]))
    nobody = Checked(app, doc, "cft_unknown")
    start = "/api/v1/processes/enterprise_customer/cases"

    hotline.call("get", "/api/v1/processes")
    hotline.call("get", "/api/v1/processes/enterprise_customer/intake-schema")
    hotline.call("get", "/api/v1/processes/nope/intake-schema")                        # 404
    case = hotline.call("post", start, json={"data": INTAKE}, headers={"Idempotency-Key": "k1"}).get_json()
    hotline.call("post", start, json={"data": INTAKE}, headers={"Idempotency-Key": "k1"})   # replayed 201
    hotline.call("post", start, json={"data": {**INTAKE, "content": "x"}}, headers={"Idempotency-Key": "k1"})  # 422
    hotline.call("post", start, json={"data": {"channel": "fax"}})                    # 422 with fields
    hotline.call("post", start, data="[", content_type="application/json")            # 400
    dept.call("post", start, json={"data": INTAKE})                                   # 403
    nobody.call("get", "/api/v1/tasks")                                               # 401
    ref = case["instance_id"]
    for suffix in ("", "/deadlines", "/history"):
        hotline.call("get", f"/api/v1/cases/{ref}{suffix}")
        dept.call("get", f"/api/v1/cases/{ref}{suffix}")                              # 404: not its case
    hotline.call("get", "/api/v1/cases?process=enterprise_customer")
    hotline.call("get", "/api/v1/cases?process=enterprise_customer&received_from=2026-13-01")   # 400
    dept.call("get", "/api/v1/cases?process=enterprise_customer")                    # 403
    reviewer.call("get", "/api/v1/cases?breached=false&status=running")
    task = case["open_tasks"][0]["task_id"]
    hotline.call("get", "/api/v1/tasks")
    hotline.call("get", f"/api/v1/tasks/{task}")
    dept.call("get", f"/api/v1/tasks/{task}")                                          # 404
    hotline.call("post", f"/api/v1/tasks/{task}/claim")
    Checked(app, doc, create_token(svc, "desk", ["reception"])).call("post", f"/api/v1/tasks/{task}/claim")  # 409
    hotline.call("post", f"/api/v1/tasks/{task}/release")
    hotline.call("post", f"/api/v1/tasks/{task}/release")                             # 409: not claimed
    hotline.call("post", f"/api/v1/tasks/{task}/complete", json={"data": {"outcome": "maybe"}})   # 422
    hotline.call("post", f"/api/v1/tasks/{task}/complete", json={"data": {}, "row_version": 0})   # 409
    hotline.call("post", f"/api/v1/tasks/{task}/complete",
                 json={"data": {"outcome": "accepted", "severity": "general", "department": "品质部"}})
    hotline.call("post", f"/api/v1/cases/{ref}/messages", json={"name": "nothing"})   # 409
    hotline.call("post", f"/api/v1/cases/{ref}/messages", json={"payload": {}})       # 422: no name

    # every operation was answered at least once with its success status
    successes = {(m, p) for m, p, status in hotline.seen | reviewer.seen if status < 300}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops
                  if p != "/api/v1/cases/{ref}/messages"}       # no shipped procedure waits for a message here
    assert documented <= successes
    statuses = {s for *_, s in hotline.seen | dept.seen | nobody.seen | reviewer.seen}
    assert {200, 201, 400, 401, 403, 404, 409, 422} <= statuses


def test_the_browsable_page_lists_every_operation_and_needs_nothing_from_outside(app, doc):
    page = app.test_client().get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for path, ops in doc["paths"].items():
        for method in ops:
            assert f"{method.upper()} {path}" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_a_too_large_body_is_413_in_the_same_shape(app, svc, doc):
    from complaintflow.web.app import WebSettings, create_app
    small = create_app(svc, users=app.extensions["complaintflow"].users, roles=app.extensions["complaintflow"].roles,
                       secret_key="test", testing=True, settings=WebSettings(max_request_bytes=1024))
    client = Checked(small, doc, create_token(svc, "hotline", ["reception"]))
    r = client.call("post", "/api/v1/processes/enterprise_customer/cases", json={"data": {"content": "长" * 2000}})
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "too_large"
