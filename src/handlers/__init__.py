"""Service-task handlers: small functions over task data plus injected services.

A service task in BPMN names a handler (`spiffworkflow:serviceTaskOperator id="case_number.assign"`).
The engine looks the name up in a `HandlerRegistry`; `default_registry()` holds the handlers
shipped here, one module per concern. A handler receives a `HandlerContext` and returns a
JSON-serialisable value, which the engine stores in the task's result variable and records
in the event log (so replay can feed it back without calling the handler again).

Handlers never import Flask or the engine's storage; what they may touch arrives in
`ctx.services`.

A handler may wait on something outside the process (a notifier's gateway, another
authority's system): such a handler runs in a worker thread under the time limit
(COMPLAINTFLOW_HANDLER_TIMEOUT, engine/runtime.py `call_handler`), so that a hung system
makes its task an incident instead of holding the action. That is the default. A handler
that only computes over its parameters and the case's own services (deadlines, the case
summary, the case-number counter) is registered with `may_hang=False` and runs on the
action's own thread: handing a call to a worker and back costs two thread switches, about
1 ms per call on a loaded machine (docs/performance.md, "Cost per user action").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol


class CaseNumbers(Protocol):
    def next(self, process_id: str, year: int, prefix: str) -> str: ...


class Notifier(Protocol):
    def send(self, kind: str, to: str | None, message: str, case_number: str | None = None) -> dict: ...


class CaseRecord(Protocol):
    def set_summary(self, **fields: Any) -> None: ...


class CaseStarter(Protocol):  # engine.service.CaseStarter
    def start_all(self, process_id: str, parts: list[dict], extra: dict) -> list[dict]: ...


class DeadlineBook(Protocol):  # engine.deadlines.DeadlineBook
    def start(self, name, unit, amount, start, rule=None, seed=None, remind_workdays=None): ...
    def as_variable(self) -> dict: ...


@dataclass
class Services:
    clock: Any                 # engine.clock.Clock
    case_numbers: CaseNumbers
    notifier: Notifier
    case: CaseRecord
    deadlines: DeadlineBook | None = None
    cases: CaseStarter | None = None


@dataclass
class HandlerContext:
    params: dict[str, Any]     # the service task's evaluated parameters
    data: dict[str, Any]       # a copy of the task data; changing it changes nothing
    services: Services
    instance_id: str
    process_id: str
    task_name: str             # BPMN id of the service task

    def now(self) -> datetime:
        return self.services.clock.now()


@dataclass
class Updates:
    """A handler result that also sets other case-data variables.

    `Updates(result, deadlines={...})` stores `result` in the task's result variable and
    each keyword as a variable of its own. Setting `deadlines` re-arms the waiting timers
    bound to the deadlines that changed."""

    result: Any = None
    data: dict[str, Any] = field(default_factory=dict)

    def __init__(self, result: Any = None, **data: Any):
        self.result = result
        self.data = data


Handler = Callable[[HandlerContext], Any]


@dataclass
class HandlerInfo:
    name: str
    func: Handler
    summary: str = ""
    params: tuple[str, ...] = field(default_factory=tuple)
    # whether the handler may wait on something outside the process (see the module's doc):
    # True runs it in a worker thread under the time limit; False on the action's thread
    may_hang: bool = True


class HandlerRegistry:
    def __init__(self):
        self._handlers: dict[str, HandlerInfo] = {}

    def register(self, name: str, func: Handler | None = None, *, params: tuple[str, ...] = (),
                 may_hang: bool = True):
        """Register `func` under `name`; usable as a decorator. `may_hang=False` declares that
        the handler touches nothing outside the process (no notifier, no outside system), so
        it runs without a time limit on the action's own thread."""
        def add(f: Handler) -> Handler:
            if name in self._handlers:
                raise ValueError(f"handler '{name}' is registered twice")
            doc = (f.__doc__ or "").strip().splitlines()
            self._handlers[name] = HandlerInfo(name, f, doc[0] if doc else "", tuple(params), may_hang)
            return f
        return add(func) if func is not None else add

    def get(self, name: str) -> HandlerInfo | None:
        return self._handlers.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._handlers

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def copy(self) -> "HandlerRegistry":
        other = HandlerRegistry()
        other._handlers = dict(self._handlers)
        return other


def default_registry(extra_modules: str | None = None) -> HandlerRegistry:
    """The handlers shipped with complaintflow, plus those of the modules named in
    COMPLAINTFLOW_HANDLERS (comma-separated import paths; each module has `register(registry)`)."""
    import importlib
    import os

    from . import case, case_number, deadlines, notify, rework

    registry = HandlerRegistry()
    modules = [case_number, notify, rework, case, deadlines]
    names = extra_modules if extra_modules is not None else os.environ.get("COMPLAINTFLOW_HANDLERS", "")
    for name in filter(None, (n.strip() for n in names.split(","))):
        try:
            modules.append(importlib.import_module(name))
        except ImportError as err:
            raise RuntimeError(f"COMPLAINTFLOW_HANDLERS names '{name}', which cannot be imported: {err}") from err
    for module in modules:
        module.register(registry)
    return registry
