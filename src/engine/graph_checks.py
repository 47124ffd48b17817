"""The shape of a process (part of `validate`): where its sequence flows lead.

Checked on our own reading of the XML (process_graph.py), before SpiffWorkflow parses the
file, so that a broken flow is reported as the cause it is rather than as an engine exception:

* every sequence flow has a source and a target that are elements of the process;
* every flow node except an end event has an outgoing sequence flow (a boundary event is an
  extra path out of its task, not the task's normal way on); only gateways split a path;
* every element can be reached from a start event, and from every element reached an end
  event can be reached (a *dead end* is reported where the paths stop, once);
* then, following the paths (path_checks.py): what the conditions of a gateway cover, where
  the fields that conditions read come from, and the limits still running at an end event.

Elements that can never be reached because of one broken element are folded into that
element's problem ("N elements after it can never be reached: …").
"""

from __future__ import annotations

import difflib

from .message_checks import MessageChecks
from .path_checks import PathChecks
from .process_graph import CONDITIONAL, GATEWAYS, ProcessGraph, condition_of, kind, label, local, quoted

LISTED = 5                  # names shown of the elements folded under a cause


class _Cause:
    """A broken element that others may follow from; its problem is written once the
    unreachable elements are attributed."""

    def __init__(self, node, message, links, source=None):
        self.node = node
        self.message = message
        self.links = links          # flow ids and element ids that tie it to what it cut off
        self.source = source        # the node a broken flow leaves from
        self.guess = None           # the id a broken flow names instead of an element's
        self.follow_on: list[str] = []


