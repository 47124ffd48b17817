"""The step loop: what happens to a SpiffWorkflow instance in one action.

Live actions (service layer) and replay (replay.py) call the same primitives in the same
order — `begin`, `complete_user_task`, `fire_due_timers`, `retry_errors`, `deliver_message`,
then `advance` — so a replay that feeds back the recorded handler outputs rebuilds exactly
the state the live run stored.
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import json
import os
import queue
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.util.task import TaskState

from ..handlers import HandlerContext, HandlerRegistry, Services, Updates
from .clock import parse_instant
from .spec import canonical_json


@dataclass
class Effect:
    """Something that happened inside an action, recorded as an event after the driver."""

    kind: str
    payload: dict
    task_id: str | None = None


@dataclass
class StepLog:
    effects: list[Effect] = field(default_factory=list)

    def add(self, kind, payload, task_id=None):
        self.effects.append(Effect(kind, payload, task_id))


class ReplayDivergence(Exception):
    """Replay asked for something the log does not hold (or holds differently)."""


def _json_safe(value):
    json.dumps(value, ensure_ascii=False)
    return value


class LiveDispatcher:
    """Calls real handlers with injected services; records each call for the event log."""

    def __init__(self, handlers: HandlerRegistry, services: Services, instance_id: str,
                 process_id: str, log: StepLog, timeout: float | None = None):
        self.handlers = handlers
        self.services = services
        self.instance_id = instance_id
        self.process_id = process_id
        self.log = log
        self.timeout = timeout

    def run_service_task(self, spec, task) -> bool:
        name = spec.operation_name
        record = {"handler": name, "task": spec.name, "inputs": None}
        try:
            params = spec.evaluate(task)
            record["inputs"] = _json_safe(copy.deepcopy(params))
            info = self.handlers.get(name)
            if info is None:
                raise LookupError(f"no handler named '{name}' is registered")
            ctx = HandlerContext(params=params, data=copy.deepcopy(task.data), services=self.services,
                                 instance_id=self.instance_id, process_id=self.process_id, task_name=spec.name)
            value = call_handler(info, ctx, self.timeout)
            updates = None
            if isinstance(value, Updates):
                value, updates = value.result, value.data
            try:
                value = json.loads(json.dumps(value, ensure_ascii=False))
                updates = json.loads(json.dumps(updates, ensure_ascii=False)) if updates else None
            except (TypeError, ValueError):
                raise TypeError(f"handler '{name}' returned a {type(value).__name__}, which cannot be stored as JSON")
        except Exception as err:  # a handler failure becomes an incident, never a crash
            record["error"] = f"{type(err).__name__}: {err}"
            self.log.add("handler_called", record, str(task.id))
            task.internal_data["incident"] = {"handler": name, "message": record["error"]}
            return False
        record["outputs"] = value
        if updates:
            record["updates"] = updates
        self.log.add("handler_called", record, str(task.id))
        task.internal_data.pop("incident", None)
        apply_handler_result(task, spec.result_variable, value, updates)
        return True


class HandlerTimeout(Exception):
    pass


class _ExpiredServices:
    """What a handler that ran out of time finds in `ctx.services` afterwards: nothing. Its
    action has moved on (the task is an incident) and must not be changed behind its back."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        raise HandlerTimeout(f"handler '{self._name}' ran out of time; its services are closed")


class _Workers:
    """The threads handlers run in, kept for the next call (starting a thread per call cost
    0.1–0.7 ms, several times per action). A call takes an idle worker or starts one, so a
    handler that hangs holds only its own thread, never back the calls after it."""

    def __init__(self):
        self._idle: queue.SimpleQueue = queue.SimpleQueue()

    def run(self, fn) -> None:
        try:
            inbox = self._idle.get_nowait()
        except queue.Empty:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name="complaintflow handler", daemon=True).start()
        inbox.put(fn)

    def _serve(self, inbox) -> None:
        while True:
            inbox.get()()                 # run() catches everything the handler raises
            self._idle.put(inbox)


