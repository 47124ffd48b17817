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
from dataclasses import dataclass, field, replace
from pathlib import Path

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException

from ..handlers import HandlerRegistry
from . import legal_states
from .confidentiality import reveal_problems
from .dmn_checks import DmnFiles
from .element_checks import NS, ElementChecks
from .graph_checks import GraphChecks
from .limit_checks import TimeLimitChecks
from .org import AssignRule
from .problems import Problem, ordered
from .spec import ComplaintBpmnParser, Serializer


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


class _FileChecker(TimeLimitChecks, GraphChecks, ElementChecks):
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
