"""Diff: what changed between two versions of a process — two deployed versions, or a deployed
version and the working copy of its BPMN file (with the forms beside it).

diff_versions(service, process_id, left=None, right=None) -> dict
    left: a version number (default: the latest deployed); right: a version number or a path
    to a BPMN file or a directory holding it (default: the working copy, whatif.candidate_file).
    {"process_id", "from": side, "to": side, "equal": bool,
     "changes": [{"kind": "limit" | "timer" | "element" | "flow" | "condition" | "form" | "role",
                  "change": "+" | "-" | "~", "id": str, "text": str}]}
    side = {"version": int | None, "path": str | None, "label": str}

Both sides are read as the same model (process_model): elements by id (kind, name, lane,
form, handler, dueAt), sequence flows (source, target, name, condition), lanes (roles), the
forms' fields (type, required, choices, title), declared limits (each `deadline.start`: name,
unit, amount, from, reminder, rule, seed, and its escalation: the timers bound to
`deadlines["name"]` and where they lead) and timers (kind and expression). Nothing is
deployed and the working copy need not pass `validate` to be compared.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from lxml import etree
from sqlalchemy import select

from .element_checks import FORM_PROPERTY, NS
from .errors import InvalidInput, NotFound
from .forms import choice_options
from .models import ProcessVersion
from .runtime import deadline_name
from .whatif_candidate import candidate_file

KIND_ORDER = ("limit", "timer", "element", "flow", "condition", "form", "role")
_TIMER_TAGS = ("timeDate", "timeDuration", "timeCycle")


def _local(node) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _words(tag: str) -> str:
    """userTask -> 'task', exclusiveGateway -> 'exclusive gateway'."""
    words = re.sub(r"(?<!^)([A-Z])", r" \1", tag).lower()
    return "task" if words == "user task" else words


def _literal(expression: str | None):
    """A parameter's value: the constant it is, or the expression as written."""
    if expression is None:
        return None
    try:
        return ast.literal_eval(expression)
    except (ValueError, SyntaxError):
        return expression.strip()


# --- the model of one side ---------------------------------------------------------------------

