"""Request and response bodies of /api/v1 (marshmallow). The OpenAPI document is generated
from these (api_v1.py), and every answer is dumped through them, so the two cannot differ.

The case, task, deadline and incident shapes are those of the read-only /api and the CLI's
`--json` (schemas.py)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..engine.review.search import PAGE_MAX, STATUSES
from .schemas import CaseSchema, DeadlineSchema, TaskSchema


class _Strict(Schema):
    class Meta:
        unknown = RAISE          # a misspelt key is an error, not silently dropped


# --- requests ----------------------------------------------------------------------------

class StartRequest(_Strict):
    data = fields.Dict(keys=fields.String(), required=True,
                       metadata={"description": "The intake form's fields (GET /processes/{process_id}/intake-schema)."})


class CompleteRequest(_Strict):
    data = fields.Dict(keys=fields.String(), load_default=dict,
                       metadata={"description": "The task form's fields (`form` of GET /tasks/{task_id})."})
    row_version = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=0, max=2**31 - 1),
                                 metadata={"description": "The case's row_version as read; 409 when it changed since."})


class MessageRequest(_Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    payload = fields.Dict(keys=fields.String(), load_default=dict)


class TaskQuery(_Strict):
    role = fields.String(validate=validate.Length(max=100), metadata={"description": "Only this role's tasks."})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=PAGE_MAX))


class SearchQuery(_Strict):
    process = fields.String(validate=validate.Length(max=100), metadata={"description": "A process id."})
    case_number = fields.String(validate=validate.Length(max=100))
    status = fields.String(validate=validate.OneOf(STATUSES))
    received_from = fields.Date(metadata={"description": "First day received (Beijing time), included."})
    received_to = fields.Date(metadata={"description": "Last day received (Beijing time), included."})
    breached = fields.Boolean()
    category = fields.String(validate=validate.Length(max=100))
    department = fields.String(validate=validate.Length(max=100))
    legal_state = fields.String(validate=validate.Length(max=100))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=PAGE_MAX))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


# --- responses ---------------------------------------------------------------------------

class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"description": "Stable, language-neutral (docs/api.md)."})
    message = fields.String(required=True)
    field_errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                               data_key="fields", attribute="fields", metadata={"description": "Field name -> its errors (form and request-body fields)."})


class ErrorResponse(Schema):
    error = fields.Nested(ErrorBody, required=True)


class ProcessSchema(Schema):
    process_id = fields.String(required=True)
    name = fields.String(required=True)
    version = fields.Integer(required=True)
    start_role = fields.String(required=True, allow_none=True)
    may_start = fields.Boolean(required=True, metadata={"description": "Whether this token holds start_role."})
    intake_schema = fields.String(required=True, metadata={"description": "URL of the intake form's JSON Schema."})


class ProcessList(Schema):
    processes = fields.List(fields.Nested(ProcessSchema), required=True)


class JsonSchemaDocument(Schema):
    """A JSON Schema (draft 2020-12) as the procedure's designer wrote it."""

    class Meta:
        unknown = "include"


class TaskList(Schema):
    tasks = fields.List(fields.Nested(TaskSchema), required=True)


class TaskDetail(TaskSchema):
    claimed_by = fields.String(allow_none=True, metadata={"description": "After claim or release."})
    claimed = fields.String(allow_none=True)
    form_schema = fields.Dict(allow_none=True, metadata={"description": "The task form's JSON Schema."})


class ActionResultSchema(Schema):
    instance_id = fields.String(required=True)
    case_number = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)
    open_tasks = fields.List(fields.Nested(TaskSchema), required=True)


class StartedSchema(ActionResultSchema):
    process_id = fields.String(required=True)
    version = fields.Integer(required=True)
    case = fields.String(required=True, metadata={"description": "URL of the case."})


class ApiCaseSchema(CaseSchema):
    data = fields.Dict(required=True, metadata={"description": "The case data; identity fields masked "
                                                                "unless the token's roles may see them."})


class DeadlineList(Schema):
    deadlines = fields.List(fields.Nested(DeadlineSchema), required=True)


class TitledValue(Schema):
    title = fields.String(required=True)
    value = fields.String(required=True)


class Change(Schema):
    title = fields.String(required=True)
    before = fields.String(required=True)
    after = fields.String(required=True)


class HistoryEntry(Schema):
    seq = fields.Integer(required=True)
    step = fields.Integer(required=True)
    kind = fields.String(required=True)
    at = fields.String(required=True)
    actor = fields.String(required=True)
    actor_name = fields.String(allow_none=True)
    actor_role = fields.String(allow_none=True)
    sentence = fields.String(required=True, metadata={"description": "What happened, in Chinese, as staff read it."})
    submitted = fields.List(fields.Nested(TitledValue), required=True, data_key="fields", attribute="fields",
                            metadata={"description": "The fields submitted, by title."})
    changes = fields.List(fields.Nested(Change), required=True)


class History(Schema):
    events = fields.List(fields.Nested(HistoryEntry), required=True)


class SearchHit(Schema):
    instance_id = fields.String(required=True)
    case_number = fields.String(allow_none=True)
    process_id = fields.String(required=True)
    process_name = fields.String(required=True)
    version = fields.Integer(required=True)
    status = fields.String(required=True)
    received = fields.String(required=True)
    closed = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    legal_state = fields.String(allow_none=True)
    breached = fields.Boolean(required=True)


class SearchResult(Schema):
    cases = fields.List(fields.Nested(SearchHit), required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    more = fields.Boolean(required=True)
