"""Scenario files (`processes/tests/<process_id>/*.yaml`) as scenarios: the YAML read with
the line of every mapping and key, each name checked against the processes and roles, and
every mistake reported at its line (`ScenarioFileError`). Format in docs/process-design.md,
"Process tests"; engine/scenarios.py runs what this reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from .clock import local_minute, parse_instant
from .coverage import ProcessModel
from .errors import InvalidInput

STEP_KINDS = ("complete", "claim", "tick", "message")
STEP_KEYS = {"complete": {"user", "role", "at", "data", "expect"}, "claim": {"user", "role", "at", "expect"},
             "tick": {"expect"}, "message": {"user", "at", "data", "expect"}}
EXPECT_KEYS = ("tasks", "deadlines", "status", "legal_state", "case_number", "closed", "notices", "data",
               "timers_fired", "refused")
DEADLINE_KEYS = ("last_day", "due", "status", "provisional", "breached_at", "extended_by", "round")
NOTICE_KEYS = ("kind", "to", "contains")
MOMENT_KEYS = {"due", "breached_at", "closed"}
DEFAULT_USER = "tester"


# --- the file: YAML with line numbers ---------------------------------------------------------

class ScenarioFileError(Exception):
    """A mistake in a scenario file itself, with its place."""

    def __init__(self, file, line, message):
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")
        self.file, self.line, self.message = str(file), line, message


class _Map(dict):
    """A YAML mapping that remembers its line and each key's line."""

    line = 0
    key_lines: dict


