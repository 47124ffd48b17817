"""The shape of a process (part of `validate`): where its sequence flows lead.

Checked on our own reading of the XML, before SpiffWorkflow parses the file, so that a
broken flow is reported as the cause it is rather than as an engine exception:

* every sequence flow has a source and a target that are elements of the process;
* every flow node except an end event has an outgoing sequence flow (a boundary event is an
  extra path out of its task, not the task's normal way on); only gateways split a path;
* an exclusive or inclusive gateway with conditions has a default flow, or conditions that
  can be shown to cover every value of the choice fields they read;
* every element can be reached from a start event, and from every element reached an end
  event can be reached (a *dead end* is reported where the paths stop, once);
* every field a condition reads is asked for by a form on the way to it (or comes from a
  handler, a DMN table, a script or the initial data);
* warning: an end event reachable while a limit (`deadline.start`) runs that no
  `deadline.stop` (nor a timer on it, which breaches it) ended on that path.

Elements that can never be reached because of one broken element are folded into that
element's problem ("N elements after it can never be reached: …").
"""

from __future__ import annotations

import ast
import difflib
import itertools
import re
from collections import defaultdict

from lxml import etree

from .expressions import CheckedEnvironment, ExpressionRefused, names_used
from .message_checks import MessageChecks

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
FLOW_NODE_TAGS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "manualTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess", "transaction", "exclusiveGateway",
    "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
}
GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
CONDITIONAL = {"exclusiveGateway", "inclusiveGateway"}
LISTED = 5                  # names shown of the elements folded under a cause
MAX_COMBINATIONS = 1000     # choice values tried when showing that conditions cover every case
MAX_PATH_STATES = 200000    # states followed when looking for a limit still running at an end event


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


def _condition(flow) -> str | None:
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


