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

from datetime import date, datetime, time
from itertools import groupby

from sqlalchemy import func, select

from .clock import SHANGHAI, iso, local_minute
from .errors import ComplaintflowError, Conflict, InvalidInput
from .forms import validate_submission
from .models import Deadline, Event, Instance, ProcessVersion
from .whatif_candidate import Sandbox, load_candidate
from .whatif_compare import CaseReport, compare_deadlines, describe_step, quote_task, same_step


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


# --- one case ----------------------------------------------------------------------------------

class _Stop(Exception):
    """A recorded event the candidate cannot take: the replay of the case ends there."""


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
        text = ("open are " + ", ".join(quote_task(t["task"], t["name"]) for t in tasks)) if tasks else "no task is open"
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
                         f"task {quote_task(task, None)} is not open — {self.open_now()}", stop=True)
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
            if compared and not same_step(group, step):
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