_WORKERS = _Workers()
# a forked child has none of its parent's threads: it starts its own workers
os.register_at_fork(after_in_child=lambda: setattr(_WORKERS, "_idle", queue.SimpleQueue()))


def call_handler(info, ctx: HandlerContext, timeout: float | None):
    """Call a handler, waiting at most `timeout` seconds (None or 0: no limit).

    A handler that may hang (`HandlerInfo.may_hang`, the default) runs in a thread of its own
    so that a hung outside system (an SMS gateway that never answers) cannot hang the action:
    past the limit the task becomes an incident, which staff retry later. Python cannot stop a
    thread, so the late handler is left to finish on its own, cut off from the case's services.
    One registered with `may_hang=False` (it touches nothing outside the process) runs on the
    action's own thread: no hand-over, which costs two thread switches."""
    if not timeout or not info.may_hang:
        return info.func(ctx)
    box: dict[str, Any] = {}
    done = threading.Event()

    def run():
        try:
            box["value"] = info.func(ctx)
        except BaseException as err:      # handed to the action's thread below
            box["error"] = err
        finally:
            done.set()

    # the action's context (engine_context: its moment and task-id sequence) goes along
    context = contextvars.copy_context()
    _WORKERS.run(lambda: context.run(run))
    if not done.wait(timeout):
        ctx.services = _ExpiredServices(info.name)
        raise HandlerTimeout(f"handler '{info.name}' gave no answer within {timeout:g} s "
                             "(COMPLAINTFLOW_HANDLER_TIMEOUT); retry the task when the system it calls answers again")
    if "error" in box:
        raise box["error"]
    return box["value"]


class ReplayDispatcher:
    """Feeds recorded handler outputs back, in order, instead of calling handlers."""

    def __init__(self, records: list[tuple[int, dict]]):
        self.records = list(records)   # (event seq, payload)

    def run_service_task(self, spec, task) -> bool:
        if not self.records:
            raise ReplayDivergence(f"service task '{spec.name}' ran, but the log records no handler call for it")
        seq, rec = self.records.pop(0)
        if rec.get("handler") != spec.operation_name or rec.get("task") != spec.name:
            raise ReplayDivergence(
                f"event {seq}: the log records handler '{rec.get('handler')}' for task '{rec.get('task')}', "
                f"but the process called '{spec.operation_name}' for task '{spec.name}'")
        try:
            params = json.loads(json.dumps(spec.evaluate(task), ensure_ascii=False))
        except Exception:
            params = None
        if rec.get("inputs") is not None and params != rec.get("inputs"):
            raise ReplayDivergence(f"event {seq}: handler '{spec.operation_name}' got inputs {params}, "
                                   f"the log records {rec.get('inputs')}")
        if "error" in rec:
            task.internal_data["incident"] = {"handler": rec["handler"], "message": rec["error"]}
            return False
        task.internal_data.pop("incident", None)
        apply_handler_result(task, spec.result_variable, copy.deepcopy(rec.get("outputs")),
                             copy.deepcopy(rec.get("updates")))
        return True


DEADLINE_EXPRESSION = re.compile(r"""^\s*deadlines\s*\[\s*(["'])([^"']+)\1\s*\]\s*$""")


def deadline_name(expression: str | None) -> str | None:
    """The deadline a timer is bound to: its expression is exactly deadlines["name"]."""
    match = DEADLINE_EXPRESSION.match(expression or "")
    return match.group(2) if match else None


def apply_handler_result(task, result_variable, value, updates=None) -> None:
    task.data[result_variable] = value
    for key, val in (updates or {}).items():
        task.data[key] = val
    if updates and "deadlines" in updates:
        set_deadlines(task.workflow, updates["deadlines"], skip=task)


