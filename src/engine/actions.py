"""What the service layer's actions return and carry: plain values, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from .clock import IdSequence
from .models import Instance, InstanceState


# --- results ------------------------------------------------------------------------

@dataclass
class DeployResult:
    process_id: str
    version: int
    created: bool
    content_hash: str
    source_path: str


@dataclass
class ActionResult:
    instance_id: str
    case_number: str | None
    status: str
    open_tasks: list[dict]
    incidents: list[dict]
    events: int


@dataclass
class Loaded:
    """A case loaded for one action: its row, version, engine state and state row."""

    inst: Instance
    pv: "VersionInfo"
    wf: BpmnWorkflow
    ids: IdSequence
    state_row: InstanceState
    # the timers that had fired when the case was loaded (runtime.fired_timer_ids)
    timers_fired: set = field(default_factory=set)
    # the case's open task rows when they were read with it (id -> row); None: read them at the end
    open_tasks: dict | None = None


@dataclass(frozen=True)
class VersionInfo:
    """The immutable parts of a deployed version that actions need, cached per process."""

    id: int
    process_id: str
    version: int
    meta: dict
    forms: dict
    spec: object
    subprocess_specs: dict

    @property
    def specs(self):
        return self.spec, self.subprocess_specs
