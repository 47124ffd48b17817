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
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .case_services import LogNotifier
from .clock import FixedClock, local_minute, parse_instant
from .coverage import Coverage, ProcessModel
from .definitions import load_roles
from .errors import ComplaintflowError, InvalidInput
from .scenario_reader import (MOMENT_KEYS, Scenario, ScenarioFileError, Step, load_file, processes_dir_of,
                              scenario_files)
from .service import ComplaintService


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