def set_deadlines(workflow, deadlines: dict, skip=None) -> list[str]:
    """Make `deadlines` the current value everywhere the case can still read it, and re-arm
    the waiting timers bound to a deadline whose due moment changed."""
    rearmed = []
    for t in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
        if t is not skip:
            t.data["deadlines"] = copy.deepcopy(deadlines)
    for timer_task, _ in waiting_timers(workflow):
        for definition in _timer_definitions(timer_task.task_spec.event_definition):
            name = deadline_name(definition.expression)
            if name is None or name not in deadlines:
                continue
            if timer_task.internal_data.get("event_value") != deadlines[name]:
                timer_task.internal_data["event_value"] = deadlines[name]
                timer_task.internal_data.pop("event_fired", None)
                rearmed.append(name)
    return rearmed


def _timer_definitions(definition):
    if isinstance(definition, MultipleEventDefinition):
        return [d for d in definition.event_definitions if isinstance(d, TimerEventDefinition)]
    return [definition] if isinstance(definition, TimerEventDefinition) else []


# --- primitives ----------------------------------------------------------------

def begin(workflow: BpmnWorkflow, data: dict) -> None:
    """Put a new case's initial data on its start task."""
    start = workflow.get_next_task(state=TaskState.READY)
    if start is None:
        raise WorkflowException("the process has no start task")
    start.data.update(copy.deepcopy(data))


def complete_user_task(workflow: BpmnWorkflow, task_id: str, data: dict):
    task = workflow.get_task_from_id(UUID(task_id))
    task.data.update(copy.deepcopy(data))
    task.run()
    return task


def _timer_due(task) -> tuple[bool, datetime | None]:
    """(is a timer, due) for a waiting task.

    Timers behind an event-based gateway are not on their own task in SpiffWorkflow 3.2.0:
    the gateway's MultipleEventDefinition holds them and the due time is in the gateway
    task's internal_data["event_value"] (its `waiting_events()` does not show them)."""
    if not _timer_definitions(getattr(task.task_spec, "event_definition", None)):
        return False, None
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):
        value = value.get("next")
    if value is None:
        return True, None
    try:
        return True, TimerEventDefinition.get_datetime(str(value))
    except ValueError:
        return True, None


def waiting_timers(workflow: BpmnWorkflow) -> list[tuple[Any, datetime | None]]:
    """(task, due) of every waiting timer."""
    out = []
    for task in workflow.get_tasks(state=TaskState.WAITING):
        is_timer, due = _timer_due(task)
        if is_timer:
            out.append((task, due))
    return out


@dataclass
class Snapshot:
    """What the service layer stores after an action, from one pass over the task tree."""

    ready_user: list
    errored: list
    next_due: datetime | None
    # the timers that fired inside the action (snapshot's `fired_before`), when asked for
    fired: list = field(default_factory=list)


def snapshot(workflow: BpmnWorkflow, fired_before: set[str] | None = None) -> Snapshot:
    """With `fired_before` (`fired_timer_ids` as the action began), also, from the same pass,
    the timers that fired inside an action other than a tick — SpiffWorkflow fires a timer
    that is past due on any engine step, also one that starts waiting in that very step —
    described as `fire_due_timers` describes them, so that the log and the limits record them
    as a tick would."""
    ready, errored, dues, fired = [], [], [], []
    mask = TaskState.READY | TaskState.ERROR | TaskState.WAITING
    for task in workflow.get_tasks(state=mask if fired_before is None else mask | TaskState.COMPLETED):
        if task.has_state(TaskState.READY):
            if task.task_spec.manual:
                ready.append(task)
        elif task.has_state(TaskState.ERROR):
            errored.append(task)
        elif task.has_state(TaskState.WAITING):
            is_timer, due = _timer_due(task)
            if due is not None:
                dues.append(due)
        elif (record := _fired_in_action(task, fired_before)) is not None:
            fired.append(record)
    return Snapshot(ready, errored, min(dues) if dues else None, fired)


