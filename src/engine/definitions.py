"""Process definitions: read BPMN, DMN and form files, check them, and package a version.

Everything a process designer can get wrong is reported as a `Problem` (file, element id,
a sentence) and *all* problems are collected before anything is deployed.

Conventions (docs/process-design.md):

* roles: `roles.json` beside the BPMN file; every lane name must be a role id in it;
* forms: JSON Schema files under `forms/` beside the BPMN file, named by the spiff
  property `formJsonSchemaFilename` on user tasks (required) and start events (optional);
* handlers: `spiffworkflow:serviceTaskOperator id="..."` names a registered handler;
* `initialData` (start event property): a JSON object merged into the data of new cases;
* `dueAt` (user task property): an expression giving the task's due moment (ISO 8601).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException

from ..handlers import HandlerRegistry
from . import legal_states
from .calendar import CalendarError, ReceptionHours
from .confidentiality import HIDE_PROPERTY, reveal_problems
from .dmn_checks import DmnFiles
from .forms import fact_problems
from .graph_checks import GraphChecks
from .limit_checks import TimeLimitChecks
from .org import ASSIGN_PROPERTY, AssignRule
from .path_checks import form_fields, script_names
from .problems import Problem, ordered
from .expressions import (ExpressionRefused, check_expression,
                          check_script, names_used)
from .spec import ComplaintBpmnParser, Serializer

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
FORM_PROPERTY = "formJsonSchemaFilename"
RECEPTION_HOURS_PROPERTY = "receptionHours"    # on <bpmn:process>: this procedure's reception hours


@dataclass
class ProcessPackage:
    """One deployable process version, ready to store."""

    process_id: str
    name: str
    source_path: str
    bpmn_xml: str
    forms: dict
    specs: dict
    meta: dict
    content_hash: str


@dataclass
class CheckResult:
    problems: list[Problem] = field(default_factory=list)
    packages: list[ProcessPackage] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.is_warning]

    @property
    def ok(self):
        """Nothing stops a deploy (warnings do not)."""
        return not self.errors


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def load_roles(directory: Path) -> dict | None:
    path = directory / "roles.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def collect_files(paths) -> tuple[list[Path], list[Path], list[Problem]]:
    """Expand files and directories into BPMN and DMN file lists."""
    bpmn, dmn, problems = [], [], []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            bpmn += sorted(p.glob("*.bpmn"))
            dmn += sorted(p.glob("*.dmn"))
        elif p.is_file() and p.suffix == ".bpmn":
            bpmn.append(p)
            dmn += sorted(x for x in p.parent.glob("*.dmn") if x not in dmn)
        elif p.is_file() and p.suffix == ".dmn":
            dmn.append(p)
        elif p.is_file() and p.suffix == ".json":
            continue  # forms and roles are checked through the BPMN files that use them
        else:
            problems.append(Problem(str(raw), None, "no such BPMN or DMN file or directory"))
    return bpmn, sorted(set(dmn)), problems


class _FileChecker(TimeLimitChecks, GraphChecks):
    """Checks one BPMN file and builds its packages."""

    def __init__(self, path: Path, dmn_files: list[Path], dmn: DmnFiles, handlers: HandlerRegistry, org=None):
        self.path = path
        self.file = str(path)
        self.dir = path.parent
        self.dmn_files = dmn_files
        self.dmn = dmn
        self.handlers = handlers
        self.problems: list[Problem] = []
        self.forms: dict[str, dict] = {}
        self.form_bytes: dict[str, bytes] = {}
        self.called_decisions: set[str] = set()
        self.misnamed_starts: dict[str, int] = {}   # limit name -> problem of its task's unknown handler
        self.org = org                              # the organisation file, when there is one (org.py)
        self.assign_rules: dict[str, AssignRule] = {}   # user task id -> its `assignTo`

    def problem(self, node, message, *, severity="error", structural=False, follow_on=()) -> int:
        """Record a problem at an element (its id, name and line); returns its index."""
        elem = node.get("id") if node is not None else None
        line = node.sourceline if node is not None else None
        name = (node.get("name") or "").strip() or None if node is not None else None
        self.problems.append(Problem(self.file, elem, message, line, name=name, severity=severity,
                                     follow_on=tuple(follow_on), structural=structural))
        return len(self.problems) - 1

    def fold_into(self, index, node, clause):
        """Add what follows from the problem at `index` to its sentence instead of a line of its own."""
        cause = self.problems[index]
        self.problems[index] = replace(cause, message=f"{cause.message} ({clause})",
                                       follow_on=cause.follow_on + (node.get("id"),))

    # --- entry point ---------------------------------------------------------
    def run(self) -> list[ProcessPackage]:
        raw = self.path.read_bytes()
        try:
            root = etree.fromstring(raw)
        except etree.XMLSyntaxError as err:
            self.problems.append(Problem(self.file, None, f"is not well-formed XML: {err.msg}", err.lineno))
            return []
        roles = load_roles(self.dir)
        if roles is None:
            self.problems.append(Problem(self.file, None, f"there is no roles.json in {self.dir}; lanes need known roles"))
            roles = {}
        self.legal_vocabulary, vocabulary_problems = legal_states.load(self.dir)
        self.problems.extend(Problem(self.file, None, text) for text in vocabulary_problems)
        processes = root.findall("bpmn:process", NS)
        if not processes:
            self.problems.append(Problem(self.file, None, "contains no bpmn:process"))
        executable = [p for p in processes if p.get("isExecutable") == "true"]
        if processes and not executable:
            self.problems.append(Problem(self.file, None, "no process is marked isExecutable=\"true\""))

        self.root = root
        metas = {}
        for proc in processes:
            metas[proc.get("id")] = self.check_process(proc, roles)
        # revealFields (docs/process-design.md "Confidential fields"), once every form is loaded
        for elem_id, message in reveal_problems(raw.decode("utf-8"), self.forms):
            self.problem(next(iter(root.iterfind(f".//*[@id='{elem_id}']")), None), message)

        if any(p.structural for p in self.problems):
            return []       # the causes are known; SpiffWorkflow would only report their effects
        specs = self.parse_with_spiff(raw, [p.get("id") for p in executable])
        if any(not p.is_warning for p in self.problems):
            return []
        packages = []
        for proc in executable:
            pid = proc.get("id")
            digest = hashlib.sha256(raw)
            for name in sorted(self.form_bytes):
                digest.update(name.encode() + b"\0" + self.form_bytes[name])
            if metas[pid].get("legal_states"):     # the names staff read are part of the version
                digest.update(b"legal_states\0" + json.dumps(metas[pid]["legal_states"], ensure_ascii=False,
                                                              sort_keys=True).encode("utf-8"))
            # only the DMN files this process calls: editing another process's table must
            # not make a new version of this one
            for dmn in self.dmn_files:
                if self.dmn.decision_ids([dmn]) & self.called_decisions:
                    digest.update(dmn.name.encode() + b"\0" + dmn.read_bytes())
            packages.append(ProcessPackage(
                process_id=pid,
                name=proc.get("name") or pid,
                source_path=self.file,
                bpmn_xml=raw.decode("utf-8"),
                forms=dict(self.forms),
                specs=specs[pid],
                meta=metas[pid],
                content_hash=digest.hexdigest(),
            ))
        return packages

    # --- spiff parse ---------------------------------------------------------
    def parse_with_spiff(self, raw: bytes, process_ids: list[str]) -> dict:
        parser = ComplaintBpmnParser()
        out = {}
        try:
            for dmn in self.dmn_files:
                parser.add_dmn_file(str(dmn))
            parser.add_bpmn_str(raw, filename=self.file)
            serializer = Serializer()
            for pid in process_ids:
                spec = parser.get_spec(pid)
                subs = parser.get_subprocess_specs(pid)
                out[pid] = serializer.specs_to_dict(spec, subs)
        except ValidationException as err:
            self.spiff_problem(err, str(err.line_number))
        except (SpiffWorkflowException, etree.LxmlError, KeyError, ValueError) as err:
            self.spiff_problem(err, "")
        return out

    def spiff_problem(self, err, line: str):
        """SpiffWorkflow's refusal, said as ours: at the element (by id, else by line), with
        the XML namespaces shortened and what it means for the designer."""
        text = _first_line(err).replace(f"{{{NS['bpmn']}}}", "bpmn:").rstrip(".")
        node = None
        if getattr(err, "id", None):
            node = next((n for n in self.root.iter() if n.get("id") == err.id), None)
        if node is None and line.isdigit():
            node = next((n for n in self.root.iter() if n.sourceline == int(line) and n.get("id")), None)
        if text.startswith("Element '"):
            message = f"does not follow the BPMN 2.0 schema: {text}"
        else:
            message = f"SpiffWorkflow, the engine that runs the process, cannot build it: {text}"
        if node is not None:
            self.problem(node, message)
        else:
            self.problems.append(Problem(self.file, None, message, int(line) if line.isdigit() else None))

    # --- our checks ------------------------------------------------------------
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
            tag = _local(node.tag)
            if tag == "userTask":
                meta["tasks"][node.get("id")] = self.check_user_task(node, lanes, known_names)
            elif tag == "startEvent" and _local(node.getparent().tag) == "process":
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
            tag = _local(node.tag)
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
        if _local(node.tag) not in ("userTask", "startEvent"):
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
            if _local(child.tag) == "calledDecisionId":
                ref = (child.text or "").strip()
        if not ref:
            return
        self.called_decisions.add(ref)
        if ref not in self.dmn.decision_ids(self.dmn_files):
            self.problem(node, f"business rule task refers to decision '{ref}', which no DMN file defines")


def _schema_fields(schema) -> list[str]:
    return [name for name, _ in form_fields(schema)]


def _first_line(err) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else err.__class__.__name__


def check_paths(paths, handlers: HandlerRegistry, org=None) -> CheckResult:
    """Validate BPMN/DMN files (and the forms and roles they use); build packages if all is well.
    `org`: the organisation file (engine/org.py) the units named in `assignTo` are checked against."""
    result = CheckResult()
    bpmn_files, dmn_files, problems = collect_files(paths)
    result.problems += problems
    if not bpmn_files and not dmn_files and not problems:
        result.problems.append(Problem(", ".join(map(str, paths)), None, "contains no .bpmn files"))
    dmn = DmnFiles(dmn_files)          # each DMN file parsed and checked once
    result.problems += dmn.problems
    seen_ids: dict[str, str] = {}
    for path in bpmn_files:
        checker = _FileChecker(path, [d for d in dmn_files if d.parent == path.parent], dmn, handlers, org)
        packages = checker.run()
        result.files.append(str(path))
        result.problems += checker.problems
        for pkg in packages:
            if pkg.process_id in seen_ids:
                result.problems.append(Problem(str(path), pkg.process_id,
                                               f"process id '{pkg.process_id}' is also defined in {seen_ids[pkg.process_id]}"))
            seen_ids[pkg.process_id] = str(path)
        result.packages += packages
    result.problems = ordered(result.problems)
    if not result.ok:
        result.packages = []
    return result
