"""The checks of a BPMN file's elements (part of `validate`): lanes against roles.json, user
tasks' forms, due expressions and `assignTo`, start events' forms and initial data, service
tasks' handlers and parameters, business rule tasks' decisions, every expression and script,
legal states' names, and the names a process's data can hold. Mixed into the file checker
(definitions.py) with the graph and time-limit checks, which it runs on each process."""

from __future__ import annotations

import difflib
import json

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from . import legal_states
from .calendar import CalendarError, ReceptionHours
from .confidentiality import HIDE_PROPERTY
from .expressions import ExpressionRefused, check_expression, check_script, names_used
from .forms import fact_problems
from .org import ASSIGN_PROPERTY, AssignRule
from .path_checks import form_fields, script_names
from .process_graph import local

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
FORM_PROPERTY = "formJsonSchemaFilename"
RECEPTION_HOURS_PROPERTY = "receptionHours"    # on <bpmn:process>: this procedure's reception hours


class ElementChecks:
    """Mixed into the file checker, which provides `problem`, the file's `dir`, `forms` and
    `form_bytes` as they load, `handlers`, `dmn`, `dmn_files`, `called_decisions`, `org`,
    `assign_rules`, `misnamed_starts` and the file's `legal_vocabulary`."""

    def check_process(self, proc, roles) -> dict:
        meta = {"tasks": {}, "start_form": None, "initial_data": {}, "name": proc.get("name")}
        hours = self.properties(proc).get(RECEPTION_HOURS_PROPERTY)
        if hours is not None:
            try:
                ReceptionHours.parse(hours)
                meta["reception_hours"] = hours.strip()
            except CalendarError as err:
                self.problem(proc, f"property '{RECEPTION_HOURS_PROPERTY}': {err}")
        lanes = {}
        for lane in proc.iter(f"{{{NS['bpmn']}}}lane"):
            name = (lane.get("name") or "").strip()
            if name not in roles:
                known = ", ".join(sorted(roles)) or "(none)"
                self.problem(lane, f"lane '{name}' is not a known role; known roles: {known} (roles.json)")
            for ref in lane.findall("bpmn:flowNodeRef", NS):
                lanes[(ref.text or "").strip()] = name

        known_names = self.data_names(proc)
        hide_from = self.properties(proc).get(HIDE_PROPERTY)
        if hide_from is not None:       # confidentiality.py: the identity hidden from one person
            if hide_from.strip() not in known_names:
                self.problem(proc, f"property '{HIDE_PROPERTY}' names '{hide_from.strip()}', which no form field, "
                                   "handler result or initial data of this process provides; it must be the "
                                   "case-data field holding the person id (organisation file) of the person "
                                   "complained about")
            else:
                meta["hide_identity_from"] = hide_from.strip()
        self.deadline_starts: set[str] = set()
        self.state_setters: list[tuple] = []     # (node, the `state` expression) of case.set_state
        self.deadline_reminders: set[str] = set()
        self.deadline_timers: list[tuple] = []
        for node in proc.iter():
            tag = local(node.tag)
            if tag == "userTask":
                meta["tasks"][node.get("id")] = self.check_user_task(node, lanes, known_names)
            elif tag == "startEvent" and local(node.getparent().tag) == "process":
                self.check_start_event(node, meta)
                meta["start_role"] = lanes.get(node.get("id"))   # who registers new cases
            elif tag == "serviceTask":
                self.check_service_task(node, known_names)
            elif tag == "scriptTask":
                script = node.find("bpmn:script", NS)
                self.check_code(node, script.text if script is not None else "", script=True, what="script")
            elif tag == "conditionExpression":
                owner = node.getparent()
                self.check_code(owner, node.text, names=known_names, what="condition")
            elif tag in ("timeDate", "timeDuration", "timeCycle"):
                self.check_timer(node, tag, known_names)
            elif tag in ("preScript", "postScript"):
                self.check_code(node.getparent().getparent(), node.text, script=True, what=tag)
            elif tag == "businessRuleTask":
                self.check_business_rule(node)
        self.check_graph(proc)
        self.check_deadline_timers()
        meta["legal_states"] = self.check_legal_states()
        return meta

    def check_legal_states(self) -> dict:
        """Every legal state a process sets has a name for people (legal_states.json)."""
        if self.legal_vocabulary is None:
            return {}
        literals, prefixes, opaque = set(), set(), False
        for node, expression in self.state_setters:
            found, starts, unknown = legal_states.possible_states(expression)
            opaque = opaque or unknown
            literals |= found
            prefixes |= starts
            for state in sorted(found - set(self.legal_vocabulary)):
                self.problem(node, f"legal state '{state}' has no name for staff: add it to "
                                   f"{legal_states.FILE_NAME} beside the BPMN, e.g. "
                                   f"\"{state}\": {{\"zh\": \"…\", \"en\": \"…\"}}")
        if opaque:      # a state read from data (a DMN result): any named state may come
            return dict(sorted(self.legal_vocabulary.items()))
        return legal_states.names_for(self.legal_vocabulary, literals, prefixes)

    def data_names(self, proc) -> set[str]:
        """Names the process's data can hold: form fields, handler results, DMN outputs,
        script assignments, initial data, message payload variables."""
        names, fields = set(), set()
        for prop in proc.iter(f"{{{NS['spiffworkflow']}}}property"):
            if prop.get("name") == FORM_PROPERTY:
                schema = self.load_form(prop.getparent().getparent().getparent(), prop.get("value"), report=False)
                if schema:
                    fields |= set(_schema_fields(schema))
            if prop.get("name") == "initialData":
                try:
                    names |= set(json.loads(prop.get("value") or "{}"))
                except ValueError:
                    pass
        for op in proc.iter(f"{{{NS['spiffworkflow']}}}serviceTaskOperator"):
            names.add(op.get("resultVariable") or "")
            if (op.get("id") or "").startswith("deadline."):
                names.add("deadlines")
            if op.get("id") == "case.split":
                names.add("split_from")     # set on each case a split starts
        for node in proc.iter():
            tag = local(node.tag)
            if tag in ("script", "preScript", "postScript") and node.text:
                names |= script_names(node.text)
            if tag in ("messageVariable",) and node.text:
                names.add(node.text.strip())
            if tag == "dataObject":
                names.add(node.get("id"))
        names |= self.dmn.output_names(self.dmn_files)
        self.form_field_names, self.other_names = fields, names - {""}
        return names | fields

    def node_form(self, node) -> dict | None:
        """The form of a user task or start event, when it loads."""
        if local(node.tag) not in ("userTask", "startEvent"):
            return None
        return self.load_form(node, self.properties(node).get(FORM_PROPERTY), report=False)

    def check_code(self, node, text, *, script=False, names=None, what="expression"):
        try:
            if script:
                check_script(text or "")
                return
            check_expression(text)
        except ExpressionRefused as err:
            self.problem(node, f"{what} refused: {err}")
            return
        if names is not None:
            unknown = sorted(n for n in names_used(text) if n not in names)
            if unknown:
                self.problem(node, f"{what} '{text.strip()}' uses {', '.join(repr(n) for n in unknown)}, which no form "
                                   "field, handler result, DMN output or initial data of this process provides")

    def load_form(self, node, ref, report=True):
        if not ref:
            return None
        if ref in self.forms:
            return self.forms[ref]
        path = (self.dir / "forms" / ref)
        if not path.is_file():
            if report:
                self.problem(node, f"form file '{ref}' not found (looked in {self.dir / 'forms'})")
            return None
        raw = path.read_bytes()
        try:
            schema = json.loads(raw)
            Draft202012Validator.check_schema(schema)
        except ValueError as err:
            if report:
                self.problem(node, f"form '{ref}' is not valid JSON: {err}")
            return None
        except SchemaError as err:
            if report:
                self.problem(node, f"form '{ref}' is not a valid JSON Schema: {err.message}")
            return None
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
            if report:
                self.problem(node, f"form '{ref}' must be a JSON Schema of \"type\": \"object\" with \"properties\"")
            return None
        for message in fact_problems(schema):      # declared facts for statistics (forms.py)
            self.problem(node, f"form '{ref}': {message}")
        self.forms[ref] = schema
        self.form_bytes[ref] = raw
        return schema

    def properties(self, node) -> dict:
        out = {}
        for prop in node.findall("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS):
            out[prop.get("name")] = prop.get("value")
        return out

    def check_user_task(self, node, lanes, known_names) -> dict:
        props = self.properties(node)
        form = props.get(FORM_PROPERTY)
        if not form:
            self.problem(node, f"user task has no form; add the spiffworkflow property "
                               f"'{FORM_PROPERTY}' naming a JSON Schema file under forms/")
        else:
            self.load_form(node, form)
        role = lanes.get(node.get("id"))
        if role is None:
            self.problem(node, "user task is in no lane, so no role can do it; put it in the lane of the role "
                               "that does it")
        due = props.get("dueAt")
        if due:
            self.check_code(node, due, names=known_names, what="dueAt expression")
        doc = node.find("bpmn:documentation", NS)
        out = {"name": node.get("name") or node.get("id"), "role": role, "form": form, "due": due,
               "documentation": (doc.text or "").strip() if doc is not None else None}
        assign = props.get(ASSIGN_PROPERTY)
        if assign is not None and self.check_assign(node, assign):
            out["assign_to"] = assign.strip()
        return out

    def check_assign(self, node, text) -> bool:
        """`assignTo` (engine/org.py): its form, and a unit named in it is one of the
        organisation file's (when that file is there); the field it reads is checked to come
        from a form before the task with the graph (path_checks._assign_fields)."""
        try:
            rule = AssignRule.parse(text)
        except ValueError as err:
            self.problem(node, f"property '{ASSIGN_PROPERTY}': {err}")
            return False
        self.assign_rules[node.get("id")] = rule
        if rule.unit and self.org is not None and rule.unit not in self.org.units:
            close = difflib.get_close_matches(rule.unit, list(self.org.units), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.problem(node, f"property '{ASSIGN_PROPERTY}': unit '{rule.unit}' is not a unit of the organisation "
                               f"file {self.org.source}{hint}; units: {', '.join(sorted(self.org.units))}")
        return True

    def check_start_event(self, node, meta):
        props = self.properties(node)
        if props.get(FORM_PROPERTY):
            if self.load_form(node, props[FORM_PROPERTY]) is not None:
                meta["start_form"] = props[FORM_PROPERTY]
        if props.get("initialData"):
            try:
                value = json.loads(props["initialData"])
                if not isinstance(value, dict):
                    raise ValueError("not an object")
                meta["initial_data"] = value
            except ValueError:
                self.problem(node, "property 'initialData' must be a JSON object, e.g. {\"rehandle_count\": 0}")

    def check_service_task(self, node, known_names):
        op = node.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
        if op is None:
            self.problem(node, "service task names no handler (spiffworkflow:serviceTaskOperator id=...)")
            return None
        name = op.get("id")
        unknown_at = None
        if name not in self.handlers:
            close = difflib.get_close_matches(name or "", self.handlers.names(), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            unknown_at = self.problem(node, f"service task uses unknown handler '{name}'{hint}; known handlers: "
                                            + ", ".join(self.handlers.names()))
        params = {}
        for param in op.iter(f"{{{NS['spiffworkflow']}}}parameter"):
            self.check_code(node, param.get("value"), names=known_names,
                            what=f"parameter '{param.get('id')}'")
            params[param.get("id")] = param.get("value")
        info = self.handlers.get(name)
        if info is not None and info.params:
            unknown = sorted(set(params) - set(info.params))
            if unknown:
                self.problem(node, f"handler '{name}' takes no parameter {', '.join(repr(u) for u in unknown)}; "
                                   f"its parameters: {', '.join(info.params)}")
        if name and name.startswith("deadline."):
            self.check_deadline_task(node, name, params)
        if name == "case.set_state":
            self.state_setters.append((node, params.get("state")))
        if unknown_at is not None and "name" in params:
            # a misspelt deadline.start: the timers waiting for its limit follow from this one problem
            self.misnamed_starts[(params["name"] or "").strip().strip("'\"")] = unknown_at
        return name

    def check_business_rule(self, node):
        ref = None
        for child in node.iter():
            if local(child.tag) == "calledDecisionId":
                ref = (child.text or "").strip()
        if not ref:
            return
        self.called_decisions.add(ref)
        if ref not in self.dmn.decision_ids(self.dmn_files):
            self.problem(node, f"business rule task refers to decision '{ref}', which no DMN file defines")


def _schema_fields(schema) -> list[str]:
    return [name for name, _ in form_fields(schema)]