def timer_element(task):
    """The BPMN timer event behind a waiting timer task (for a gateway: the timer branch)."""
    spec = task.task_spec
    definition = spec.event_definition
    if isinstance(definition, MultipleEventDefinition):
        for idx, d in enumerate(definition.event_definitions):
            if isinstance(d, TimerEventDefinition) and idx < len(spec.outputs):
                return spec.outputs[idx]
    return spec


def fire_due_timers(workflow: BpmnWorkflow, now: datetime) -> list[dict]:
    """Fire every timer due at `now`; returns what fired."""
    due = [(t, d) for t, d in waiting_timers(workflow) if d is not None and d <= now]
    for task, _ in due:
        # SpiffWorkflow fires only strictly after the due moment; a limit due at 12:00 is
        # reached at 12:00, so we mark it fired ourselves.
        task._set_internal_data(event_fired=True)
    workflow.refresh_timers()
    fired = []
    for task, at in due:
        if not task.has_state(TaskState.WAITING):
            element = timer_element(task)
            names = [deadline_name(d.expression) for d in _timer_definitions(task.task_spec.event_definition)]
            fired.append({"task": element.name, "name": element.bpmn_name, "task_id": str(task.id),
                          "due": at.isoformat(), "deadline": next((n for n in names if n), None)})
    return fired


def fired_timer_ids(workflow: BpmnWorkflow) -> set[str]:
    """Ids of the timer tasks that have fired (finished by their timer). Read from each
    (sub)workflow's own table of tasks — the same tasks as a walk of the tree, without the walk."""
    return {str(t.id) for wf in (workflow, *workflow.subprocesses.values()) for t in wf.tasks.values()
            if t.state == TaskState.COMPLETED and _timer_definitions(getattr(t.task_spec, "event_definition", None))
            and _fired_by_timer(t)}


def _fired_in_action(task, before: set[str]) -> dict | None:
    """A completed timer task's record for `snapshot`, or None: not a timer, or fired before."""
    definitions = _timer_definitions(getattr(task.task_spec, "event_definition", None))
    if not definitions or str(task.id) in before or not _fired_by_timer(task):
        return None
    element = timer_element(task)
    value = task.internal_data.get("event_value")
    due = value.get("next") if isinstance(value, dict) else value
    return {"task": element.name, "name": element.bpmn_name, "task_id": str(task.id),
            "due": parse_instant(due).isoformat() if due else None,
            "deadline": next((n for n in (deadline_name(d.expression) for d in definitions) if n), None)}


def _fired_by_timer(task) -> bool:
    """For an event-based gateway, whether its timer branch (not a message) was taken."""
    if not isinstance(task.task_spec.event_definition, MultipleEventDefinition):
        return True
    branch = timer_element(task)
    return any(child.task_spec is branch and not child.has_state(TaskState.CANCELLED) for child in task.children)


def error_tasks(workflow: BpmnWorkflow):
    return workflow.get_tasks(state=TaskState.ERROR)


def retry_errors(workflow: BpmnWorkflow) -> list[str]:
    """Make every errored task runnable again."""
    retried = []
    for task in error_tasks(workflow):
        incident = task.internal_data.pop("incident", None) or {}
        if incident.get("waiting"):   # a timer or event that could not start waiting
            task.internal_data.pop("event_value", None)
            task._set_state(TaskState.WAITING)
        else:
            task._set_state(TaskState.READY)
        retried.append(task.task_spec.name)
    return retried


def deliver_message(workflow: BpmnWorkflow, name: str, payload: dict) -> None:
    """Deliver message `name`; its payload (the message form's fields) is merged into the data
    of each event that caught it, so the case goes on with them (docs/process-design.md,
    "Messages from outside"). SpiffWorkflow's spiff flavour keeps the payload aside unless the
    message names a `messageVariable`; an event-based gateway keeps it among its seen events."""
    event = BpmnEvent(MessageEventDefinition(name), payload=copy.deepcopy(payload))
    workflow.send_event(event)
    for task in workflow.get_tasks(state=TaskState.READY):
        if task.internal_data.get(name) is event.payload or any(
                seen is event for seen in task.internal_data.get("seen_events", ())):
            task.set_data(**copy.deepcopy(payload))