class GraphChecks(MessageChecks):
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
                        if f.get("id") != default and _condition(f) is None:
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

    # --- gateways: do the conditions cover every case? --------------------------------
    def _gateways(self, g, reached):
        for nid, n in g.nodes.items():
            if g.tag(nid) not in CONDITIONAL or n.get("default") or nid not in reached:
                continue
            out = g.out[nid]
            conditions = [_condition(f) for f in out]
            if not out or all(c is None for c in conditions) or (len(out) > 1 and None in conditions):
                continue        # a plain merge, or reported by _splits
            verdict = self._uncovered(g, nid, conditions)
            if verdict:
                self.problem(n, f"{kind(n)} has conditions but no default flow, and {verdict}; a case that "
                                "matches none of them stops here with an incident: mark one outgoing flow as the "
                                "default (or add the missing conditions)", structural=True)

    def _uncovered(self, g, nid, conditions) -> str | None:
        """None when every combination of the choice values the conditions read makes one of
        them true; otherwise what is not covered, in words."""
        try:
            used = sorted(set().union(*(names_used(c) for c in conditions)))
        except ExpressionRefused:
            return None         # reported by the expression checks
        domains = {}
        fields = self._fields_upstream(g, nid)
        for name in used:
            values = None if name in self.other_names else _choices(fields.get(name, []))
            if values is None:
                return (f"its conditions cannot be shown to cover every case ('{name}' is not a choice field of a form "
                        "before it, so its values are not known)")
            domains[name] = values
        combos = list(itertools.islice(itertools.product(*domains.values()), MAX_COMBINATIONS + 1))
        if len(combos) > MAX_COMBINATIONS:
            return "its conditions read too many choices to check every combination"
        env = CheckedEnvironment()
        for combo in combos:
            data = dict(zip(domains, combo))
            if not any(_true(env, c, data) for c in conditions):
                case = " and ".join(f"{k} = {_show(v)}" for k, v in data.items())
                return f"its conditions do not cover {case}"
        return None

    # --- the fields a condition reads come from a form on the way ------------------------
    def _fields_upstream(self, g, nid) -> dict[str, list[dict]]:
        """Field name -> its schemas in the forms of the tasks and start event before `nid`
        (a task's form is not on the way out of its boundary events: it was not submitted)."""
        out: dict[str, list[dict]] = defaultdict(list)
        seen, todo = set(), [(nid, True)]
        while todo:
            cur, counts = todo.pop()
            if (cur, counts) in seen or cur not in g.nodes:
                continue
            seen.add((cur, counts))
            node = g.nodes[cur]
            if counts:
                for name, schema in form_fields(self.node_form(node)):
                    out[name].append(schema)
            todo += [(f.get("sourceRef"), True) for f in g.inc[cur]]
            if local(node.tag) == "boundaryEvent":
                todo.append((node.get("attachedToRef"), False))
        return out

    def _condition_fields(self, g, reached):
        for f in g.flows:
            text, src = _condition(f), f.get("sourceRef")
            if text is None or src not in reached:
                continue            # an unreachable flow is folded under what cut it off
            try:
                used = names_used(text)
            except ExpressionRefused:
                continue
            before = self._fields_upstream(g, src)
            for name in sorted(used):
                if name in before or name in self.other_names or name not in self.form_field_names:
                    continue        # on the way, from elsewhere, or unknown (reported by check_code)
                where = [quoted(n) for n in g.nodes.values() if name in dict(form_fields(self.node_form(n)))]
                self.problem(f, f"condition '{text}' reads '{name}', which no form before it asks for (it is a field "
                                f"of the form of {', '.join(where) or 'another task'}, which does not come before "
                                "this flow)")

    def _assign_fields(self, g, reached):
        """The case-data field a user task's `assignTo` reads (engine/org.py) is set before the
        task: by a form on the way to it (or a handler, script or initial data)."""
        for nid, rule in getattr(self, "assign_rules", {}).items():
            if not rule.field or nid not in reached or nid not in g.nodes:
                continue
            before: dict = {}
            for f in g.inc[nid]:
                before |= self._fields_upstream(g, f.get("sourceRef"))
            if rule.field in before or rule.field in self.other_names:
                continue
            where = [quoted(n) for n in g.nodes.values() if rule.field in dict(form_fields(self.node_form(n)))]
            said = (f"it is a field of the form of {', '.join(where)}, which does not come before this task" if where
                    else "no form, handler result, DMN output or initial data of this process provides it")
            self.problem(g.nodes[nid], f"property 'assignTo' reads '{rule.field}', which no form before this task "
                                       f"asks for ({said})")

    # --- limits still running at an end event (warning) --------------------------------
    def _unstopped_limits(self, g, reached):
        """Follow every path from the start with the limits running on it. A path also
        remembers what an equality condition it took settled (`severity == "major"`) until an
        element may change that field, and which limits have started (`"x" in deadlines`), so
        it does not take a branch that contradicts them; in a branch of a parallel split, the
        limits another branch stops are not left running by this one."""
        starts, stops = self.limit_steps(g)
        # a sibling branch's deadline.stop covers this branch; its timer only may (if it fires first)
        covered = self.stopped_by_other_branch(g, {n: s for n, s in stops.items() if g.tag(n) == "serviceTask"})
        writes = {nid: self.fields_written(n) for nid, n in g.nodes.items()}
        env = CheckedEnvironment()
        at_end: dict[str, set[tuple[str, str]]] = defaultdict(set)
        seen = set()
        todo = [(s, frozenset(), frozenset(), frozenset(), frozenset()) for s in g.starts()]
        while todo:
            state = todo.pop()
            if state in seen or len(seen) > MAX_PATH_STATES:
                continue
            seen.add(state)
            nid, running, facts, started, cover = state
            if g.tag(nid) == "endEvent":
                at_end[nid] |= running
            here = {(name, by) for name, by in running if name not in stops.get(nid, ())}
            here |= {(name, nid) for name in starts.get(nid, ())}
            known = {k: v for k, v in facts if k not in writes[nid]}
            started = started | starts.get(nid, set())
            # the limits started so far are what `deadlines` holds ("reply" in deadlines)
            for nxt, settled in self._ways_on(g, nid, {**known, "deadlines": dict.fromkeys(started, "")}, env):
                branch = cover | covered.get((nid, nxt), frozenset())
                going = frozenset((name, by) for name, by in here if name not in branch)
                todo.append((nxt, going, frozenset({**known, **settled}.items()), started, branch))
        for nid in g.nodes:
            for name, by in sorted(at_end.get(nid, ())):
                if name in self.misnamed_starts:
                    continue        # a task meant to stop it names an unknown handler: that is the problem
                self.problem(g.nodes[nid], f"can be reached while limit '{name}' (started by {quoted(g.nodes[by])}) "
                                           f"is still running: no deadline.stop for '{name}' (nor a timer on "
                                           f"deadlines[\"{name}\"]) on the way, so the case would end with the "
                                           "limit open", severity="warning")

    @staticmethod
    def _ways_on(g, nid, known, env):
        """(next element, fields the flow's condition settles) for each way a path can go on,
        leaving out the conditional flows the known fields already rule out."""
        flows = g.out[nid]
        conditions = {f.get("id"): _condition(f) for f in flows}

        def verdict(text):
            if text is None:
                return None
            try:
                used = names_used(text)
            except ExpressionRefused:
                return None
            if not used or not used <= set(known):
                return None
            return _true(env, text, known)
        decided = {fid: verdict(c) for fid, c in conditions.items()}
        default = g.nodes[nid].get("default")
        exclusive = g.tag(nid) == "exclusiveGateway"
        for f in flows:
            fid = f.get("id")
            if decided[fid] is False:
                continue
            if fid == default and exclusive and any(v for k, v in decided.items() if k != fid):
                continue
            yield f.get("targetRef"), _settles(conditions[fid])
        yield from ((b, {}) for b in g.boundary[nid])

    def fields_written(self, node) -> set[str]:
        """Fields an element may set: its form's fields, its handler's result, a script's names."""
        out = {name for name, _ in form_fields(self.node_form(node))}
        for child in node.iter():
            tag = local(child.tag)
            if tag == "serviceTaskOperator" and child.get("resultVariable"):
                out.add(child.get("resultVariable"))
            if tag in ("script", "preScript", "postScript") and child.text:
                out |= script_names(child.text)
        return out

    def limit_steps(self, g):
        """Which nodes start a limit, and which end one (deadline.stop, or a timer bound to it)."""
        from .runtime import deadline_name
        starts, stops = defaultdict(frozenset), defaultdict(frozenset)
        for nid, n in g.nodes.items():
            op = next((c for c in n.iter() if local(c.tag) == "serviceTaskOperator"), None)
            if op is not None and op.get("id") in ("deadline.start", "deadline.stop"):
                param = next((p for p in op.iter() if local(p.tag) == "parameter" and p.get("id") == "name"), None)
                try:
                    name = ast.literal_eval((param.get("value") or "").strip()) if param is not None else None
                except (ValueError, SyntaxError):
                    name = None
                if isinstance(name, str):
                    which = starts if op.get("id") == "deadline.start" else stops
                    which[nid] |= {name}
            for timer in n.iter():
                if local(timer.tag) in ("timeDate", "timeDuration", "timeCycle"):
                    bound = deadline_name((timer.text or "").strip())
                    if bound and not bound.endswith(".remind"):
                        stops[nid] |= {bound}
        return starts, stops

    @staticmethod
    def stopped_by_other_branch(g, stops) -> dict[tuple[str, str], set[str]]:
        """(fork, first element of a branch) -> the limits another branch of that fork stops.
        A branch of a parallel split (or of a non-interrupting boundary event) that ends ends
        only itself: the case goes on in the others, so a limit they stop is not left running."""
        out: dict[tuple[str, str], frozenset[str]] = {}
        for nid, n in g.nodes.items():
            branches = []
            if g.tag(nid) in ("parallelGateway", "inclusiveGateway") and len(g.out[nid]) > 1:
                branches = [[f.get("targetRef")] for f in g.out[nid]]
            non_interrupting = [b for b in g.boundary[nid] if g.nodes[b].get("cancelActivity") == "false"]
            if non_interrupting:
                branches = [g.successors(nid, boundary=False)] + [[b] for b in non_interrupting]
            reach = [g.reach(b, g.successors) for b in branches]
            for i, (first, mine) in enumerate(zip(branches, reach)):
                others = set().union(*(r for j, r in enumerate(reach) if j != i)) - mine
                stopped = set().union(*(stops.get(x, set()) for x in others))
                for succ in first:
                    out[(nid, succ)] = frozenset(stopped)
        return out


