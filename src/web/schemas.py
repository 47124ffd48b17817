"""Output shapes of the read commands and the JSON API (marshmallow), documented in docs/cli.md.

Dumping through these schemas keeps every `--json` output to its documented keys.
"""

from __future__ import annotations

import json

from marshmallow import Schema, fields


class TaskSchema(Schema):
    task_id = fields.String()
    instance_id = fields.String()
    process_id = fields.String()
    case_number = fields.String(allow_none=True)
    task = fields.String()
    name = fields.String()
    role = fields.String(allow_none=True)
    form = fields.String(allow_none=True)
    status = fields.String()
    created = fields.String()
    due = fields.String(allow_none=True)
    completed = fields.String(allow_none=True)
    completed_by = fields.String(allow_none=True)
    priority = fields.Integer(metadata={"description": "The case's priority: 1 urgent (急), 2 priority (优先), "
                                                       "3 normal; lists put 1 first, then by due time."})
    assignee = fields.String(allow_none=True, metadata={
        "description": "The login of the one person the task is for (the procedure's `assignTo`: a superior, a "
                       "unit's head); only they may claim or complete it. null: any holder of `role`."})


class IncidentSchema(Schema):
    id = fields.Integer()
    task_id = fields.String()
    task = fields.String()
    handler = fields.String(allow_none=True)
    message = fields.String()
    attempts = fields.Integer()
    created = fields.String()
    resolved = fields.String(allow_none=True)


class DeadlineSchema(Schema):
    name = fields.String()
    rule = fields.String(allow_none=True)
    seed = fields.String(allow_none=True)
    unit = fields.String()
    amount = fields.Integer()
    start = fields.String()
    due = fields.String()
    last_day = fields.String(allow_none=True)
    provisional = fields.Boolean()
    status = fields.String()
    paused_days = fields.Integer()
    paused_seconds = fields.Integer()
    paused_since = fields.String(allow_none=True)
    extended_by = fields.Integer()
    breached_at = fields.String(allow_none=True)
    completed = fields.String(allow_none=True)
    round = fields.Integer(metadata={"description": "How many times the limit was started for the case: a "
                                                    "promise renewed each round (1 for a limit started once)."})


class AwaitedMessageSchema(Schema):
    """A message from outside the case waits for (engine/messages.py)."""

    message = fields.String(metadata={"description": "The message's name, as delivered (e.g. withdrawal)."})
    element = fields.String(metadata={"description": "The BPMN catch event waiting for it."})
    name = fields.String(metadata={"description": "The event's name as staff read it (e.g. 投诉人撤回投诉)."})
    form = fields.String(allow_none=True, metadata={"description": "The form its payload is checked against."})
    roles = fields.List(fields.String(), metadata={"description": "The roles that may record it."})
    interrupting = fields.Boolean(metadata={"description": "Recording it ends the task it is attached to."})


class CaseSchema(Schema):
    instance_id = fields.String()
    process_id = fields.String()
    version = fields.Integer()
    status = fields.String()
    case_number = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    received = fields.String()
    closed = fields.String(allow_none=True)
    next_due = fields.String(allow_none=True)
    started_by = fields.String()
    events = fields.Integer()
    row_version = fields.Integer()
    legal_state = fields.String(allow_none=True)
    deadlines = fields.List(fields.Nested(DeadlineSchema))
    open_tasks = fields.List(fields.Nested(TaskSchema))
    completed_tasks = fields.List(fields.Nested(TaskSchema))
    incidents = fields.List(fields.Nested(IncidentSchema))
    awaited_messages = fields.List(fields.Nested(AwaitedMessageSchema))


class EventSchema(Schema):
    seq = fields.Integer()
    step = fields.Integer()
    kind = fields.String()
    at = fields.String()
    actor = fields.String(allow_none=True)
    task_id = fields.String(allow_none=True)
    payload = fields.Dict()
    state_after = fields.String(allow_none=True)


SCHEMAS = {"task": TaskSchema(), "case": CaseSchema(), "event": EventSchema(), "incident": IncidentSchema()}


def dump(kind: str, obj, many: bool = False):
    return SCHEMAS[kind].dump(obj, many=many)


def dump_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str)
