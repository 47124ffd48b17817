"""Messages from outside that staff record on a case (docs/process-design.md, "Messages from
outside"): a complainant withdraws (撤回), supplements materials (补正), an outside body's
ruling arrives.

In the BPMN such a message is a catch event — a boundary event (interrupting or not), an
intermediate catch event, or a branch of an event-based gateway — with
`<bpmn:messageEventDefinition messageRef="msg_x"/>`, the definitions declaring
`<bpmn:message id="msg_x" name="withdrawal"/>`, and the event's form in the spiff property
`formJsonSchemaFilename`. Who may record it: the role of the lane the event sits in, else the
procedure's registering role (the lane of its start event).

What a case waits for is read from its task tree (the waiting tasks); what each waiting
element is (message, name, form, roles) from the spec, once per task spec of a deployed
version (versions are immutable and their specs are cached by the service).
"""

from __future__ import annotations

from dataclasses import dataclass

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.util.task import TaskState

from .errors import Message, Term, msg

FORM_PROPERTY = "formJsonSchemaFilename"


@dataclass(frozen=True)
class AwaitedMessage:
    """One message catch event a case is waiting at."""

    message: str                # the message's name (bpmn:message name): what `send_message` takes
    element: str                # the catch event's BPMN id
    name: str                   # the event's name as staff read it (Chinese); its id when it has none
    form: str | None            # its form (formJsonSchemaFilename), or None
    roles: tuple[str, ...]      # who may record it
    interrupting: bool          # a boundary event that ends the task it is attached to

    def as_dict(self) -> dict:
        return {"message": self.message, "element": self.element, "name": self.name, "form": self.form,
                "roles": list(self.roles), "interrupting": self.interrupting}


# (task spec by identity, kept alive here; registering role) -> the message events it waits for
_BY_SPEC: dict[tuple[int, str | None], tuple[object, tuple[AwaitedMessage, ...]]] = {}
_CACHE_LIMIT = 4096


def _element(spec, definition, start_role) -> AwaitedMessage:
    properties = (getattr(spec, "extensions", None) or {}).get("properties") or {}
    lane = getattr(spec, "lane", None)
    return AwaitedMessage(message=definition.name, element=spec.bpmn_id, name=spec.bpmn_name or spec.bpmn_id,
                          form=properties.get(FORM_PROPERTY) or None, roles=(lane or start_role,) if lane or start_role else (),
                          interrupting=bool(getattr(spec, "cancel_activity", False)))


def _spec_events(spec, start_role) -> tuple[AwaitedMessage, ...]:
    """The message events a task of this spec waits for while it is WAITING."""
    cached = _BY_SPEC.get((id(spec), start_role))
    if cached is not None and cached[0] is spec:
        return cached[1]
    definition = getattr(spec, "event_definition", None)
    out: list[AwaitedMessage] = []
    if isinstance(definition, MessageEventDefinition):
        out.append(_element(spec, definition, start_role))
    elif isinstance(definition, MultipleEventDefinition):
        # an event-based gateway: its message branches are its outputs, in the same order
        for idx, d in enumerate(definition.event_definitions):
            if isinstance(d, MessageEventDefinition) and idx < len(spec.outputs):
                out.append(_element(spec.outputs[idx], d, start_role))
    if len(_BY_SPEC) >= _CACHE_LIMIT:
        _BY_SPEC.clear()
    _BY_SPEC[(id(spec), start_role)] = (spec, tuple(out))
    return tuple(out)


def awaited(workflow, start_role: str | None) -> list[AwaitedMessage]:
    """Every message catch event the case is waiting at now, in task-tree order, once each."""
    out, seen = [], set()
    for task in workflow.get_tasks(state=TaskState.WAITING):
        for event in _spec_events(task.task_spec, start_role):
            if (event.message, event.element) not in seen:
                seen.add((event.message, event.element))
                out.append(event)
    return out


def for_roles(events: list[AwaitedMessage], roles) -> list[AwaitedMessage]:
    """The events a user holding `roles` may record."""
    return [e for e in events if set(e.roles) & set(roles)]


def not_awaited(case: str, name: str, waiting, label: str | None = None) -> Message:
    """"Case X is not waiting for message NAME (it waits for: …)": what the case waits for
    instead (`waiting`: AwaitedMessage or its dict), or that it waits for none. `label`: the
    name staff read for the message (`label_of`), in the Chinese sentence."""
    items = [msg("awaited_item", name=_get(e, "name"), message=_get(e, "message")) for e in waiting]
    return msg("no_message_wait", case=case, message=name, label=label or name, waiting=items or Term("no_message"))


def label_of(specs, name: str) -> str | None:
    """The name of an event of the procedure that catches message `name` (投诉人撤回投诉), or
    None; `specs`: the process spec and its subprocess specs' mapping."""
    return labels(specs).get(name)


def labels(specs) -> dict[str, str]:
    """Message name -> the name of the first event of the procedure that catches it."""
    spec, subs = specs
    cached = _LABELS.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    out: dict[str, str] = {}
    for process in (spec, *subs.values()):
        for task_spec in process.task_specs.values():
            for event in _spec_events(task_spec, None):
                out.setdefault(event.message, event.name)
    if len(_LABELS) >= _CACHE_LIMIT:
        _LABELS.clear()
    _LABELS[id(spec)] = (spec, out)
    return out


_LABELS: dict[int, tuple[object, dict[str, str]]] = {}


def _get(event, key):
    return event[key] if isinstance(event, dict) else getattr(event, key)
