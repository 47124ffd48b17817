"""/api/v1: the integration API (docs/api.md), for other systems with a bearer token.

Every route goes through the service layer as the pages do, as the token's actor `api:NAME`
(engine/tokens.py) holding the token's roles: the same form validation, role checks,
confidentiality (CaseView: a case or task the token may not see is answered as missing) and
conflicts. Browser sessions are not accepted here, and CSRF does not apply (a bearer token is
not sent by a browser on its own). Every call is written to the access log.

The OpenAPI 3.1 document (/api/v1/openapi.json) is generated with apispec from the marshmallow
schemas in api_v1_schemas.py and from the same `operation` declarations that register the
routes, so a route cannot be missing from it; /api/v1/docs lists it as a page that needs
nothing from outside.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app, g, render_template_string, request, url_for
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from ..engine.errors import (CaseBusy, ComplaintflowError, Conflict, InvalidInput, NotAllowed, NotFound, Role,
                             msg)
from ..engine.idempotency import KEY_MAX, KeyReused, fingerprint, run_once
from ..engine.models import Instance
from ..engine.review.search import search_cases
from ..engine.tokens import Caller, Unauthorized, authenticate
from . import api_v1_schemas as S

api_v1 = Blueprint("api_v1", __name__, url_prefix="/api/v1")
PREFIX = "/api/v1"
PUBLIC = {PREFIX + "/openapi.json", PREFIX + "/docs"}      # the description needs no token


class ApiError(Exception):
    """An answer of this API that is not an engine error (a bad body, a bad header)."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


# --- operations: the routes and their OpenAPI description, declared once -------------------

@dataclass
class Operation:
    path: str
    method: str
    view: object
    doc: dict = field(default_factory=dict)


OPERATIONS: list[Operation] = []
ERROR_TEXT = {400: "The request is malformed: a header, a query parameter or the JSON body.",
              401: "No token, or the token is unknown, revoked or expired.",
              403: "The token's roles may not do this.",
              404: "No such case, task or procedure among those the token's roles work on.",
              409: "The case or task changed meanwhile, or was already handled; nothing was changed.",
              413: "The request body is larger than the server accepts.",
              422: "The body or a form is invalid; `fields` says which field and why."}


def operation(path: str, method: str, summary: str, *, ok: tuple[int, type], errors=(400, 401, 404), body=None,
              query=None, headers=(), description: str = ""):
    """Register `view` at PREFIX + path for `method`, described in the OpenAPI document."""
    def register(view):
        endpoint = view.__name__
        api_v1.add_url_rule(re.sub(r"\{(\w+)\}", r"<\1>", path), endpoint, view, methods=[method.upper()])
        params = [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"\{(\w+)\}", path)]
        if query is not None:
            params.append({"in": "query", "schema": query})
        params.extend(headers)
        status, schema = ok
        responses = {str(status): {"description": "OK", "content": {"application/json": {"schema": schema}}}}
        for code in sorted({*errors, 401, 413 if body else 401}):
            responses[str(code)] = {"description": ERROR_TEXT[code],
                                    "content": {"application/json": {"schema": "ErrorResponse"}}}
        doc = {"operationId": endpoint, "summary": summary, "parameters": params, "responses": responses,
               "security": [{"bearer": []}]}
        if description:
            doc["description"] = description
        if body is not None:
            doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        OPERATIONS.append(Operation(path, method.lower(), view, doc))
        return view
    return register


def openapi_document() -> dict:
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    spec = APISpec(title="complaintflow integration API", version="1", openapi_version="3.1.0",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Register complaints, work tasks and read cases from other systems. "
                                        "Authenticate with `Authorization: Bearer <token>` (docs/api.md)."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "description": "A token from `complaintflow token create`."})
    spec.components.schema("ErrorResponse", schema=S.ErrorResponse)
    for op in OPERATIONS:
        spec.path(path=PREFIX + op.path, operations={op.method: op.doc})
    return spec.to_dict()


# --- who is calling ------------------------------------------------------------------------

def svc():
    return current_app.extensions["complaintflow"].service     # also before load_user set g.ctx


@api_v1.record_once
def _exempt_from_csrf(state):
    state.app.extensions["csrf"].exempt(api_v1)         # bearer tokens only: no cookie to ride on