def _folded(g, ids, either=False) -> str:
    if not ids:
        return ""
    names = [label(g.nodes[i]) for i in ids[:LISTED]] + (["…"] if len(ids) > LISTED else [])
    what = "element" if len(ids) == 1 else "elements"
    return f" ({len(ids)} {what} after it can never be reached{' either' if either else ''}: {', '.join(names)})"


def _did_you_mean(ref, nodes) -> str:
    close = difflib.get_close_matches(ref, list(nodes), n=1, cutoff=0.6)
    return f" (did you mean {quoted(nodes[close[0]])}?)" if close else ""


def script_names(text: str) -> set[str]:
    """The names a script assigns (`x = …`, `x += …`)."""
    return set(re.findall(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*[+\-*/]?=", text, re.M))


def form_fields(schema):
    """(name, property schema) of a form's fields, with those under allOf/oneOf/anyOf."""
    if not isinstance(schema, dict):
        return
    for name, prop in (schema.get("properties") or {}).items():
        yield name, prop if isinstance(prop, dict) else {}
    for sub in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        yield from form_fields(sub)


def _choices(schemas) -> list | None:
    """Every value a field can take, when every form before the gateway makes it a choice."""
    if not schemas:
        return None
    values = []
    for prop in schemas:
        if "enum" in prop:
            found = list(prop["enum"])
        elif prop.get("type") == "boolean":
            found = [True, False]
        else:
            options = prop.get("oneOf") or prop.get("anyOf") or []
            if not options or not all(isinstance(o, dict) and "const" in o for o in options):
                return None
            found = [o["const"] for o in options]
        values += [v for v in found if v not in values]
    return values


def _settles(text) -> dict:
    """{"severity": "major"} for the condition `severity == "major"`; {} for any other."""
    try:
        tree = ast.parse(text or "", mode="eval").body
    except SyntaxError:
        return {}
    if (isinstance(tree, ast.Compare) and len(tree.ops) == 1 and isinstance(tree.ops[0], ast.Eq)
            and isinstance(tree.left, ast.Name) and isinstance(tree.comparators[0], ast.Constant)):
        return {tree.left.id: tree.comparators[0].value}
    return {}


def _true(env, text, data) -> bool:
    try:
        return bool(env.evaluate(text, dict(data)))
    except Exception:
        return False


def _show(value) -> str:
    return repr(value) if not isinstance(value, str) else f'"{value}"'
