"""Process tests that designers write (`complaintflow test`).

A scenario file (`processes/tests/<process_id>/*.yaml`, format in docs/process-design.md,
"Process tests") registers one complaint and walks it step by step — complete or claim a
task as a user at a moment, tick the timers at a moment, deliver a message — checking after
any step what staff and complainants would see: the open tasks and their roles and due
times, the time limits, the case's status and legal state, the notices sent, the case data.

Each scenario runs in a database of its own, a copy of a throwaway SQLite file into which
the processes of the scenario's `processes/` directory were deployed once; the user's
database is never opened. The steps are the service layer's own calls (`ComplaintService`:
start, complete_task, claim_task, tick, send_message) with a `FixedClock` set to each step's
moment, so a scenario sees exactly what the CLI and the inbox would. Coverage
(engine/coverage.py) is read from the engine's task trees of every case a scenario ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from .case_services import LogNotifier
from .clock import FixedClock, local_minute, parse_instant
from .coverage import Coverage, ProcessModel
from .definitions import load_roles
from .errors import ComplaintflowError, InvalidInput
from .service import ComplaintService

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


@dataclass
class Outcome:
    scenario: Scenario
    passed: bool
    steps_run: int
    failure: str | None = None            # "step 4 (...): expected ..."
    failure_line: int | None = None

    def as_dict(self) -> dict:
        s = self.scenario
        return {"file": s.file, "line": s.line, "name": s.name, "process_id": s.process_id, "passed": self.passed,
                "steps": len(s.steps) - 1, "steps_run": self.steps_run, "failure": self.failure,
                "failure_line": self.failure_line}


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


# --- running ----------------------------------------------------------------------------------

class RecordingNotifier(LogNotifier):
    """Keeps what the notify.* handlers sent, so that a scenario can expect it."""

    def __init__(self):
        self.sent = []

    def send(self, kind, to, message, case_number=None):
        record = super().send(kind, to, message, case_number)
        self.sent.append(record)
        return record


class Unmet(Exception):
    """An expectation that did not hold, in plain words; `key` is the expectation's key (its
    line is reported), None for the step itself."""

    def __init__(self, message, key=None):
        super().__init__(message)
        self.key = key


def _task_text(task_id, name) -> str:
    return f"'{task_id}' ({name})" if name and name != task_id else f"'{task_id}'"


def _open_text(open_tasks) -> str:
    return ", ".join(_task_text(t["task"], t["name"]) for t in open_tasks) or "none"


def _when(value) -> str:
    return "none" if value is None else local_minute(parse_instant(value) if isinstance(value, str) else value)


def _refusal_text(err: ComplaintflowError) -> str:
    fields = getattr(err, "field_errors", None) or {}
    details = "; ".join(f"{f}: {m}" for f, msgs in fields.items() for m in msgs)
    return f"{err}" + (f" ({details})" if details else "")


class ScenarioRun:
    """One scenario in its own copy of the deployed database."""

    def __init__(self, runner: "Runner", scenario: Scenario, db_file: Path):
        self.runner, self.scenario = runner, scenario
        self.clock = FixedClock(scenario.steps[0].at)
        self.notifier = RecordingNotifier()
        self.service = ComplaintService(f"sqlite:///{db_file}", clock=self.clock, notifier=self.notifier,
                                        chain_key=runner.chain_key)
        self.model = runner.models[scenario.process_id]
        self.instance_id = None

    def run(self) -> Outcome:
        done = 0
        try:
            for step in self.scenario.steps:
                try:
                    self.do(step)
                except Unmet as unmet:
                    return Outcome(self.scenario, False, done, f"{step.label}: {unmet}",
                                   step.expect_lines.get(unmet.key, step.line))
                done += 1
            return Outcome(self.scenario, True, done - 1)
        finally:
            self.record_coverage()
            self.service.engine.dispose()

    def do(self, step: Step) -> None:
        self.clock.set(step.at)
        sent_before = len(self.notifier.sent)
        fired = None
        try:
            result = self.act(step)
        except ComplaintflowError as err:
            if "refused" in step.expect:
                if step.expect["refused"] not in _refusal_text(err):
                    raise Unmet(f"expected the action to be refused with '{step.expect['refused']}', "
                                f"it was refused: {_refusal_text(err)}", "refused")
                if self.instance_id is not None:      # the other expectations: the case as the refusal left it
                    self.check(step, self.notifier.sent[sent_before:], fired)
                return
            raise Unmet(f"the action was refused: {_refusal_text(err)}")
        if "refused" in step.expect:
            raise Unmet(f"expected the action to be refused with '{step.expect['refused']}', it was done", "refused")
        if step.kind == "tick":
            fired = result["timers_fired"]
            if result["failed"]:
                raise Unmet(f"the tick failed: {result['failed'][0]['error']}")
        self.check(step, self.notifier.sent[sent_before:], fired)

    def act(self, step: Step):
        svc = self.service
        roles = {step.role} if step.role else None
        if step.kind == "start":
            result = svc.start(self.scenario.process_id, step.data, step.user)
            self.instance_id = result.instance_id
            return result
        if step.kind == "tick":
            return svc.tick()
        if step.kind == "message":
            return svc.send_message(self.instance_id, step.target, step.data, step.user)
        open_tasks = svc.list_tasks(instance_id=self.instance_id)
        row = next((t for t in open_tasks if t["task"] == step.target), None)
        if row is None:
            raise Unmet(f"task {_task_text(step.target, self.model.user_tasks.get(step.target))} is not open; "
                        f"open tasks are: {_open_text(open_tasks)}")
        if step.kind == "claim":
            return svc.claim_task(row["task_id"], step.user, roles=roles)
        return svc.complete_task(row["task_id"], step.user, step.data, roles=roles)

    def check(self, step: Step, sent: list[dict], fired) -> None:
        expect = step.expect
        case = self.service.show(self.instance_id)
        if case["status"] == "incident" and expect.get("status") != "incident":
            first = case["incidents"][-1] if case["incidents"] else {}
            raise Unmet(f"the case has an incident: task '{first.get('task')}': {first.get('message')}")
        if "timers_fired" in expect and fired != expect["timers_fired"]:
            raise Unmet(f"expected {expect['timers_fired']} timer(s) to fire, {fired} fired", "timers_fired")
        if "tasks" in expect:
            self.check_tasks(expect["tasks"], case["open_tasks"])
        for key, what in (("status", "case status"), ("legal_state", "legal state"), ("case_number", "case number")):
            if key in expect and case[key] != expect[key]:
                raise Unmet(f"expected {what} {_shown(expect[key])}, it is {_shown(case[key])}", key)
        if "closed" in expect and _when(case["closed"]) != _when(expect["closed"]):
            raise Unmet(f"expected the case closed at {_when(expect['closed'])}, closed is {_when(case['closed'])}",
                        "closed")
        if "deadlines" in expect:
            self.check_deadlines(expect["deadlines"], case["deadlines"])
        if "notices" in expect:
            self.check_notices(expect["notices"], sent)
        if "data" in expect:
            data = self.service.case_detail(self.instance_id)["data"]
            for key, value in expect["data"].items():
                if key not in data:
                    raise Unmet(f"expected data '{key}' = {_shown(value)}, the case has no '{key}'", "data")
                if data[key] != value:
                    raise Unmet(f"expected data '{key}' = {_shown(value)}, it is {_shown(data[key])}", "data")

    def check_tasks(self, expected: dict, open_tasks: list[dict]) -> None:
        by_id = {t["task"]: t for t in open_tasks}
        for task, detail in expected.items():
            name = self.model.user_tasks.get(task)
            row = by_id.get(task)
            if row is None:
                raise Unmet(f"expected open task {_task_text(task, name)}, open tasks are: {_open_text(open_tasks)}", "tasks")
            if "role" in detail and row["role"] != detail["role"]:
                raise Unmet(f"expected task {_task_text(task, name)} for role '{detail['role']}', "
                            f"it is for '{row['role']}'", "tasks")
            if "assignee" in detail and row.get("assignee") != detail["assignee"]:
                actual = f"assigned to '{row['assignee']}'" if row.get("assignee") else "assigned to no one (its role's)"
                wanted = f"assigned to '{detail['assignee']}'" if detail["assignee"] else "assigned to no one"
                raise Unmet(f"expected task {_task_text(task, name)} {wanted}, it is {actual}", "tasks")
            if "due" in detail and _when(row["due"]) != _when(detail["due"]):
                actual = f"due {_when(row['due'])}" if row["due"] else "has no due time"
                raise Unmet(f"expected task {_task_text(task, name)} due {_when(detail['due'])}, it is {actual}", "tasks")
        extra = [t for t in open_tasks if t["task"] not in expected]
        if extra:
            if not expected:
                raise Unmet(f"expected no open task, open tasks are: {_open_text(open_tasks)}", "tasks")
            raise Unmet(f"task {_task_text(extra[0]['task'], extra[0]['name'])} is open but not expected; "
                        f"open tasks are: {_open_text(open_tasks)}", "tasks")

    def check_deadlines(self, expected: dict, rows: list[dict]) -> None:
        have = {d["name"]: d for d in rows}
        names = ", ".join(sorted(have)) or "none"
        if "names" in expected:
            if sorted(have) != expected["names"]:
                raise Unmet(f"expected the limits {', '.join(expected['names']) or 'none'}, the case has: {names}", "deadlines")
            return
        for name, detail in expected["each"].items():
            row = have.get(name)
            if detail is None:
                if row is not None:
                    raise Unmet(f"expected no limit '{name}', the case has one ({row['status']})", "deadlines")
                continue
            if row is None:
                raise Unmet(f"expected limit '{name}', the case has: {names}", "deadlines")
            for key, value in detail.items():
                actual = row[key]
                if key in MOMENT_KEYS:
                    if _when(actual) != _when(value):
                        raise Unmet(f"expected limit '{name}' {key.replace('_', ' ')} {_when(value)}, "
                                    f"it is {_when(actual)}", "deadlines")
                elif actual != value:
                    raise Unmet(f"expected limit '{name}' {key.replace('_', ' ')} {_shown(value)}, "
                                f"it is {_shown(actual)}", "deadlines")

    @staticmethod
    def check_notices(expected: list[dict], sent: list[dict]) -> None:
        said = "; ".join(f"{m['kind']} to {m['to']} ({m['message']})" for m in sent) or "nothing"
        if not expected and sent:
            raise Unmet(f"expected no notice, this step sent: {said}", "notices")
        for want in expected:
            if not any((want["kind"] is None or m["kind"] == want["kind"])
                       and (want["to"] is None or m["to"] == want["to"])
                       and all(c in (m["message"] or "") for c in want["contains"]) for m in sent):
                what = " ".join(filter(None, [
                    f"of kind '{want['kind']}'" if want["kind"] else None, f"to '{want['to']}'" if want["to"] else None,
                    " and ".join(f"containing '{c}'" for c in want["contains"]) or None]))
                raise Unmet(f"expected a notice {what}; this step sent: {said}", "notices")

    def record_coverage(self) -> None:
        coverage = self.runner.coverage
        coverage.add_scenario(self.scenario.process_id)
        for case in self.service.list_cases(limit=10_000):
            coverage.add_case(case["process_id"], self.service.case_detail(case["instance_id"])["path"])


def _shown(value) -> str:
    return "none" if value is None else f"'{value}'" if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass
class Report:
    outcomes: list[Outcome]
    errors: list[ScenarioFileError]
    coverage: list[dict]

    @property
    def exit_code(self) -> int:
        """0 all passed; 1 a scenario failed; 2 a scenario file has a mistake (takes precedence)."""
        return 2 if self.errors else 1 if any(not o.passed for o in self.outcomes) else 0

    def as_dict(self) -> dict:
        return {"ok": self.exit_code == 0, "passed": sum(o.passed for o in self.outcomes),
                "failed": sum(not o.passed for o in self.outcomes),
                "scenarios": [o.as_dict() for o in self.outcomes],
                "errors": [{"file": e.file, "line": e.line, "message": e.message} for e in self.errors],
                "coverage": self.coverage}


class Runner:
    """Deploys one processes directory into a throwaway database and runs scenarios on copies."""

    def __init__(self, processes_dir: Path):
        self.processes_dir = Path(processes_dir)
        self.chain_key = os.urandom(32)          # the throwaway log's key; no key file is read or made
        self._tmp = tempfile.TemporaryDirectory(prefix="complaintflow-test-")
        self.template = Path(self._tmp.name) / "deployed.sqlite3"
        service = ComplaintService(f"sqlite:///{self.template}", chain_key=self.chain_key)
        try:
            deployed = service.deploy([self.processes_dir])       # raises ValidationFailed
        finally:
            service.engine.dispose()
        self.models = {d.process_id: ProcessModel.from_file(d.source_path, d.process_id) for d in deployed}
        roles = load_roles(self.processes_dir) or {}
        self.roles = set(roles)
        self.role_names = {k: (v.get("zh", k) if isinstance(v, dict) else k) for k, v in roles.items()}
        self.coverage = Coverage(self.models)
        self._count = 0

    def close(self):
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def load(self, files) -> tuple[list[Scenario], list[ScenarioFileError]]:
        scenarios, errors = [], []
        for path in files:
            try:
                scenarios += load_file(path, self.models, self.roles)
            except ScenarioFileError as err:
                errors.append(err)
        return scenarios, errors

    def run_one(self, scenario: Scenario) -> Outcome:
        self._count += 1
        db_file = Path(self._tmp.name) / f"scenario-{self._count}.sqlite3"
        shutil.copyfile(self.template, db_file)
        try:
            return ScenarioRun(self, scenario, db_file).run()
        finally:
            db_file.unlink(missing_ok=True)


def run_scenarios(paths, progress=None) -> tuple[Report, Runner]:
    """Run the scenario files under `paths` (default processes/tests). The runner is returned
    closed; its `coverage` can still draw diagrams (they read the BPMN files)."""
    paths = [Path(p) for p in (paths or ["processes/tests"])]
    files = scenario_files(paths)
    homes = {processes_dir_of(p) for p in paths}
    if len(homes) != 1:
        raise InvalidInput("the scenario files given belong to different processes directories: "
                           + ", ".join(sorted(map(str, homes))) + "; run them one directory at a time")
    with Runner(homes.pop()) as runner:
        scenarios, errors = runner.load(files)
        outcomes = []
        for scenario in scenarios:
            outcome = runner.run_one(scenario)
            outcomes.append(outcome)
            if progress:
                progress(outcome)
    return Report(outcomes, errors, runner.coverage.report()), runner
