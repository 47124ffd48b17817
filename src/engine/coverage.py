"""Coverage of process tests: which sequence flows and tasks of a process the scenarios'
cases went through.

What counts is what the engine did, never what a scenario file says: for each case the
scenarios ran, the path through the diagram is read from the engine's task tree (the case
page's path, `InboxMixin.case_detail`: each task's parent is the element it came from, so
every flow taken is known exactly, loops and timers included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from . import drawing
from .layout import ACTIVITIES

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


@dataclass
class ProcessModel:
    """What coverage and scenario files need to know of one process: its flows, activities
    and user tasks, with their names."""

    process_id: str
    name: str
    source_path: str
    flows: dict[str, tuple[str, str]]          # flow id -> (source id, target id)
    names: dict[str, str]                      # element id -> name (or the id)
    activities: list[str]                      # task-like elements, in file order
    user_tasks: dict[str, str]                 # user task id -> name

    @classmethod
    def from_file(cls, path: str | Path, process_id: str) -> "ProcessModel":
        root = etree.fromstring(Path(path).read_bytes())
        proc = next(p for p in root.iter(f"{BPMN}process") if p.get("id") == process_id)
        flows, names, activities, user_tasks = {}, {}, [], {}
        for node in proc.iter():
            kind, nid = _local(node.tag), node.get("id")
            if not nid:
                continue
            names[nid] = (node.get("name") or "").strip() or nid
            if kind == "sequenceFlow":
                flows[nid] = (node.get("sourceRef"), node.get("targetRef"))
            elif kind in ACTIVITIES:
                activities.append(nid)
                if kind == "userTask":
                    user_tasks[nid] = names[nid]
        return cls(process_id, proc.get("name") or process_id, str(path), flows, names, activities, user_tasks)

    def flow_text(self, flow_id: str) -> str:
        """A flow as designers read it: 'source name → target name'."""
        source, target = self.flows[flow_id]
        return f"{self.names.get(source, source)} → {self.names.get(target, target)}"


@dataclass
class Coverage:
    """Flows taken and elements reached, per process, summed over every case run."""

    models: dict[str, ProcessModel]
    flows: dict[str, set] = field(default_factory=dict)
    reached: dict[str, set] = field(default_factory=dict)
    scenarios: dict[str, int] = field(default_factory=dict)

    def add_scenario(self, process_id: str) -> None:
        self.scenarios[process_id] = self.scenarios.get(process_id, 0) + 1

    def add_case(self, process_id: str, path: dict) -> None:
        """`path` as the case page has it: {"done", "current", "flows"} (element and flow ids)."""
        model = self.models.get(process_id)
        if model is None:
            return
        self.flows.setdefault(process_id, set()).update(f for f in path["flows"] if f in model.flows)
        self.reached.setdefault(process_id, set()).update(path["done"], path["current"])

    def report(self) -> list[dict]:
        """One entry per process a scenario ran for (the documented `coverage` JSON keys)."""
        out = []
        for pid in sorted(self.scenarios):
            model = self.models[pid]
            taken, reached = self.flows.get(pid, set()), self.reached.get(pid, set())
            missed = [f for f in model.flows if f not in taken]
            unreached = [a for a in model.activities if a not in reached]
            out.append({
                "process_id": pid, "name": model.name, "scenarios": self.scenarios[pid],
                "flows": _ratio(len(model.flows) - len(missed), len(model.flows)),
                "tasks": _ratio(len(model.activities) - len(unreached), len(model.activities)),
                "flows_taken": sorted(taken),
                "flows_never_taken": [{"id": f, "source": model.flows[f][0], "target": model.flows[f][1],
                                       "text": model.flow_text(f)} for f in missed],
                "tasks_never_reached": [{"id": a, "name": model.names[a]} for a in unreached],
            })
        return out

    def draw(self, process_id: str, role_names: dict | None = None) -> str:
        """The process's diagram with the covered flows marked (the others dashed red) and the
        elements reached in green."""
        model = self.models[process_id]
        taken = self.flows.get(process_id, set())
        percent = _ratio(len(taken), len(model.flows))["percent"]
        title = f"{model.name} ({process_id}): flows {percent:g}% covered"
        return drawing.render(Path(model.source_path).read_bytes(), role_names=role_names,
                              done=self.reached.get(process_id, set()), covered_flows=taken, title=title)


def _ratio(hit: int, total: int) -> dict:
    # rounded down, so that 100% means every one
    percent = 100.0 if total == 0 else math.floor(1000 * hit / total) / 10
    return {"covered": hit, "total": total, "percent": percent}