@api_v1.before_app_request
def _authenticate():
    """Runs before the pages' sign-in check (the blueprint is registered before them): an
    /api/v1 call is the token's, never the browser session's."""
    if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return None
    g.lang = "zh" if request.accept_languages.best_match(["en", "zh"]) == "zh" else "en"
    g.user = None
    g.api_caller = None
    if request.path in PUBLIC:
        g.user = Caller("(public)", ())        # the description: no token, no roles, nothing to read
        return None
    try:
        caller = authenticate(svc(), request.headers.get("Authorization"))
    except Unauthorized as err:
        return _error_response(401, "unauthorized", str(err), {})
    g.user = g.api_caller = Caller(caller.name, caller.roles, g.lang)
    return None


@api_v1.after_app_request
def _log_call(response):
    if request.path.startswith(PREFIX + "/") and request.path not in PUBLIC:
        caller = g.get("api_caller")
        code = response.status_code
        reason = f"{request.method} {code}" + (f" {g.api_error_code}" if g.get("api_error_code") else "")
        endpoint = (request.endpoint or "unknown").removeprefix("api_v1.")
        svc().log_access(caller.actor if caller else "(no valid token)", f"api.{endpoint}"[:40],
                         request.path[:100], code < 400, reason)
    return response


# --- errors: one shape ---------------------------------------------------------------------

ENGINE_STATUS = ((Unauthorized, 401), (NotAllowed, 403), (NotFound, 404), (Conflict, 409), (CaseBusy, 409),
                 (KeyReused, 422), (InvalidInput, 422))
DEFAULT_CODES = {401: "unauthorized", 403: "not_allowed", 404: "not_found", 409: "conflict", 422: "invalid_input"}


def _error_response(status: int, code: str, message: str, fields: dict) -> Response:
    g.api_error_code = code
    body = S.ErrorResponse().dump({"error": {"code": code, "message": message, "fields": fields}})
    response = Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="complaintflow"'
    return response


@api_v1.errorhandler(ComplaintflowError)
def _engine_error(err):
    from .pages import person_name
    status = next((code for cls, code in ENGINE_STATUS if isinstance(err, cls)), 400)
    code = err.message.code if err.message else (
        "idempotency_key_reused" if isinstance(err, KeyReused) else DEFAULT_CODES.get(status, "bad_request"))
    names = {"person": person_name, "role": lambda r: g.ctx.role_name(r, g.lang)}
    text = err.text(g.lang, **names) or str(err)
    fields = err.field_texts(g.lang, **names) if isinstance(err, InvalidInput) else {}
    return _error_response(status, code, text, fields)


@api_v1.errorhandler(ApiError)
def _api_error(err):
    return _error_response(err.status, err.code, err.message, err.fields)


def _http_error(err: HTTPException):
    """Werkzeug's errors (an unknown /api/v1 path, a method not allowed, a body too large, a
    bad query parameter) in the API's shape; elsewhere the app's own pages."""
    if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return err
    from .app import BadParameter
    if isinstance(err, BadParameter):
        return _error_response(400, "bad_parameter", err.description, {err.parameter: [err.description]})
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
             415: "unsupported_media_type"}
    return _error_response(err.code or 500, codes.get(err.code, "http_error"), err.description or err.name, {})


for _code in (400, 404, 405, 413, 415):      # by code: before the app's own handlers of these codes
    api_v1.register_error_handler(_code, _http_error)
api_v1.record_once(lambda state: [state.app.register_error_handler(c, _http_error) for c in (404, 405)])


@api_v1.errorhandler(500)
def _server_error(err):
    return _error_response(500, "internal_error", "the server failed; the error is in its log", {})


# --- request helpers -----------------------------------------------------------------------

def caller() -> Caller:
    return g.api_caller


def roles() -> set[str]:
    return set(caller().roles)


