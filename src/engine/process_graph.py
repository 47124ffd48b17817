"""A process as `validate` reads it from the XML, before SpiffWorkflow parses the file: its
flow nodes and sequence flows (`ProcessGraph`), a flow's condition, and how an element is
named in a problem. The shape checks (graph_checks.py), the path checks (path_checks.py) and
the time-limit checks (limit_checks.py) read processes through it.
"""

from __future__ import annotations

import re
from collections import defaultdict

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
FLOW_NODE_TAGS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "manualTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess", "transaction", "exclusiveGateway",
    "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
}
GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
CONDITIONAL = {"exclusiveGateway", "inclusiveGateway"}


def local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def kind(node) -> str:
    """'exclusive gateway', 'user task', 'intermediate catch event' …"""
    return re.sub(r"(?<!^)([A-Z])", lambda m: " " + m.group(1).lower(), local(node.tag))


def label(node) -> str:
    return (node.get("name") or "").strip() or node.get("id") or "?"


def quoted(node) -> str:
    """'总结归档' (summary_archive), or 'summary_archive' when it has no name."""
    name = (node.get("name") or "").strip()
    return f"'{name}' ({node.get('id')})" if name else f"'{node.get('id')}'"


def condition_of(flow) -> str | None:
    cond = flow.find(f"{{{BPMN}}}conditionExpression")
    text = (cond.text or "").strip() if cond is not None else ""
    return text or None


class ProcessGraph:
    """The flow nodes and sequence flows directly inside one process or sub-process."""

    def __init__(self, container):
        self.container = container
        self.nodes = {n.get("id"): n for n in container if local(n.tag) in FLOW_NODE_TAGS and n.get("id")}
        self.flows = [f for f in container if local(f.tag) == "sequenceFlow"]
        self.out: dict[str, list] = defaultdict(list)        # valid flows only
        self.inc: dict[str, list] = defaultdict(list)
        self.leaving: dict[str, list] = defaultdict(list)    # every flow naming the node as source
        self.broken = []                                     # flows with a missing source or target
        for f in self.flows:
            src, tgt = f.get("sourceRef"), f.get("targetRef")
            if src:
                self.leaving[src].append(f)
            if src in self.nodes and tgt in self.nodes:
                self.out[src].append(f)
                self.inc[tgt].append(f)
            else:
                self.broken.append(f)
        self.boundary: dict[str, list[str]] = defaultdict(list)
        for nid, n in self.nodes.items():
            if local(n.tag) == "boundaryEvent" and n.get("attachedToRef") in self.nodes:
                self.boundary[n.get("attachedToRef")].append(nid)

    def tag(self, nid) -> str:
        return local(self.nodes[nid].tag)

    def successors(self, nid, boundary=True) -> list[str]:
        nxt = [f.get("targetRef") for f in self.out[nid]]
        return nxt + (self.boundary[nid] if boundary else [])

    def starts(self) -> list[str]:
        return [nid for nid, n in self.nodes.items()
                if local(n.tag) == "startEvent"
                or (local(n.tag) == "subProcess" and n.get("triggeredByEvent") == "true")]

    def reach(self, roots, step) -> set[str]:
        seen, todo = set(), list(roots)
        while todo:
            nid = todo.pop()
            if nid not in seen:
                seen.add(nid)
                todo += step(nid)
        return seen

    def can_end(self) -> set[str]:
        """Nodes from which an end event can be reached by normal flows (a boundary event's
        own flows count for the boundary event, not for its task)."""
        ends = [nid for nid in self.nodes if self.tag(nid) == "endEvent"]
        return self.reach(ends, lambda nid: [f.get("sourceRef") for f in self.inc[nid]])

    def needs_outgoing(self, nid) -> bool:
        n = self.nodes[nid]
        if self.tag(nid) == "endEvent" or n.get("isForCompensation") == "true":
            return False
        if self.tag(nid) == "subProcess" and n.get("triggeredByEvent") == "true":
            return False
        if self.tag(nid) == "boundaryEvent" and any(local(c.tag) == "compensateEventDefinition" for c in n):
            return False
        return True