def process_model(bpmn_xml: str | bytes, process_id: str, forms: dict) -> dict:
    raw = bpmn_xml.encode("utf-8") if isinstance(bpmn_xml, str) else bpmn_xml
    try:
        root = etree.fromstring(raw)
    except etree.XMLSyntaxError as err:
        raise InvalidInput(f"the BPMN is not well-formed XML: {err.msg} (line {err.lineno})") from None
    proc = next((p for p in root.findall("bpmn:process", NS) if p.get("id") == process_id), None)
    if proc is None:
        raise InvalidInput(f"the BPMN defines no process '{process_id}'")
    lanes, lane_of = {}, {}
    for lane in proc.iter(f"{{{NS['bpmn']}}}lane"):
        name = (lane.get("name") or "").strip()
        refs = [(r.text or "").strip() for r in lane.findall("bpmn:flowNodeRef", NS)]
        lanes.setdefault(name, []).extend(refs)
        lane_of.update({r: name for r in refs})
    elements, flows, timers, starts = {}, {}, {}, {}
    for node in proc.iter():
        tag = _local(node)
        if tag == "sequenceFlow":
            cond = node.find("bpmn:conditionExpression", NS)
            flows[node.get("id")] = {"from": node.get("sourceRef"), "to": node.get("targetRef"),
                                     "name": node.get("name"),
                                     "condition": (cond.text or "").strip() if cond is not None else None}
        elif tag.endswith(("Task", "Event", "Gateway")) or tag in ("task", "subProcess", "callActivity"):
            if not node.get("id"):
                continue
            props = {p.get("name"): p.get("value") for p in node.findall(
                "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)}
            op = node.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
            elements[node.get("id")] = {"kind": tag, "name": node.get("name"), "lane": lane_of.get(node.get("id")),
                                        "form": props.get(FORM_PROPERTY), "due": props.get("dueAt"),
                                        "handler": op.get("id") if op is not None else None}
            for definition in node.findall("bpmn:timerEventDefinition", NS):
                for t in definition:
                    if _local(t) in _TIMER_TAGS:
                        timers[node.get("id")] = {"type": _local(t), "expression": (t.text or "").strip()}
            if op is not None and op.get("id") == "deadline.start":
                params = {p.get("id"): p.get("value") for p in op.findall("spiffworkflow:parameters/spiffworkflow:parameter", NS)}
                starts[node.get("id")] = params
    limits = {}
    for element, params in starts.items():
        name = str(_literal(params.get("name")))
        limits[name] = {"element": element, "unit": _literal(params.get("unit")) or "workdays",
                        "amount": _literal(params.get("amount")), "from": _literal(params.get("from")),
                        "remind_workdays": _literal(params.get("remind_workdays")),
                        "rule": _literal(params.get("rule")), "seed": _literal(params.get("seed")),
                        "escalation": _escalation(name, timers, flows, elements)}
    fields = {ref: _fields(schema) for ref, schema in forms.items()}
    return {"elements": elements, "flows": flows, "lanes": lanes, "timers": timers, "limits": limits,
            "forms": fields, "form_schemas": forms}


def _escalation(name, timers, flows, elements) -> list[str]:
    """What happens when the limit passes: each timer bound to deadlines[name] and where it leads."""
    out = []
    for timer_id, timer in sorted(timers.items()):
        if deadline_name(timer["expression"]) != name:
            continue
        targets = sorted(f["to"] for f in flows.values() if f["from"] == timer_id)
        names = [f"'{t}'" + (f" ({elements[t]['name']})" if elements.get(t, {}).get("name") else "") for t in targets]
        out.append(f"timer '{timer_id}'" + (f" → {', '.join(names)}" if names else ""))
    return out


def _fields(schema) -> dict | None:
    if not isinstance(schema, dict):
        return None
    required = set(schema.get("required") or [])
    out = {}
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        choices = [v for _, group in choice_options(prop) for v, _ in group]
        out[name] = {"type": prop.get("type"), "required": name in required, "title": prop.get("title"),
                     "choices": choices or None}
    return out


# --- the two sides -------------------------------------------------------------------------------

def _deployed(service, process_id, version):
    with service.sessions() as s:
        q = select(ProcessVersion).where(ProcessVersion.process_id == process_id)
        q = q.where(ProcessVersion.version == version) if version else q.order_by(ProcessVersion.version.desc())
        pv = s.execute(q.limit(1)).scalar_one_or_none()
        if pv is None:
            service._version(s, process_id, version)        # NotFound naming what is deployed
            raise NotFound(f"version {version} of process '{process_id}' is not deployed")
        side = {"version": pv.version, "path": None, "label": f"version {pv.version}"}
        return side, process_model(pv.bpmn_xml, process_id, pv.forms or {})


def _working_copy(service, process_id, path):
    source = candidate_file(service, process_id, path)
    raw = source.read_bytes()
    forms = {}
    try:
        root = etree.fromstring(raw)
    except etree.XMLSyntaxError as err:
        raise InvalidInput(f"{source} is not well-formed XML: {err.msg} (line {err.lineno})") from None
    for prop in root.iter(f"{{{NS['spiffworkflow']}}}property"):
        ref = prop.get("value")
        if prop.get("name") == FORM_PROPERTY and ref and ref not in forms:
            form = source.parent / "forms" / ref
            try:
                forms[ref] = json.loads(form.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                forms[ref] = None           # missing or not JSON: shown as such
    side = {"version": None, "path": str(source), "label": f"working copy {source}"}
    return side, process_model(raw, process_id, forms)


def _side(service, process_id, ref):
    if ref is None:
        return _working_copy(service, process_id, None)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return _deployed(service, process_id, int(ref))
    return _working_copy(service, process_id, Path(ref))


def diff_versions(service, process_id: str, left=None, right=None) -> dict:
    if left is not None and not (isinstance(left, int) or str(left).isdigit()):
        raise InvalidInput(f"V1 must be a deployed version number, not '{left}'")
    a_side, a = _deployed(service, process_id, int(left) if left is not None else None)
    b_side, b = _side(service, process_id, right)
    changes = compare(a, b)
    return {"process_id": process_id, "from": a_side, "to": b_side, "equal": not changes, "changes": changes}


# --- comparing -----------------------------------------------------------------------------------

def _q(value) -> str:
    return "—" if value is None else f"'{value}'" if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _element_label(eid, e) -> str:
    return f"{_words(e['kind'])} '{eid}'" + (f" ({e['name']})" if e.get("name") else "")


def _attr_changes(old: dict, new: dict, keys) -> list[str]:
    return [f"{label} {_q(old.get(k))} → {_q(new.get(k))}" for k, label in keys if old.get(k) != new.get(k)]


def compare(a: dict, b: dict) -> list[dict]:
    out = []

    def add(kind, change, ident, text):
        out.append({"kind": kind, "change": change, "id": ident, "text": f"{change} {text}"})

    # limits and timers first: they are what a designer most often changes
    for name in _keys(a["limits"], b["limits"]):
        old, new = a["limits"].get(name), b["limits"].get(name)
        if old is None:
            add("limit", "+", name, f"limit '{name}': {_size(new)} from {_q(new['from'])} (in '{new['element']}')")
        elif new is None:
            add("limit", "-", name, f"limit '{name}': {_size(old)} (was in '{old['element']}')")
        elif old != new:
            parts = [f"{_size(old)} → {_size(new)}"] if _size(old) != _size(new) else []
            parts += _attr_changes(old, new, (("from", "from"), ("remind_workdays", "reminder (working days)"),
                                              ("element", "declared in"), ("rule", "rule"), ("seed", "seed")))
            if old["escalation"] != new["escalation"]:
                parts.append(f"escalation {'; '.join(old['escalation']) or 'none'} → "
                             f"{'; '.join(new['escalation']) or 'none'}")
            add("limit", "~", name, f"limit '{name}': " + "; ".join(parts))
    for tid in _keys(a["timers"], b["timers"]):
        old, new = a["timers"].get(tid), b["timers"].get(tid)
        label = _element_label(tid, (b if new else a)["elements"][tid])
        if old is None:
            add("timer", "+", tid, f"timer of {label}: {new['type']} {new['expression']}")
        elif new is None:
            add("timer", "-", tid, f"timer of {label}: {old['type']} {old['expression']}")
        elif old != new:
            add("timer", "~", tid, f"timer of {label}: {old['type']} {old['expression']} → "
                                   f"{new['type']} {new['expression']}")
    for eid in _keys(a["elements"], b["elements"]):
        old, new = a["elements"].get(eid), b["elements"].get(eid)
        if old is None:
            lane = f" in lane '{new['lane']}'" if new["lane"] else ""
            add("element", "+", eid, f"{_element_label(eid, new)}{lane}")
        elif new is None:
            add("element", "-", eid, _element_label(eid, old))
        else:
            parts = _attr_changes(old, new, (("kind", "kind"), ("name", "name"), ("lane", "lane"), ("form", "form"),
                                             ("handler", "handler"), ("due", "dueAt")))
            if parts:
                add("element", "~", eid, f"{_element_label(eid, new)}: " + "; ".join(parts))
    for fid in _keys(a["flows"], b["flows"]):
        old, new = a["flows"].get(fid), b["flows"].get(fid)
        if old is None:
            cond = f" when {new['condition']}" if new["condition"] else ""
            add("flow", "+", fid, f"flow '{fid}' from '{new['from']}' to '{new['to']}'{cond}")
        elif new is None:
            add("flow", "-", fid, f"flow '{fid}' from '{old['from']}' to '{old['to']}'")
        else:
            parts = _attr_changes(old, new, (("from", "source"), ("to", "target"), ("name", "name")))
            if parts:
                add("flow", "~", fid, f"flow '{fid}': " + "; ".join(parts))
            if old["condition"] != new["condition"]:
                change = "+" if old["condition"] is None else "-" if new["condition"] is None else "~"
                add("condition", change, fid, f"condition of flow '{fid}': {old['condition'] or 'none'} → "
                                              f"{new['condition'] or 'none (always / default)'}")
    for ref in _keys(a["forms"], b["forms"]):
        _compare_form(add, ref, ref in a["forms"], ref in b["forms"], a["forms"].get(ref), b["forms"].get(ref),
                      a["form_schemas"].get(ref) != b["form_schemas"].get(ref))
    for lane in _keys(a["lanes"], b["lanes"]):
        if lane not in a["lanes"]:
            add("role", "+", lane, f"role '{lane}' (a new lane, {len(b['lanes'][lane])} element(s))")
        elif lane not in b["lanes"]:
            add("role", "-", lane, f"role '{lane}' (its lane is gone)")
    out.sort(key=lambda c: KIND_ORDER.index(c["kind"]))
    return out


def _compare_form(add, ref, in_a, in_b, old, new, schema_changed) -> None:
    if not in_a:
        add("form", "+", ref, f"form '{ref}'" + (f": {len(new)} field(s)" if new is not None else " (file missing)"))
        return
    if not in_b:
        add("form", "-", ref, f"form '{ref}'")
        return
    if new is None or old is None:
        if new is not old:
            add("form", "~", ref, f"form '{ref}': " + ("the file is missing or not JSON" if new is None
                                                       else "the file is back"))
        return
    parts = []
    for name in _keys(old, new):
        o, n = old.get(name), new.get(name)
        if o is None:
            req = "required" if n["required"] else "optional"
            parts.append(f"+ field '{name}'" + (f" ({n['title']}" if n["title"] else " (") + f", {n['type']}, {req})")
        elif n is None:
            parts.append(f"- field '{name}'")
        elif o != n:
            bits = _attr_changes(o, n, (("type", "type"), ("title", "title")))
            if o["required"] != n["required"]:
                bits.append("optional → required" if n["required"] else "required → optional")
            if o["choices"] != n["choices"]:
                added = [c for c in n["choices"] or [] if c not in (o["choices"] or [])]
                gone = [c for c in o["choices"] or [] if c not in (n["choices"] or [])]
                bits.append("choices " + " ".join([f"+{_q(c)}" for c in added] + [f"-{_q(c)}" for c in gone]))
            parts.append(f"~ field '{name}': " + ", ".join(bits))
    if not parts and schema_changed:
        parts.append("other rules or wording changed (no field added, removed or retyped)")
    if parts:
        add("form", "~", ref, f"form '{ref}': " + "; ".join(parts))


def _size(limit) -> str:
    if limit["unit"] == "at":
        return "a fixed moment"
    return f"{limit['amount']} {limit['unit']}"


def _keys(a: dict, b: dict) -> list:
    return list(a) + [k for k in b if k not in a]
