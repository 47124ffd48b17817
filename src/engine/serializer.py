"""SpiffWorkflow's serializer as complaintflow configures it: what turns a deployed version's
stored spec and a case's stored state back into a workflow, and back into JSON. It imports no
part of SpiffWorkflow's BPMN or DMN parser (nor its XML schema), so that a command that only
restores a case (`show` of a case waiting at an event: engine/sqlite_reads.py) does not load
them; `spec.py` adds the parser and re-exports these names.

* Service tasks use `HandlerServiceTask`, which calls our handler dispatcher instead of
  SpiffWorkflow's `call_service` path (that path hides every handler exception behind
  `NameError: name 'script' is not defined`). A handler failure marks the task ERROR and
  the engine step carries on; the service layer turns that into an incident.
* Instance state is serialized without its spec: the spec of a deployed version is stored
  once, and restored specs are cached per version in memory.
"""

from __future__ import annotations

import json
from copy import deepcopy
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask as SpiffServiceTask


class HandlerServiceTask(SpiffServiceTask):
    """A service task that calls a complaintflow handler by name."""

    def _run_hook(self, task):
        dispatcher = getattr(task.workflow.script_engine, "dispatcher", None)
        if dispatcher is None:
            raise RuntimeError("service tasks need a handler dispatcher on the script engine")
        return dispatcher.run_service_task(self, task)

    def evaluate(self, task) -> dict:
        engine = task.workflow.script_engine
        return {name: engine.evaluate(task, p["value"]) for name, p in self.operation_params.items()}


class _StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Workflow converter that leaves the spec out and takes it back in on restore."""

    def to_dict(self, workflow):
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        dct = dict(dct)
        workflow = self.target_class(spec, subprocess_specs or {}, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dict(dct["subprocesses"]), workflow)
        workflow.bpmn_events = self.registry.restore(dct.get("bpmn_events", []))
        return workflow


def _config():
    config = deepcopy(SPIFF_CONFIG)
    config.pop(SpiffServiceTask)
    config[HandlerServiceTask] = ServiceTaskConverter
    return config


class Serializer:
    """Turns specs and instance state into JSON-able dicts and back."""

    def __init__(self):
        self.spec_registry = BpmnWorkflowSerializer.configure(_config())
        self.workflow_serializer = BpmnWorkflowSerializer(self.spec_registry)
        self.state_registry = BpmnWorkflowSerializer.configure(_config())
        _StateOnlyWorkflowConverter(BpmnWorkflow, self.state_registry)

    # specs: a process version's top-level spec plus the specs of its subprocesses/call activities
    def specs_to_dict(self, spec, subprocess_specs) -> dict:
        return {
            "spec": self.spec_registry.convert(spec),
            "subprocess_specs": {k: self.spec_registry.convert(v) for k, v in subprocess_specs.items()},
        }

    def specs_from_dict(self, dct, owned: bool = False):
        """Restoring changes the dicts it reads, so it reads copies unless the caller gives up
        `dct` (`owned`: parsed for this call alone, as `SqliteReads` does; the copy is about half
        of restoring a large spec)."""
        copy = (lambda d: d) if owned else deepcopy
        spec = self.spec_registry.restore(copy(dct["spec"]))
        subs = {k: self.spec_registry.restore(copy(v)) for k, v in dct["subprocess_specs"].items()}
        return spec, subs

    # instance state
    def state_to_dict(self, workflow) -> dict:
        return self.state_registry.convert(workflow)

    def state_from_dict(self, dct, spec, subprocess_specs):
        return self.state_registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)



def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