def advance(workflow: BpmnWorkflow, log: StepLog) -> None:
    """Run engine steps until nothing more can happen without a person, a timer or a message.

    A script, condition or timer expression that fails leaves its task in ERROR (or waiting)
    and is recorded as an incident; the case stays consistent and `retry` resumes it.
    """
    try:
        for _ in range(50):
            workflow.do_engine_steps()       # ends with refresh_timers(), which may ready more tasks
            if not workflow.get_tasks(state=TaskState.READY, manual=False):
                break
    except SpiffWorkflowException as err:
        task = getattr(err, "task", None)
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if task is not None and not task.has_state(TaskState.ERROR):
            waited = task.has_state(TaskState.WAITING)
            if task.has_state(TaskState.READY) or waited:
                task._set_state(TaskState.ERROR)
            task.internal_data["incident"] = {"handler": None, "message": message, "waiting": waited}
        elif task is not None and not task.internal_data.get("incident"):
            # SpiffWorkflow already put the task in ERROR (a gateway condition that failed):
            # keep what went wrong, so the incident says more than "the task failed"
            task.internal_data["incident"] = {"handler": None, "message": message, "waiting": False}
        if task is None or not task.has_state(TaskState.ERROR):
            # An errored task becomes an incident (and its event) in the service layer; only
            # a failure that left no errored task behind is logged here, so it is not lost.
            log.add("incident", {"task": getattr(getattr(task, "task_spec", None), "name", None),
                                 "handler": None, "message": message},
                    str(task.id) if task is not None else None)
    # Events thrown that nothing in this case caught (e.g. a reply signal after the watch
    # that listens for it has ended) are queued for the outside world; record and drop them.
    for event in workflow.get_events():
        definition = event.event_definition
        log.add("event_unhandled", {"event": type(definition).__name__,
                                    "name": getattr(definition, "name", None)})


def state_text(state: dict) -> str:
    """The engine state as it is stored (`instance_states.state`). Not canonical_json:
    SpiffWorkflow restores task data as deltas against the parent task, so tasks must stay in
    tree order (parents first)."""
    return json.dumps(state, ensure_ascii=False, separators=(",", ":"))


def text_hash(text: str) -> str:
    """`state_after` of the events written since serialize-once (docs/performance.md): SHA-256
    of the stored state text itself, so the state is serialized once per action."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def state_hash(state: dict) -> str:
    """`state_after` of the events written before serialize-once: SHA-256 of a second, key-sorted
    serialization of the state. Replay still accepts it (`matches_state_after`)."""
    return hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()


def matches_state_after(recorded: str, text: str, state: dict) -> bool:
    """Whether a driver's recorded `state_after` is the hash of this state, in either form: of
    its stored text (`text_hash`, written now) or of its canonical form (`state_hash`, events
    written before). Both hash the same state; which one an event holds is not a weakness, as
    `state_after` is covered by the event's keyed hash."""
    return recorded == text_hash(text) or recorded == state_hash(state)


def ready_user_tasks(workflow: BpmnWorkflow):
    return workflow.get_tasks(state=TaskState.READY, manual=True)


def next_due(workflow: BpmnWorkflow) -> datetime | None:
    dues = [d for _, d in waiting_timers(workflow) if d is not None]
    return min(dues) if dues else None


def evaluate_due(workflow: BpmnWorkflow, task, expression: str | None) -> datetime | None:
    if not expression:
        return None
    try:
        value = workflow.script_engine.evaluate(task, expression)
        return parse_instant(str(value)) if value else None
    except Exception:
        return None
