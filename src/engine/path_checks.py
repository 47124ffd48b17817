"""What `validate` finds by following the paths through a process (part of the graph checks,
graph_checks.py, which runs these on the elements a start event reaches):

* an exclusive or inclusive gateway with conditions has a default flow, or conditions that
  can be shown to cover every value of the choice fields they read;
* every field a condition reads is asked for by a form on the way to it (or comes from a
  handler, a DMN table, a script or the initial data), and so is the field a user task's
  `assignTo` reads, before the task;
* warning: an end event reachable while a limit (`deadline.start`) runs that no
  `deadline.stop` (nor a timer on it, which breaches it) ended on that path.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections import defaultdict

from .expressions import CheckedEnvironment, ExpressionRefused, names_used
from .process_graph import CONDITIONAL, condition_of, kind, local, quoted

MAX_COMBINATIONS = 1000     # choice values tried when showing that conditions cover every case
MAX_PATH_STATES = 200000    # states followed when looking for a limit still running at an end event


class PathChecks:
    """Mixed into GraphChecks; the file checker provides `problem`, `node_form`,
    `form_field_names`, `other_names`, `assign_rules` and `misnamed_starts`."""

    # --- gateways: do the conditions cover every case? --------------------------------
    def _gateways(self, g, reached):
        for nid, n in g.nodes.items():
            if g.tag(nid) not in CONDITIONAL or n.get("default") or nid not in reached:
                continue
            out = g.out[nid]
            conditions = [condition_of(f) for f in out]
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
            text, src = condition_of(f), f.get("sourceRef")
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
        conditions = {f.get("id"): condition_of(f) for f in flows}

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