def body(schema) -> dict:
    """The JSON body loaded by `schema`: 400 when it is not JSON, 422 with fields when it does
    not fit. NUL characters and numbers a JSON reader cannot hold are refused as in the pages."""
    from .pages import _too_large
    try:
        raw = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", "the body must be JSON (Content-Type: application/json)") from None
    if not isinstance(raw, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    if _has_nul(raw):
        raise ApiError(400, "bad_nul", "the body contains a NUL character (\\u0000), which cannot be stored")
    if _too_large(raw):
        raise ApiError(422, "number_too_large", "a number in the body is beyond what JSON readers hold exactly "
                                                 f"(±{2 ** 53 - 1}) or not finite")
    try:
        return schema().load(raw)
    except ValidationError as err:
        raise ApiError(422, "invalid_body", "the body does not fit this operation", _flatten(err.messages)) from None


def query(schema) -> dict:
    try:
        return schema().load(request.args)
    except ValidationError as err:
        raise ApiError(400, "bad_parameter", "a query parameter is not valid", _flatten(err.messages)) from None


def _flatten(messages, prefix="") -> dict[str, list[str]]:
    out = {}
    items = messages.items() if isinstance(messages, dict) else [("", messages)]
    for key, value in items:
        name = f"{prefix}.{key}" if prefix and key != "" else str(key or prefix or "_body")
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
    return out


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def answer(schema, obj, status: int = 200, headers=None) -> Response:
    return Response(json.dumps(schema().dump(obj), ensure_ascii=False), status, headers=headers,
                    mimetype="application/json")


def _result(result) -> dict:
    return {"instance_id": result.instance_id, "case_number": result.case_number, "status": result.status,
            "open_tasks": result.open_tasks}


# --- procedures and registering cases --------------------------------------------------------

IDEMPOTENCY_HEADER = {"in": "header", "name": "Idempotency-Key", "required": False,
                      "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX, "pattern": "^[\\x21-\\x7e]+$"},
                      "description": "Any unique string (a UUID): a retry with the same key and body gets the "
                                     "first answer instead of a second case. Kept 24 hours, per token."}


def _procedures() -> list[dict]:
    return svc().newest_processes()


@operation("/processes", "get", "The deployed procedures, whether this token may register cases in each, "
           "and where to read each intake form", ok=(200, S.ProcessList), errors=(401,))
def list_processes():
    out = [{"process_id": info["process_id"], "name": info["name"], "version": info["version"],
            "start_role": info["meta"].get("start_role"), "may_start": info["meta"].get("start_role") in roles(),
            "intake_schema": url_for("api_v1.intake_schema", process_id=info["process_id"])}
           for info in _procedures()]
    return answer(S.ProcessList, {"processes": out})


@operation("/processes/{process_id}/intake-schema", "get", "The intake form of a procedure, as JSON Schema",
           ok=(200, S.JsonSchemaDocument), errors=(400, 401, 404))
def intake_schema(process_id):
    info = svc().process_info(process_id)
    schema = info["forms"].get(info["meta"].get("start_form") or "") or {"type": "object", "properties": {}}
    return Response(json.dumps(schema, ensure_ascii=False), 200, mimetype="application/json")


@operation("/processes/{process_id}/cases", "post", "Register a case (a complaint) in a procedure",
           ok=(201, S.StartedSchema), errors=(400, 401, 403, 404, 409, 422), body=S.StartRequest,
           headers=[IDEMPOTENCY_HEADER],
           description="Needs the procedure's registering role (start_role). `data` is checked against the "
                       "intake form; errors name the fields. With an Idempotency-Key, a retry gets the first "
                       "answer (same status and body, header `Idempotent-Replayed: true`).")
def start_case(process_id):
    from .pages import refuse
    info = svc().process_info(process_id)
    start_role = info["meta"].get("start_role")
    if start_role not in roles():
        refuse("start", process_id, msg("start_role", process=info["name"], role=Role(start_role)))
    data = body(S.StartRequest)["data"]
    key = request.headers.get("Idempotency-Key")
    actor = caller().actor

    def act(s):
        result = svc()._start_in(s, process_id, data, actor, svc().clock.now())
        inst = next(o for o in s.new if isinstance(o, Instance) and o.id == result.instance_id)   # not yet written
        return 201, S.StartedSchema().dump(_result(result) | {
            "process_id": inst.process_id, "version": inst.version,
            "case": url_for("api_v1.read_case", ref=result.instance_id)})

    replayed = False
    if key is None:
        with svc().uow() as s:
            status, out = act(s)
    else:
        if not 1 <= len(key) <= KEY_MAX or not re.fullmatch(r"[\x21-\x7e]+", key):
            raise ApiError(400, "bad_idempotency_key", f"Idempotency-Key must be 1 to {KEY_MAX} visible ASCII "
                                                       "characters (a UUID, for example)")
        status, out, replayed = run_once(svc(), caller().name, key, fingerprint("start", process_id, data), act)
    headers = {"Location": out["case"]} | ({"Idempotent-Replayed": "true"} if replayed else {})
    return Response(json.dumps(out, ensure_ascii=False), status, headers=headers, mimetype="application/json")


# --- tasks ---------------------------------------------------------------------------------

@operation("/tasks", "get", "Open tasks of the token's roles, soonest due first", ok=(200, S.TaskList),
           query=S.TaskQuery, errors=(400, 401))
def list_tasks():
    args = query(S.TaskQuery)
    mine = roles() if not args.get("role") else roles() & {args["role"]}
    tasks = svc().list_tasks(roles=mine, user=caller().actor, limit=args["limit"]) if mine else []
    return answer(S.TaskList, {"tasks": tasks})


def _task(task_id, action):
    from .access import person_name
    from .pages import _task_for_me
    try:
        return _task_for_me(task_id, action)
    except NotAllowed as err:
        if err.message is None or err.message.code != "task_assigned":
            raise
        # a task of the token's role that the procedure gave to one person (assignTo): a token
        # never acts for a person (it has no login of its own), so say that rather than "not you"
        said = msg("task_assigned_token", task=err.message.params["task"], assignee=err.message.params["assignee"])
        raise ApiError(403, "task_assigned", said.text(g.lang, person=person_name)) from None


@operation("/tasks/{task_id}", "get", "A task of the token's roles, with its form's JSON Schema",
           ok=(200, S.TaskDetail), errors=(400, 401, 403, 404))
def read_task(task_id):
    task = _task(task_id, "view_task")
    return answer(S.TaskDetail, task | {"form_schema": svc().task_form(task_id)})


def _claim_or_release(task_id, action):
    from .pages import hide
    _task(task_id, "claim_task")     # not the token's: 404, or 403 for a task given to one person
    try:
        return answer(S.TaskDetail, action(task_id, caller().actor, roles=roles()))
    except (NotAllowed, NotFound) as err:
        hide("task", "claim_task", task_id, str(err))


@operation("/tasks/{task_id}/claim", "post", "Claim a task so that nobody else works on it",
           ok=(200, S.TaskDetail), errors=(400, 401, 403, 404, 409))
def claim_task(task_id):
    return _claim_or_release(task_id, svc().claim_task)


@operation("/tasks/{task_id}/release", "post", "Release a task this token claimed",
           ok=(200, S.TaskDetail), errors=(400, 401, 403, 404, 409))
def release_task(task_id):
    return _claim_or_release(task_id, svc().release_task)


@operation("/tasks/{task_id}/complete", "post", "Complete a task with its form data",
           ok=(200, S.ActionResultSchema), errors=(400, 401, 403, 404, 409, 422), body=S.CompleteRequest,
           description="With `row_version` (from GET /cases/{ref}), 409 when the case changed since. A task "
                       "the procedure gave to one person (assignTo) is that person's: 403 `task_assigned`, "
                       "since a token acts in its roles, never for a person.")
def complete_task(task_id):
    from .pages import hide
    _task(task_id, "complete_task")
    args = body(S.CompleteRequest)
    try:
        result = svc().complete_task(task_id, caller().actor, args["data"], roles=roles(),
                                     expected_version=args["row_version"])
    except NotAllowed as err:
        hide("task", "complete_task", task_id, str(err))
    return answer(S.ActionResultSchema, _result(result))


# --- cases ---------------------------------------------------------------------------------

def _case(ref, action):
    from .pages import CaseView
    return CaseView(ref, action)


@operation("/cases", "get", "Find cases (newest received first)", ok=(200, S.SearchResult), query=S.SearchQuery,
           errors=(400, 401, 403),
           description="A reviewer's token searches every procedure; any other token gives `process`, a "
                       "procedure whose registering role it holds.")
def search():
    from .pages import is_reviewer, refuse
    args = query(S.SearchQuery)
    process_id = args.pop("process", None)
    if not is_reviewer():
        if not process_id:
            raise ApiError(400, "bad_parameter", "give the procedure to search (process)",
                           {"process": ["required for a token without a reviewer role"]})
        info = svc().process_info(process_id)
        start_role = info["meta"].get("start_role")
        if start_role not in roles():
            refuse("search", process_id, msg("start_role", process=info["name"], role=Role(start_role)))
    for day in ("received_from", "received_to"):
        if args.get(day):
            args[day] = args[day].isoformat()
    return answer(S.SearchResult, search_cases(svc(), process_id=process_id, **args))


@operation("/cases/{ref}", "get", "A case by instance id or case number, its data masked as the token's "
           "roles require", ok=(200, S.ApiCaseSchema), errors=(400, 401, 404))
def read_case(ref):
    view = _case(ref, "view_case")
    return answer(S.ApiCaseSchema, view.summary | {"data": view.data, "awaited_messages": view.detail["awaited"]})


@operation("/cases/{ref}/deadlines", "get", "A case's time limits", ok=(200, S.DeadlineList),
           errors=(400, 401, 404))
def case_deadlines(ref):
    view = _case(ref, "view_case")
    return answer(S.DeadlineList, {"deadlines": view.summary["deadlines"]})


@operation("/cases/{ref}/history", "get", "A case's history, one readable sentence per event",
           ok=(200, S.History), errors=(400, 401, 404))
def case_history(ref):
    view = _case(ref, "view_history")
    return answer(S.History, {"events": view.readable})


@operation("/cases/{ref}/messages", "post", "Record a message from outside the case waits for (a withdrawal, "
           "a supplement, an outside body's ruling; see `awaited_messages` of the case)",
           ok=(200, S.ActionResultSchema), errors=(400, 401, 403, 404, 409, 422), body=S.MessageRequest,
           description="The payload is checked against the waiting event's form (422 with `fields`); the token "
                       "needs a role that may record it (403); a message the case does not wait for, or one "
                       "recorded by someone else meanwhile, is a 409 naming who and when.")
def deliver_message(ref):
    view = _case(ref, "send_message")
    args = body(S.MessageRequest)
    result = svc().send_message(view.id, args["name"], args["payload"], caller().actor, roles=roles())
    return answer(S.ActionResultSchema, _result(result))


# --- the description -------------------------------------------------------------------------

@api_v1.get("/openapi.json")
def openapi_json():
    return Response(json.dumps(openapi_document(), ensure_ascii=False, indent=2), mimetype="application/json")


DOCS_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>{{ doc.info.title }}</title>
<style>body{font:15px/1.5 sans-serif;max-width:60em;margin:2em auto;padding:0 1em}code{background:#f3f3f3}
h2{font-size:1.1em;margin-top:2em}td,th{text-align:left;padding:.2em .8em .2em 0;vertical-align:top}</style>
<h1>{{ doc.info.title }} (version {{ doc.info.version }})</h1><p>{{ doc.info.description }}</p>
<p>The machine-readable document: <a href="openapi.json">openapi.json</a> (OpenAPI {{ doc.openapi }}).</p>
{% for path, ops in doc.paths.items() %}{% for method, op in ops.items() %}
<h2><code>{{ method|upper }} {{ path }}</code></h2><p>{{ op.summary }}</p>
{% if op.description %}<p>{{ op.description }}</p>{% endif %}
{% if op.parameters %}<table><tr><th>parameter</th><th>in</th><th>required</th></tr>
{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code></td><td>{{ p.in }}</td><td>{{ 'yes' if p.required else 'no' }}</td></tr>{% endfor %}</table>{% endif %}
{% if op.requestBody %}<p>Body: <code>{{ op.requestBody.content['application/json'].schema['$ref'].rsplit('/', 1)[-1] }}</code></p>{% endif %}
<table><tr><th>status</th><th>meaning</th></tr>{% for code, r in op.responses.items() %}
<tr><td>{{ code }}</td><td>{{ r.description }}</td></tr>{% endfor %}</table>
{% endfor %}{% endfor %}</html>"""


@api_v1.get("/docs")
def docs_page():
    return render_template_string(DOCS_PAGE, doc=openapi_document())