class _Loader(yaml.SafeLoader):
    """YAML as designers expect it: `yes`/`no`/`on`/`off` and dates stay text (a form's
    choice 'yes', a date-time field); only true/false are booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _construct_map(loader, node):
    loader.flatten_mapping(node)          # YAML merge keys (<<: *base) work
    out = _Map()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise ScenarioFileError(loader.name, key_node.start_mark.line + 1, "a key must be a plain word")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def _plain(value):
    """A value as plain JSON (dicts, lists, text, numbers) for the service."""
    return json.loads(json.dumps(value, ensure_ascii=False))


# --- what a scenario is ---------------------------------------------------------------------

@dataclass
class Step:
    index: int                   # 0 for the intake, then 1, 2, ...
    kind: str                    # start, complete, claim, tick, message
    target: str | None           # the task id (resolved from an id or a name), or the message name
    at: datetime
    line: int
    user: str = DEFAULT_USER
    role: str | None = None
    data: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)
    expect_lines: dict = field(default_factory=dict)      # expectation key -> its line

    @property
    def label(self) -> str:
        when = local_minute(self.at)
        if self.kind == "start":
            return f"intake ({when})"
        if self.kind == "tick":
            return f"step {self.index} (tick {when})"
        return f"step {self.index} ({self.kind} '{self.target}' at {when})"


@dataclass
class Scenario:
    file: str
    line: int
    name: str
    process_id: str
    steps: list[Step]            # the intake first


class _Reader:
    """Turns one YAML document into a Scenario, checking every name against the processes."""

    def __init__(self, file: str, models: dict[str, ProcessModel], roles: set[str]):
        self.file, self.models, self.roles = file, models, roles
        self.model: ProcessModel | None = None

    def fail(self, line, message):
        raise ScenarioFileError(self.file, line, message)

    def mapping(self, value, line, what) -> _Map:
        if not isinstance(value, _Map):
            self.fail(line, f"{what} must be a mapping (key: value lines)")
        return value

    def keys(self, m: _Map, allowed, what):
        for key in m:
            if key not in allowed:
                self.fail(m.key_lines[key], f"unknown key '{key}' in {what}; it may have: {', '.join(allowed)}")

    def text(self, m: _Map, key, what, required=True) -> str | None:
        value = m.get(key)
        if value is None:
            if required:
                self.fail(m.line, f"{what} needs '{key}'")
            return None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            self.fail(m.key_lines[key], f"'{key}' in {what} must be a single value")
        return str(value)

    def moment(self, value, line, what) -> datetime:
        try:
            return parse_instant(str(value))
        except ValueError:
            self.fail(line, f"{what}: '{value}' is not a moment; write it like 2026-05-06T09:30 (Beijing time)")

    def task(self, ref, line) -> str:
        """A user task of the process, given by id or by name."""
        tasks = self.model.user_tasks
        ref = str(ref)
        if ref in tasks:
            return ref
        by_name = [tid for tid, name in tasks.items() if name == ref]
        if len(by_name) == 1:
            return by_name[0]
        if by_name:
            self.fail(line, f"several tasks are named '{ref}' ({', '.join(by_name)}); give the task id")
        known = ", ".join(f"{tid} ({name})" for tid, name in tasks.items())
        self.fail(line, f"process '{self.model.process_id}' has no user task '{ref}'; its user tasks: {known}")

    def role(self, value, line) -> str:
        if self.roles and str(value) not in self.roles:
            self.fail(line, f"'{value}' is not a role in roles.json; roles: {', '.join(sorted(self.roles))}")
        return str(value)

    def scenario(self, doc, default_name) -> Scenario:
        doc = self.mapping(doc, 1, "a scenario")
        self.keys(doc, ("process", "name", "intake", "steps"), "a scenario")
        process_id = self.text(doc, "process", "a scenario")
        self.model = self.models.get(process_id)
        if self.model is None:
            self.fail(doc.key_lines["process"], f"there is no process '{process_id}' in the processes directory; "
                                                f"processes: {', '.join(sorted(self.models))}")
        name = self.text(doc, "name", "a scenario", required=False) or default_name
        if "intake" not in doc:
            self.fail(doc.line, "a scenario needs 'intake' (at, user, data)")
        intake = self.mapping(doc["intake"], doc.key_lines["intake"], "'intake'")
        self.keys(intake, ("at", "user", "data", "expect"), "'intake'")
        at = self.moment(self.text(intake, "at", "'intake'"), intake.key_lines["at"], "'at'")
        steps = [self.step_fields(Step(0, "start", None, at, intake.line), intake, "'intake'")]
        raw_steps = doc.get("steps") or []
        if not isinstance(raw_steps, list):
            self.fail(doc.key_lines["steps"], "'steps' must be a list (each step a line starting with '- ')")
        for n, raw in enumerate(raw_steps, start=1):
            steps.append(self.step(n, raw, steps[-1].at, doc.key_lines["steps"]))
        return Scenario(self.file, doc.line, name, process_id, steps)

    def step(self, n, raw, previous_at, list_line) -> Step:
        m = self.mapping(raw, list_line, f"step {n}")
        kinds = [k for k in STEP_KINDS if k in m]
        if len(kinds) != 1:
            what = "no step kind" if not kinds else f"several step kinds ({', '.join(kinds)})"
            unknown = [k for k in m if k not in {"user", "role", "at", "data", "expect"}]
            hint = f"; unknown key '{unknown[0]}'" if unknown and not kinds else ""
            self.fail(m.line, f"step {n} has {what}{hint}; a step is one of: {', '.join(STEP_KINDS)}")
        kind = kinds[0]
        self.keys(m, (kind, *sorted(STEP_KEYS[kind])), f"a '{kind}' step")
        what = f"step {n} ({kind})"
        line = m.key_lines[kind]
        if kind == "tick":
            at = self.moment(m[kind], line, what)
            target = None
        else:
            at = self.moment(m["at"], m.key_lines["at"], what) if "at" in m else previous_at
            value = self.text(m, kind, what)
            target = self.task(value, line) if kind in ("complete", "claim") else value
        if at < previous_at:              # a tick back in time would fire nothing and pass unnoticed
            self.fail(line if kind == "tick" else m.key_lines["at"],
                      f"{what}: {local_minute(at)} is before the step before it ({local_minute(previous_at)}); "
                      "time only moves forward")
        return self.step_fields(Step(n, kind, target, at, m.line), m, what)

    def step_fields(self, step: Step, m: _Map, what) -> Step:
        if "user" in m:
            step.user = self.text(m, "user", what)
        if "role" in m:
            step.role = self.role(m["role"], m.key_lines["role"])
        if "data" in m:
            step.data = _plain(self.mapping(m["data"], m.key_lines["data"], f"'data' of {what}"))
        if "expect" in m:
            step.expect = self.expect(m["expect"], m.key_lines["expect"], step)
            step.expect_lines = dict(m["expect"].key_lines)
            others = [k for k in step.expect if k != "refused"]
            if step.kind == "start" and "refused" in step.expect and others:
                self.fail(step.expect_lines[others[0]], f"a refused intake registers no case: '{others[0]}' "
                                                        "cannot be expected beside 'refused'")
        return step

    # --- expectations -----------------------------------------------------------------------
    def expect(self, raw, line, step: Step) -> dict:
        m = self.mapping(raw, line, "'expect'")
        self.keys(m, EXPECT_KEYS, "'expect'")
        out = {}
        for key, value in m.items():
            at = m.key_lines[key]
            if key == "tasks":
                out[key] = self.expect_tasks(value, at)
            elif key == "deadlines":
                out[key] = self.expect_deadlines(value, at)
            elif key == "notices":
                out[key] = self.expect_notices(value, at)
            elif key == "data":
                out[key] = _plain(self.mapping(value, at, "'data' in 'expect'"))
            elif key == "timers_fired":
                if step.kind != "tick":
                    self.fail(at, "'timers_fired' can only be expected after a tick")
                if not isinstance(value, int) or isinstance(value, bool):
                    self.fail(at, "'timers_fired' must be a number")
                out[key] = value
            elif key == "closed":
                out[key] = None if value is None else self.moment(value, at, "'closed'")
            elif key == "refused":
                out[key] = str(value)
            else:                        # status, legal_state, case_number: a value or null
                out[key] = None if value is None else str(value)
        return out

    def expect_tasks(self, value, line) -> dict:
        """{task id: {"role": ..., "due": ..., "assignee": ...}} — exactly the open tasks."""
        if value is None or value == "none":
            return {}
        if isinstance(value, list):
            return {self.task(ref, line): {} for ref in value}
        m = self.mapping(value, line, "'tasks' (a list of tasks, or task: role lines)")
        out = {}
        for ref, detail in m.items():
            at = m.key_lines[ref]
            task = self.task(ref, at)
            if detail is None:
                out[task] = {}
            elif isinstance(detail, _Map):
                self.keys(detail, ("role", "due", "assignee"), f"task '{ref}'")
                out[task] = {}
                if "role" in detail:
                    out[task]["role"] = self.role(detail["role"], detail.key_lines["role"])
                if "due" in detail:
                    due = detail["due"]
                    out[task]["due"] = None if due is None else self.moment(due, detail.key_lines["due"], "'due'")
                if "assignee" in detail:     # the login of the person the task is for; null: the role's
                    out[task]["assignee"] = None if detail["assignee"] is None else str(detail["assignee"])
            else:
                out[task] = {"role": self.role(detail, at)}
        return out

    def expect_deadlines(self, value, line) -> dict:
        """{"names": [...]} (exactly these limits) or {"each": {name: {...} or None}}."""
        if value is None or value == "none":
            return {"names": []}
        if isinstance(value, list):
            return {"names": sorted(str(v) for v in value)}
        m = self.mapping(value, line, "'deadlines' (a list of names, or name: details)")
        each = {}
        for name, detail in m.items():
            at = m.key_lines[name]
            if detail is None:
                each[str(name)] = None
                continue
            detail = self.mapping(detail, at, f"deadline '{name}'")
            self.keys(detail, DEADLINE_KEYS, f"deadline '{name}'")
            each[str(name)] = {k: (self.moment(v, detail.key_lines[k], f"'{k}'") if k in MOMENT_KEYS and v is not None
                                   else v if isinstance(v, (bool, int)) or v is None else str(v))
                               for k, v in detail.items()}
        return {"each": each}

    def expect_notices(self, value, line) -> list[dict]:
        if value is None or value == "none":
            return []
        if not isinstance(value, list):
            self.fail(line, "'notices' must be a list (each notice a line starting with '- ')")
        out = []
        for raw in value:
            m = self.mapping(raw, line, "a notice")
            self.keys(m, NOTICE_KEYS, "a notice")
            contains = m.get("contains")
            contains = [] if contains is None else [str(c) for c in contains] if isinstance(contains, list) else [str(contains)]
            out.append({"kind": self.text(m, "kind", "a notice", required=False),
                        "to": self.text(m, "to", "a notice", required=False), "contains": contains})
        return out


def load_file(path: Path, models: dict[str, ProcessModel], roles: set[str]) -> list[Scenario]:
    """The scenarios of one file (one per YAML document, `---` between them)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioFileError(path, None, f"cannot be read: {err}")
    loader = _Loader(text)
    loader.name = str(path)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise ScenarioFileError(path, mark.line + 1 if mark else None,
                                f"not valid YAML: {err.problem or err.context}")
    finally:
        loader.dispose()
    docs = [d for d in docs if d is not None]
    if not docs:
        raise ScenarioFileError(path, None, "holds no scenario")
    reader = _Reader(str(path), models, roles)
    name = path.stem
    return [reader.scenario(doc, name if len(docs) == 1 else f"{name} #{n}") for n, doc in enumerate(docs, start=1)]


def scenario_files(paths) -> list[Path]:
    files = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += sorted(x for x in p.rglob("*") if x.suffix in (".yaml", ".yml") and x.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise InvalidInput(f"'{raw}' is not a scenario file or a directory of them")
    return files


def processes_dir_of(path: Path) -> Path:
    """The processes directory a scenario file or directory belongs to: the parent of the
    nearest enclosing `tests` directory (processes/tests/<process>/x.yaml -> processes/)."""
    for folder in [path.resolve(), *path.resolve().parents]:
        if folder.name == "tests" and any(folder.parent.glob("*.bpmn")):
            return folder.parent
    raise InvalidInput(f"'{path}' is not inside a processes directory's tests/ folder "
                       "(processes/tests/<process_id>/*.yaml)")
