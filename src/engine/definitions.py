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

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException

from ..handlers import HandlerRegistry
from .dmn_checks import DmnFiles
from .forms import fact_problems
from .limit_checks import TimeLimitChecks
from .problems import Problem
from .expressions import (ExpressionRefused, check_expression,
                          check_script, names_used)
from .spec import ComplaintBpmnParser, Serializer

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
FORM_PROPERTY = "formJsonSchemaFilename"
FLOW_NODE_TAGS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "manualTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess", "transaction", "exclusiveGateway",
    "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
}


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
    def ok(self):
        return not self.problems


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


class _FileChecker(TimeLimitChecks):
    """Checks one BPMN file and builds its packages."""

    def __init__(self, path: Path, dmn_files: list[Path], dmn: DmnFiles, handlers: HandlerRegistry):
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

    def problem(self, node, message):
        elem = node.get("id") if node is not None else None
        line = node.sourceline if node is not None else None
        self.problems.append(Problem(self.file, elem, message, line))

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
        processes = root.findall("bpmn:process", NS)
        if not processes:
            self.problems.append(Problem(self.file, None, "contains no bpmn:process"))
        executable = [p for p in processes if p.get("isExecutable") == "true"]
        if processes and not executable:
            self.problems.append(Problem(self.file, None, "no process is marked isExecutable=\"true\""))

        metas = {}
        for proc in processes:
            metas[proc.get("id")] = self.check_process(proc, roles)

        specs = self.parse_with_spiff(raw, [p.get("id") for p in executable])
        if self.problems:
            return []
        packages = []
        for proc in executable:
            pid = proc.get("id")
            digest = hashlib.sha256(raw)
            for name in sorted(self.form_bytes):
                digest.update(name.encode() + b"\0" + self.form_bytes[name])
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
            self.problems.append(Problem(err.file_name or self.file, err.id or None,
                                         _first_line(err), int(err.line_number) if str(err.line_number).isdigit() else None))
        except (SpiffWorkflowException, etree.LxmlError, KeyError, ValueError) as err:
            self.problems.append(Problem(self.file, None, f"could not be parsed: {_first_line(err)}"))
        return out

    # --- our checks ------------------------------------------------------------
    def check_process(self, proc, roles) -> dict:
        meta = {"tasks": {}, "start_form": None, "initial_data": {}, "name": proc.get("name")}
        lanes = {}
        for lane in proc.iter(f"{{{NS['bpmn']}}}lane"):
            name = (lane.get("name") or "").strip()
            if name not in roles:
                known = ", ".join(sorted(roles)) or "(none)"
                self.problem(lane, f"lane '{name}' is not a known role; known roles: {known} (roles.json)")
            for ref in lane.findall("bpmn:flowNodeRef", NS):
                lanes[(ref.text or "").strip()] = name

        known_names = self.data_names(proc)
        self.deadline_starts: set[str] = set()
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
        self.check_reachability(proc)
        self.check_deadline_timers()
        return meta

    def data_names(self, proc) -> set[str]:
        """Names the process's data can hold: form fields, handler results, DMN outputs,
        script assignments, initial data, message payload variables."""
        names = set()
        for prop in proc.iter(f"{{{NS['spiffworkflow']}}}property"):
            if prop.get("name") == FORM_PROPERTY:
                schema = self.load_form(prop.getparent().getparent().getparent(), prop.get("value"), report=False)
                if schema:
                    names |= set(_schema_fields(schema))
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
                names |= set(re.findall(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*[+\-*/]?=", node.text, re.M))
            if tag in ("messageVariable",) and node.text:
                names.add(node.text.strip())
            if tag == "dataObject":
                names.add(node.get("id"))
        names |= self.dmn.output_names(self.dmn_files)
        return names

    def check_code(self, node, text, *, script=False, names=None, what="expression"):
        try:
            if script:
                check_script(text or "")
                return
            check_expression(text)
        except ExpressionRefused as err:
            self.problem(node, f"{_of(what, node)} refused: {err}")
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
        label = node.get("name") or node.get("id")
        if not form:
            self.problem(node, f"user task '{label}' has no form; add the spiffworkflow property "
                               f"'{FORM_PROPERTY}' naming a JSON Schema file under forms/")
        else:
            self.load_form(node, form)
        role = lanes.get(node.get("id"))
        if role is None:
            self.problem(node, f"user task '{label}' is not in any lane, so no role can do it")
        due = props.get("dueAt")
        if due:
            self.check_code(node, due, names=known_names, what="dueAt expression")
        doc = node.find("bpmn:documentation", NS)
        return {"name": node.get("name") or node.get("id"), "role": role, "form": form, "due": due,
                "documentation": (doc.text or "").strip() if doc is not None else None}

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
        label = node.get("name") or node.get("id")
        if op is None:
            self.problem(node, f"service task '{label}' names no handler (spiffworkflow:serviceTaskOperator id=...)")
            return None
        name = op.get("id")
        if name not in self.handlers:
            self.problem(node, f"service task '{label}' uses unknown handler '{name}'; known handlers: "
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

    def check_reachability(self, container):
        nodes = {n.get("id"): n for n in container if _local(n.tag) in FLOW_NODE_TAGS}
        edges: dict[str, list[str]] = {}
        for flow in container.findall("bpmn:sequenceFlow", NS):
            edges.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
        attached: dict[str, list[str]] = {}
        for nid, n in nodes.items():
            if _local(n.tag) == "boundaryEvent":
                attached.setdefault(n.get("attachedToRef"), []).append(nid)
        starts = [nid for nid, n in nodes.items() if _local(n.tag) == "startEvent"]
        starts += [nid for nid, n in nodes.items()
                   if _local(n.tag) == "subProcess" and n.get("triggeredByEvent") == "true"]
        seen, todo = set(), list(starts)
        while todo:
            nid = todo.pop()
            if nid in seen:
                continue
            seen.add(nid)
            todo += edges.get(nid, []) + attached.get(nid, [])
        for nid, n in nodes.items():
            if nid not in seen:
                label = n.get("name") or nid
                self.problem(n, f"'{label}' can never be reached from a start event")
            elif _local(n.tag) in ("subProcess", "transaction"):
                self.check_reachability(n)


def _schema_fields(schema) -> list[str]:
    fields = list((schema.get("properties") or {}).keys())
    for sub in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        if isinstance(sub, dict):
            fields += _schema_fields(sub)
    return fields


def _of(what: str, node) -> str:
    """'condition', or "condition of 'Major?'" when the element has a name."""
    label = (node.get("name") or "").strip() if node is not None else ""
    return f"{what} of '{label}'" if label else what


def _first_line(err) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else err.__class__.__name__


def check_paths(paths, handlers: HandlerRegistry) -> CheckResult:
    """Validate BPMN/DMN files (and the forms and roles they use); build packages if all is well."""
    result = CheckResult()
    bpmn_files, dmn_files, problems = collect_files(paths)
    result.problems += problems
    if not bpmn_files and not dmn_files and not problems:
        result.problems.append(Problem(", ".join(map(str, paths)), None, "contains no .bpmn files"))
    dmn = DmnFiles(dmn_files)          # each DMN file parsed and checked once
    result.problems += dmn.problems
    seen_ids: dict[str, str] = {}
    for path in bpmn_files:
        checker = _FileChecker(path, [d for d in dmn_files if d.parent == path.parent], dmn, handlers)
        packages = checker.run()
        result.files.append(str(path))
        result.problems += checker.problems
        for pkg in packages:
            if pkg.process_id in seen_ids:
                result.problems.append(Problem(str(path), pkg.process_id,
                                               f"process id '{pkg.process_id}' is also defined in {seen_ids[pkg.process_id]}"))
            seen_ids[pkg.process_id] = str(path)
        result.packages += packages
    if result.problems:
        result.packages = []
    return result