class GraphChecks(MessageChecks, PathChecks):
    """Mixed into the file checker, which provides `problem`, `properties`, `load_form`,
    `data_names` results (`form_field_names`, `other_names`) and `handlers`."""

    def check_graph(self, container, top_level=True):
        if top_level:
            self.check_messages(container)      # message_checks.py (subprocesses included)
        g = ProcessGraph(container)
        causes = self._broken_flows(g) + self._missing_outgoing(g)
        reached = g.reach(g.starts(), g.successors)
        unreached = [nid for nid in g.nodes if nid not in reached]
        self._attribute(g, causes, unreached)
        for cause in causes:
            cause.follow_on.sort(key=list(g.nodes).index)
            msg = cause.message + _folded(g, cause.follow_on)
            self.problem(cause.node, msg, structural=True, follow_on=cause.follow_on)
        self._splits(g)
        self._dead_ends(g, reached)
        if top_level:
            self._gateways(g, reached)
            self._condition_fields(g, reached)
            self._assign_fields(g, reached)
            self._unstopped_limits(g, reached)
        for nid in reached:
            if g.tag(nid) in ("subProcess", "transaction"):
                self.check_graph(g.nodes[nid], top_level=False)

    # --- flows -------------------------------------------------------------------------
    def _broken_flows(self, g) -> list[_Cause]:
        causes = []
        for f in g.broken:
            src, tgt = f.get("sourceRef"), f.get("targetRef")
            source = g.nodes.get(src)
            start = f" from {quoted(source)}" if source is not None else ""
            if not tgt:
                msg = f"sequence flow{start} has no targetRef: it leads nowhere; connect it to the element it should lead to"
            elif tgt not in g.nodes:
                msg = (f"sequence flow{start} leads to '{tgt}', which is not an element of this process"
                       + _did_you_mean(tgt, g.nodes))
            elif not src:
                msg = f"sequence flow to {quoted(g.nodes[tgt])} has no sourceRef: nothing leads into it"
            else:
                msg = (f"sequence flow to {quoted(g.nodes[tgt])} comes from '{src}', which is not an element of "
                       "this process" + _did_you_mean(src, g.nodes))
            cause = _Cause(f, msg, {f.get("id"), tgt} if tgt in g.nodes else {f.get("id")},
                           source=src if source is not None else None)
            cause.guess = tgt if tgt and tgt not in g.nodes else None
            causes.append(cause)
        return causes

    def _missing_outgoing(self, g) -> list[_Cause]:
        causes = []
        for nid, n in g.nodes.items():
            if g.leaving[nid] or not g.needs_outgoing(nid):
                continue
            what = kind(n)
            if what.endswith("gateway"):
                msg = f"{what} has no outgoing sequence flow: a case that reaches it goes no further"
            else:
                msg = (f"{what} has no outgoing sequence flow: a case that reaches it would end here without "
                       "reaching an end event (only end events may have none)")
            if g.boundary[nid]:
                msg += "; its boundary events are extra paths, not its way on"
            stale = {(o.text or "").strip() for o in n if local(o.tag) == "outgoing"}
            causes.append(_Cause(n, msg, stale))
        return causes

    def _splits(self, g):
        """Only gateways split a path; a default flow must be one of the gateway's own."""
        for nid, n in g.nodes.items():
            tag = g.tag(nid)
            out = g.out[nid]
            if tag not in GATEWAYS and len(out) > 1:
                targets = ", ".join(quoted(g.nodes[f.get("targetRef")]) for f in out)
                self.problem(n, f"{kind(n)} has {len(out)} outgoing sequence flows ({targets}); only a gateway may "
                                "split a path: put an exclusive or parallel gateway after it", structural=True)
            if tag in CONDITIONAL:
                default = n.get("default")
                if default and g.leaving[nid] and default not in {f.get("id") for f in g.leaving[nid]}:
                    self.problem(n, f"default flow '{default}' is not one of this gateway's outgoing sequence flows",
                                 structural=True)
                if len(out) > 1:
                    for f in out:
                        if f.get("id") != default and condition_of(f) is None:
                            self.problem(f, f"sequence flow from {kind(n)} {quoted(n)} to "
                                            f"{quoted(g.nodes[f.get('targetRef')])} has no condition and is not the "
                                            "gateway's default flow: give it a condition or make it the default",
                                         structural=True)

    # --- what cannot be reached, what cannot end ---------------------------------------
    def _attribute(self, g, causes, unreached):
        """Fold the elements that cannot be reached under the broken element that cut them
        off; an unreachable region with no such cause is reported once, at its entry."""
        left = list(unreached)
        inside = set(unreached)

        def region(entry):
            return [nid for nid in g.reach([entry], lambda x: [s for s in g.successors(x) if s in inside])
                    if nid in left]

        entries = [nid for nid in unreached if not any(f.get("sourceRef") in inside for f in g.inc[nid])]
        while left:
            entry = next((e for e in entries if e in left), left[0])
            members = sorted(region(entry), key=list(g.nodes).index)
            for nid in members:
                left.remove(nid)
            cause = self._cause_of(g, causes, entry)
            if cause is not None:
                cause.follow_on += members
                continue
            n = g.nodes[entry]
            why = ("no sequence flow leads to it" if not g.inc[entry]
                   else "the flows into it come only from elements that cannot be reached either")
            others = [m for m in members if m != entry]
            self.problem(n, f"can never be reached from a start event: {why}" + _folded(g, others, either=True),
                         structural=True, follow_on=others)

    @staticmethod
    def _cause_of(g, causes, entry):
        if not causes:
            return None
        node = g.nodes[entry]
        stale_in = {(i.text or "").strip() for i in node if local(i.tag) == "incoming"}
        for cause in causes:
            if entry in cause.links or stale_in & cause.links:
                return cause
        for cause in causes:
            if cause.guess and difflib.get_close_matches(cause.guess, [entry], n=1, cutoff=0.6):
                return cause
        cutting = [c for c in causes if c.source is not None or local(c.node.tag) != "sequenceFlow"]
        return cutting[0] if len(cutting) == 1 else None

    def _dead_ends(self, g, reached):
        """A loop reached from a start that no normal flow leaves for an end event: reported
        once, at its first element. (An element where paths simply stop has no outgoing flow,
        or only a broken one, and is reported as that.)"""
        ending = g.can_end()
        dead = [nid for nid in g.nodes if nid in reached and nid not in ending]
        inside = set(dead)

        def step(nid):
            return [s for s in g.successors(nid, boundary=False) if s in inside]
        after = {nid: g.reach(step(nid), step) for nid in dead}
        reported = set()
        for nid in dead:
            loop = after[nid]
            if nid not in loop or loop & reported or not all(nid in after[m] for m in loop):
                continue            # not on a loop, already reported, or the loop leads on to another dead end
            reported |= loop
            members = [m for m in dead if m in loop]
            names = ", ".join(f"'{label(g.nodes[m])}'" for m in members[:LISTED])
            self.problem(g.nodes[nid], f"is a dead end: paths that reach it go round {names}"
                                       f"{', …' if len(members) > LISTED else ''} and never reach an end event; "
                                       "give the loop a way out", structural=True, follow_on=members[1:])

def _folded(g, ids, either=False) -> str:
    if not ids:
        return ""
    names = [label(g.nodes[i]) for i in ids[:LISTED]] + (["…"] if len(ids) > LISTED else [])
    what = "element" if len(ids) == 1 else "elements"
    return f" ({len(ids)} {what} after it can never be reached{' either' if either else ''}: {', '.join(names)})"


def _did_you_mean(ref, nodes) -> str:
    close = difflib.get_close_matches(ref, list(nodes), n=1, cutoff=0.6)
    return f" (did you mean {quoted(nodes[close[0]])}?)" if close else ""

