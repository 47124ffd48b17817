"""What-if: a candidate definition of a process against the recorded history of its past cases.

The candidate — a working copy of the BPMN file with its forms, checked as `validate` and
`deploy` check it but not deployed — is deployed into a throwaway SQLite database, and every
selected past case is played again there: the same intake, the same submissions by the same
users at the same moments, the same messages, a timer tick at each recorded tick moment, and a
tick at every timer the candidate itself has due before the next recorded event (so that a
shorter limit breaches where it would have). The throwaway service runs with a `FixedClock`
moved to each moment, the real handlers (notices go nowhere) and the real calendar. The real
database is only read.

what_if(service, process_id, *, candidate=None, since=None, newest=None, progress=None) -> dict

    {"process_id", "now": ISO UTC (the moment pending timers are ticked up to),
     "candidate": {"path", "content_hash", "same_as_version": deployed version with the same
                   content or None},
     "cases": [CaseReport.as_dict()], "summary": {"replayed", "same_path", "diverge",
     "moved_deadlines", "would_breach", "do_not_fit", "failed"}}

Each recorded step is compared with what the candidate did for it: the step's driver (task
completed, timer fired, message), the service tasks it ran (handler and element) and the
incidents it raised. The first difference is the case's divergence, told as "old: …; new: …";
the replay goes on after it as long as the recorded events still apply, and stops at the first
one that does not (a task that is not open, a submission the new form refuses). A handler
failure recorded in the old run (an outside system down) is not held against the candidate:
that step is compared only up to the failure, and the later retry step not at all.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import groupby
from pathlib import Path

from lxml import etree
from sqlalchemy import func, select

from .clock import SHANGHAI, FixedClock, iso, local_minute
from .views import deadline_dict
from .definitions import check_paths
from .element_checks import NS
from .errors import ComplaintflowError, Conflict, InvalidInput, ValidationFailed
from .forms import validate_submission
from .models import Deadline, Event, Instance, ProcessVersion


# --- the candidate ---------------------------------------------------------------------------

def process_ids_in(path: Path) -> set[str] | None:
    """The ids of the processes a BPMN file defines, or None if it cannot be read as XML."""
    try:
        root = etree.parse(str(path)).getroot()
    except (etree.LxmlError, OSError):
        return None
    return {p.get("id") for p in root.findall("bpmn:process", NS)}


def candidate_file(service, process_id: str, path=None) -> Path:
    """The BPMN file of `process_id`: `path` (a file, or a directory holding it), else the file
    its latest version was deployed from, else the one in processes/."""
    if path is None:
        with service.sessions() as s:
            source = s.execute(select(ProcessVersion.source_path).where(ProcessVersion.process_id == process_id)
                               .order_by(ProcessVersion.version.desc()).limit(1)).scalar_one_or_none()
        if source and Path(source).is_file() and process_id in (process_ids_in(Path(source)) or ()):
            return Path(source)
        path = Path("processes")
    path = Path(path)
    if path.is_file():
        if process_id not in (process_ids_in(path) or ()):
            raise InvalidInput(f"{path} does not define process '{process_id}'")
        return path
    if not path.is_dir():
        raise InvalidInput(f"the candidate '{path}' is not a BPMN file or a directory of them")
    found, unreadable = [], []
    for f in sorted(path.glob("*.bpmn")):
        ids = process_ids_in(f)
        if ids is None:
            unreadable.append(f.name)
        elif process_id in ids:
            found.append(f)
    if len(found) > 1:
        raise InvalidInput(f"process '{process_id}' is defined in {len(found)} files in {path}: "
                           f"{', '.join(f.name for f in found)}")
    if not found:
        also = f" ({', '.join(unreadable)} could not be read as XML)" if unreadable else ""
        raise InvalidInput(f"no BPMN file in {path} defines process '{process_id}'{also}")
    return found[0]


def load_candidate(service, process_id: str, path=None):
    """(file, package): the candidate checked as `deploy` checks it; ValidationFailed if not."""
    source = candidate_file(service, process_id, path)
    result = check_paths([source], service.handlers)
    if not result.ok:
        raise ValidationFailed(result.problems)
    for pkg in result.packages:
        if pkg.process_id == process_id:
            return source, pkg
    raise InvalidInput(f"{source} defines process '{process_id}', but it is not marked isExecutable=\"true\"")


# --- the cases -------------------------------------------------------------------------------

def select_cases(service, process_id: str, *, since: date | None = None, newest: int | None = None) -> list[str]:
    """Ids of the past cases of `process_id`, oldest first: received on or after `since` (a day in
    Beijing), the newest `newest` of them."""
    if newest is not None and newest < 1:
        raise InvalidInput(f"--cases must be 1 or more, not {newest}")
    q = select(Instance.id).where(Instance.process_id == process_id)
    if since is not None:
        q = q.where(Instance.received_at >= datetime.combine(since, time(0), SHANGHAI))
    with service.sessions() as s:
        if not s.execute(select(func.count()).select_from(ProcessVersion)
                         .where(ProcessVersion.process_id == process_id)).scalar():
            service._version(s, process_id)         # raises NotFound naming the deployed processes
        q = q.order_by(Instance.received_at.desc(), Instance.case_number.desc(), Instance.id.desc())
        ids = list(s.execute(q.limit(newest) if newest else q).scalars())
    return ids[::-1]


# --- the throwaway service -------------------------------------------------------------------

class _NoNotices:
    """Notices of the what-if go nowhere."""

    def send(self, kind, to, message, case_number=None):
        return {"kind": kind, "to": to, "message": message, "case_number": case_number, "channel": "what-if"}


class Sandbox:
    """A ComplaintService on a temporary SQLite file with the candidate deployed in it; its
    clock is a FixedClock the replay moves. Use as a context manager (the file is removed)."""

    def __init__(self, service, package):
        from .service import ComplaintService
        self.dir = tempfile.mkdtemp(prefix="complaintflow-whatif-")
        self.clock = FixedClock(service.clock.now())
        self.service = ComplaintService(f"sqlite:///{Path(self.dir) / 'whatif.sqlite3'}", clock=self.clock,
                                        handlers=service.handlers, notifier=_NoNotices(),
                                        calendar=service.calendar, handler_timeout=service.handler_timeout,
                                        chain_key=secrets.token_bytes(32))
        (self.deployed,) = self.service._deploy_packages([package])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.service.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- one case ----------------------------------------------------------------------------------

@dataclass
class CaseReport:
    instance_id: str
    case_number: str | None
    version: int
    received: str
    status: str
    events: int
    replayed_events: int = 0
    divergence: dict | None = None
    does_not_fit: dict | None = None
    deadlines: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def path(self) -> str:
        if self.error:
            return "failed"
        if self.divergence:
            return "diverges"
        return "does_not_fit" if self.does_not_fit else "same"

    def as_dict(self) -> dict:
        return {"instance_id": self.instance_id, "case_number": self.case_number, "version": self.version,
                "received": self.received, "status": self.status, "events": self.events,
                "replayed_events": self.replayed_events, "path": self.path, "divergence": self.divergence,
                "does_not_fit": self.does_not_fit, "deadlines": self.deadlines,
                "moved": any(d["moved"] for d in self.deadlines),
                "would_breach": any(d["would_breach"] for d in self.deadlines),
                "notes": self.notes, "error": self.error}


class _Stop(Exception):
    """A recorded event the candidate cannot take: the replay of the case ends there."""


def _quote(task, name) -> str:
    return f"'{task}'" + (f" ({name})" if name and name != task else "")


def _signature(events) -> list[tuple]:
    """What a step did, as comparable items: its driver, the service tasks it ran, incidents."""
    items = []
    for e in events:
        p = e.payload or {}
        if e.kind == "started":
            items.append(("started",))
        elif e.kind == "task_completed":
            items.append(("task", p.get("task")))
        elif e.kind == "timer_fired":
            items.append(("timer", p.get("task")))
        elif e.kind == "message_received":
            items.append(("message", p.get("message")))
        elif e.kind == "handler_called":
            items.append(("handler", p.get("task"), p.get("handler")))
        elif e.kind == "incident":
            items.append(("incident", p.get("task")))
    return items


def _same_step(old_events, new_events) -> bool:
    old, new = _signature(old_events), _signature(new_events)
    failed = {i[1] for i in old if i[0] == "incident"}
    if failed:         # an outside failure in the old run: compare up to it
        old = [i for i in old if i[0] != "incident"]
        new = [i for i in new if not (i[0] == "incident" and i[1] in failed)][:len(old)]
    return old == new


def describe_step(events) -> str:
    """One step in words: its driver, then the service tasks it ran and what failed."""
    if not events:
        return "nothing"
    parts, effects = [], []
    for e in events:
        p = e.payload or {}
        if e.kind == "started":
            parts.append(f"registered by {e.actor}")
        elif e.kind == "task_completed":
            parts.append(f"task {_quote(p.get('task'), p.get('name'))} completed by {e.actor}")
        elif e.kind == "timer_fired":
            breach = (f" — limit '{p['deadline']}' breached"
                      if p.get("deadline") and not p["deadline"].endswith(".remind") else "")
            (parts if e is events[0] else effects).append(f"timer {_quote(p.get('task'), p.get('name'))} fired{breach}")
        elif e.kind == "message_received":
            parts.append(f"message '{p.get('message')}' received")
        elif e.kind == "retry":
            parts.append(f"failed steps retried by {e.actor}")
        elif e.kind == "handler_called":
            failed = " (failed)" if "error" in p else ""
            effects.append(f"'{p.get('task')}' ({p.get('handler')}){failed}")
        elif e.kind == "incident" and p.get("handler") is None:
            effects.append(f"'{p.get('task')}' failed: {p.get('message')}")
    return "; ".join(parts) + (" → " + ", ".join(effects) if effects else "")


def _deadline_view(row: Deadline | None, now) -> dict | None:
    if row is None:
        return None
    d = deadline_dict(row, now)          # an open limit past due counts as breached
    return {k: d[k] for k in ("unit", "amount", "extended_by", "due", "last_day", "status", "breached_at")}


def compare_deadlines(old_rows, new_rows, now, new_now=None) -> list[dict]:
    """Each limit as the old run has it now and as the candidate has it (at `new_now`)."""
    old = {r.name: r for r in old_rows}
    new = {r.name: r for r in new_rows}
    out = []
    for name in list(old) + [n for n in new if n not in old]:
        o, n = _deadline_view(old.get(name), now), _deadline_view(new.get(name), new_now or now)
        out.append({"name": name, "old": o, "new": n,
                    "moved": bool(o and n and o["due"] != n["due"]),
                    "would_breach": bool(n and n["status"] == "breached" and (o is None or o["status"] != "breached")),
                    "no_longer_breached": bool(o and o["status"] == "breached" and n and n["status"] != "breached")})
    return out


def recorded_intake(data: dict, old_version) -> dict:
    """The intake as submitted, from the recorded start data (the intake merged over the old
    version's initial data). A value equal to its initial one may have been submitted or not:
    left out, unless the old intake form needs it to accept the rest (as it did)."""
    initial = old_version.meta.get("initial_data") or {}
    unsure = {k for k, v in data.items() if k in initial and initial[k] == v}
    intake = {k: v for k, v in data.items() if k not in unsure}
    form = old_version.meta.get("start_form")
    schema = old_version.forms.get(form) if form else None
    for _ in range(len(unsure) + 1):
        try:
            validate_submission(schema, intake, form or "")
            break
        except InvalidInput as err:
            back = (set(err.field_errors) & unsure) - set(intake)
            if not back:
                break
            intake.update({k: data[k] for k in back})
    return intake


class _CaseRun:
    """Plays one recorded case against the candidate in the sandbox."""

    def __init__(self, box: Sandbox, process_id: str, old_version, report: CaseReport):
        self.box = box
        self.sb = box.service
        self.process_id = process_id
        self.old_version = old_version
        self.report = report
        self.new_id: str | None = None
        self.seen = 0                   # the last sandbox event already looked at

    # --- the sandbox side --------------------------------------------------------------
    def new_events(self) -> list[Event]:
        with self.sb.sessions() as s:
            rows = list(s.execute(select(Event).where(Event.instance_id == self.new_id, Event.seq > self.seen)
                                  .order_by(Event.seq)).scalars())
        if rows:
            self.seen = rows[-1].seq
        return rows

    def new_case(self) -> Instance:
        with self.sb.sessions() as s:
            return s.get(Instance, self.new_id)

    def open_now(self) -> str:
        inst = self.new_case()
        if inst.status == "completed":
            return f"the case closes at {local_minute(inst.closed_at)}"
        tasks = self.sb.list_tasks(instance_id=self.new_id)
        text = ("open are " + ", ".join(_quote(t["task"], t["name"]) for t in tasks)) if tasks else "no task is open"
        if inst.status == "incident":
            with self.sb.sessions() as s:
                failed = {i["task"] for i in self.sb._incidents(s, self.new_id, open_only=True)}
            text += f"; the case has an incident ({', '.join(sorted(failed))} failed) and waits for a retry"
        return text

    def tick_until(self, until, *, inclusive=False) -> list[Event]:
        """Fire the candidate's own timers due before `until` (or at it), each at its due moment."""
        fired = []
        for _ in range(100):            # a cycle timer repeats; bound the work
            inst = self.new_case()
            due = inst.next_due_at
            if inst.status == "completed" or due is None or due > until or (due == until and not inclusive):
                break
            due = max(due, inst.updated_at)
            self.box.clock.set(due)
            if not self.sb._tick_one(self.new_id, due):
                break
            fired += self.new_events()
        return fired

    # --- one recorded step ---------------------------------------------------------------
    def diverge(self, seq, at, old: str, new: str, *, when="at", stop=False) -> None:
        """Keep the first divergence: at event `seq`, or before or after it (a candidate's own timer).
        A later one that ends the replay (`stop`) is kept as a note."""
        where = f"event {seq}" if when == "at" else f"{when} event {seq} ({local_minute(at)})"
        text = f"{where}: old: {old}; new: {new}"
        if self.report.divergence is None:
            self.report.divergence = {"event": seq, "when": when, "at": iso(at), "old": old, "new": new,
                                      "text": text}
        elif stop:
            self.report.notes.append(f"the replay stops at {text}")

    def apply(self, driver) -> bool:
        """Do what `driver` recorded, in the sandbox. False: the step is not compared (a retry
        or recomputation the candidate has no use for). Raises _Stop when it cannot be done."""
        p = driver.payload or {}
        self.box.clock.set(driver.at)
        if driver.kind == "started":
            self.start(driver, p)
            return True
        if self.new_case().status == "completed":
            self.diverge(driver.seq, driver.at, describe_step([driver]), "the case is already closed", stop=True)
            raise _Stop
        if driver.kind == "task_completed":
            self.complete(driver, p)
        elif driver.kind == "timer_fired":
            self.sb._tick_one(self.new_id, driver.at)
        elif driver.kind == "message_received":
            try:
                self.sb.send_message(self.new_id, p.get("message"), p.get("payload") or {}, driver.actor)
            except Conflict:
                self.diverge(driver.seq, driver.at, describe_step([driver]),
                             f"the case is not waiting for message '{p.get('message')}' — {self.open_now()}",
                             stop=True)
                raise _Stop from None
            except InvalidInput as err:     # the candidate's message form no longer takes the recorded data
                self.misfit(driver, p.get("element"), p.get("form"), err, f"message '{p.get('message')}'")
                raise _Stop from None
        elif driver.kind == "retry":
            if self.new_case().status != "incident":
                return False
            self.sb.retry(self.new_id, driver.actor)
        else:                           # deadlines_recomputed: the candidate's limits use today's calendar
            return False
        return True

    def start(self, driver, p) -> None:
        data = dict(p.get("data") or {})
        extra = {"split_from": data.pop("split_from")} if "split_from" in data else None
        intake = recorded_intake(data, self.old_version)
        with self.sb.sessions() as s:
            form = self.sb._version(s, self.process_id).meta.get("start_form")
        try:
            with self.sb.uow() as s:
                result = self.sb._start_in(s, self.process_id, intake, driver.actor, driver.at, extra=extra)
        except InvalidInput as err:
            self.misfit(driver, None, form, err, "the intake")
            raise _Stop from None
        self.new_id = result.instance_id

    def complete(self, driver, p) -> None:
        task = p.get("task")
        rows = [t for t in self.sb.list_tasks(instance_id=self.new_id) if t["task"] == task]
        if not rows:
            self.diverge(driver.seq, driver.at, describe_step([driver]),
                         f"task {_quote(task, None)} is not open — {self.open_now()}", stop=True)
            raise _Stop
        row = rows[0]
        if p.get("role") and row["role"] != p.get("role"):
            self.report.notes.append(f"event {driver.seq}: task '{task}' is for role '{row['role']}' in the "
                                     f"candidate (it was for '{p.get('role')}')")
        try:
            self.sb.complete_task(row["task_id"], driver.actor, p.get("data") or {})
        except InvalidInput as err:
            self.misfit(driver, task, row["form"], err, f"the submission of task '{task}'")
            raise _Stop from None

    def misfit(self, driver, task, form, err: InvalidInput, what: str) -> None:
        reason = "; ".join(m for msgs in err.field_errors.values() for m in msgs) or str(err)
        self.report.does_not_fit = {
            "event": driver.seq, "task": task, "form": form, "reason": reason, "field_errors": err.field_errors,
            "text": f"event {driver.seq}: {what} no longer fits form {form or '(none)'}: {reason}"}

    # --- the whole case ------------------------------------------------------------------
    def run(self, events: list[Event], old_status: str, old_closed, old_next_due, horizon) -> None:
        steps = [list(g) for _, g in groupby(events, key=lambda e: e.step)]
        done = True
        for group in steps:
            driver = group[0]
            pending = self.tick_until(driver.at) if self.new_id else []
            if pending and driver.kind != "timer_fired":
                self.diverge(driver.seq, pending[0].at,
                             f"nothing until event {driver.seq} at {local_minute(driver.at)} ({describe_step([driver])})",
                             f"{self.describe_new(pending)} — {self.open_now()}", when="before")
            try:
                compared = self.apply(driver)
            except _Stop:
                done = False
                break
            self.report.replayed_events = group[-1].seq
            step = self.new_events()
            if driver.kind == "timer_fired":
                step = pending + step
            if compared and not _same_step(group, step):
                new = self.describe_new(step) if step else f"no timer is due at {local_minute(driver.at)}"
                self.diverge(driver.seq, driver.at, describe_step(group), f"{new} — {self.open_now()}")
        if not done or self.new_id is None:
            return
        # an old case with a timer past due but not yet ticked would fire it at its next tick: the
        # candidate's own timers count up to that moment only
        if old_next_due is not None and old_next_due <= horizon:
            later = self.tick_until(old_next_due)
        else:
            later = self.tick_until(horizon, inclusive=True)
        if later:
            self.diverge(events[-1].seq, later[0].at, "nothing more happened" if old_status == "completed"
                         else "nothing yet", f"{self.describe_new(later)} — {self.open_now()}", when="after")
        new = self.new_case()
        if (old_status == "completed") != (new.status == "completed"):
            old = (f"the case closed at {local_minute(old_closed)}" if old_status == "completed"
                   else "the case is still open")
            if self.report.divergence is None:
                self.diverge(events[-1].seq, events[-1].at, old, self.open_now(), when="after")
            else:
                self.report.notes.append(f"at the end: old: {old}; new: {self.open_now()}")

    @staticmethod
    def describe_new(events) -> str:
        return "; ".join(describe_step(list(g)) for _, g in groupby(events, key=lambda e: e.step))


def _replay_case(service, box: Sandbox, process_id: str, instance_id: str, horizon) -> CaseReport:
    with service.sessions() as s:
        inst = s.get(Instance, instance_id)
        events = list(s.execute(select(Event).where(Event.instance_id == inst.id).order_by(Event.seq)).scalars())
        old_rows = list(s.execute(select(Deadline).where(Deadline.instance_id == inst.id)
                                  .order_by(Deadline.id)).scalars())
        old_version = service.version_info(s, inst.version_id)
        report = CaseReport(inst.id, inst.case_number, inst.version, iso(inst.received_at), inst.status, len(events))
        status, closed, next_due = inst.status, inst.closed_at, inst.next_due_at
    run = _CaseRun(box, process_id, old_version, report)
    try:
        run.run(events, status, closed, next_due, horizon)
    except ComplaintflowError as err:       # the candidate refused something the log asks for
        report.error = f"event {report.replayed_events + 1}: {err}"
    if run.new_id is not None:
        with box.service.sessions() as s:
            new_rows = list(s.execute(select(Deadline).where(Deadline.instance_id == run.new_id)
                                      .order_by(Deadline.id)).scalars())
        # a replay that stopped early knows the candidate's limits only as they stood then
        stopped = report.replayed_events < report.events
        report.deadlines = compare_deadlines(old_rows, new_rows, horizon, box.clock.now() if stopped else horizon)
    if report.replayed_events < report.events and not report.error:
        report.notes.append(f"replayed up to event {report.replayed_events} of {report.events}; "
                            "what the candidate would do after that is not known")
    return report


def what_if(service, process_id: str, *, candidate=None, since: date | None = None, newest: int | None = None,
            progress=None) -> dict:
    """Replay the selected past cases of `process_id` against the candidate (module docstring)."""
    source, package = load_candidate(service, process_id, candidate)
    ids = select_cases(service, process_id, since=since, newest=newest)
    horizon = service.clock.now()
    with service.sessions() as s:
        same = s.execute(select(ProcessVersion.version).where(
            ProcessVersion.process_id == process_id,
            ProcessVersion.content_hash == package.content_hash)).scalar_one_or_none()
    reports = []
    with Sandbox(service, package) as box:
        for n, instance_id in enumerate(ids, start=1):
            try:
                reports.append(_replay_case(service, box, process_id, instance_id, horizon))
            except Exception as err:        # one case the sandbox cannot run must not stop the others
                with service.sessions() as s:
                    inst = s.get(Instance, instance_id)
                    reports.append(CaseReport(inst.id, inst.case_number, inst.version, iso(inst.received_at),
                                              inst.status, inst.last_event_seq,
                                              error=f"{type(err).__name__}: {err}"))
            if progress:
                progress(n, len(ids))
    cases = [r.as_dict() for r in reports]
    return {"process_id": process_id, "now": iso(horizon),
            "candidate": {"path": str(source), "content_hash": package.content_hash, "same_as_version": same},
            "cases": cases, "summary": summarise(cases)}


def summarise(cases: list[dict]) -> dict:
    return {"replayed": len(cases),
            "same_path": sum(c["path"] == "same" for c in cases),
            "diverge": sum(c["divergence"] is not None for c in cases),
            "moved_deadlines": sum(c["moved"] for c in cases),
            "would_breach": sum(c["would_breach"] for c in cases),
            "do_not_fit": sum(c["does_not_fit"] is not None for c in cases),
            "failed": sum(c["error"] is not None for c in cases)}
