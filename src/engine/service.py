"""The service layer: every face (CLI, web inbox, JSON API, tests) calls these methods.

Each action runs in one unit of work (one database transaction) covering the engine state,
the open human tasks, the instance's next timer due time, incidents and the event log.
An error a user causes raises a `ComplaintflowError` before commit, so nothing changes.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import socket
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, func, insert, inspect as sa_inspect, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from ..handlers import HandlerRegistry, Services, default_registry
from . import messages, outbox, runtime
from .messages import not_awaited
from .clock import Clock, IdSequence, SystemClock, engine_context, iso, local_day, local_iso, parse_instant
from .calendar import BusinessCalendar, default_calendar
from .compaction import pack_state
from .db import database_url, make_engine, make_session_factory
from .deadlines import DeadlineBook
from .errors import Conflict, InvalidInput, NotAllowed, NotFound, Person, Role, Term, ValidationFailed, msg
from .eventlog import EventWriter, load_chain_key, write_pending_events
from .expressions import ComplaintScriptEngine
from .case_services import CaseStarter, DbCaseNumbers, InstanceSummary, LogNotifier
from .models import NO_DUE, Event, HumanTask, Incident, Instance, InstanceState, ProcessVersion
from .inbox import InboxMixin
from .org import task_refusal
from .priority import case_priority
from .queries import CaseQueries
from .views import describe_driver, task_dict
from .spec import Serializer
from .system_work import SystemWork
from .actions import ActionResult, DeployResult, Loaded, VersionInfo  # noqa: F401 (part of this module's API)

if TYPE_CHECKING:
    from .definitions import CheckResult

# Validation (definitions: jsonschema, lxml) and form checks (forms: jsonschema) are imported
# where they are used, so that a read command does not load them (docs/performance.md).

log = logging.getLogger("complaintflow")


class ComplaintService(CaseQueries, InboxMixin, SystemWork):
    def __init__(self, database: str | None = None, *, clock: Clock | None = None,
                 handlers: HandlerRegistry | None = None, notifier=None, engine=None,
                 calendar: BusinessCalendar | None = None, handler_timeout: float | None = None,
                 chain_key: bytes | None = None, org=None):
        self.engine = engine or make_engine(database_url(database))
        # the organisation file (engine/org.py): an Organisation, or a function that loads one
        # when a task first needs it (default: COMPLAINTFLOW_ORG_FILE, else data/org/demo.toml)
        self._org = org
        # the key of the event log's HMAC chain: from COMPLAINTFLOW_CHAIN_KEY_FILE (var/chain_key)
        self.chain_key = chain_key if chain_key is not None else load_chain_key(self.engine)
        self.sessions = make_session_factory(self.engine)
        self.clock = clock or SystemClock()
        self.handlers = handlers or default_registry()
        self.notifier = notifier or LogNotifier()
        self.calendar = calendar or default_calendar()
        self.serializer = Serializer()
        self._versions: dict[int, "VersionInfo"] = {}
        # a handler that gives no answer in this many seconds becomes an incident (runtime.py)
        self.handler_timeout = handler_timeout if handler_timeout is not None else _env_seconds(
            "COMPLAINTFLOW_HANDLER_TIMEOUT", 30.0)
        # how long a SQLite lease on a case for system work lasts if its worker dies
        self.lease_seconds = max(120.0, 4 * (self.handler_timeout or 30.0))
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def org(self):
        """The organisation (engine/org.py), read once; OrgFileError when the file is wrong."""
        from .org import Organisation, load_org
        if not isinstance(self._org, Organisation):
            self._org = (self._org or load_org)()
        return self._org

    # --- unit of work -----------------------------------------------------------
    @contextmanager
    def uow(self):
        """One action, one transaction, in two phases.

        While the action runs (loading the case, the engine, handlers) nothing is written:
        every change waits in the session (autoflush is off; handlers' services buffer theirs,
        and case numbers come from a sequence-like counter of their own). So no write lock is
        held while a handler talks to a slow outside system, and a SQLite database stays free
        for other cases. At the end everything is written at once, the case row first with its
        row version checked (models.py `case_row`); a case another action changed meanwhile
        makes this one a `Conflict` that names who won, and nothing of it is stored.
        """
        session = self.sessions()
        try:
            yield session
            write_case_rows(session)        # the case row first, its row version checked
            if session.new or session.deleted or session.dirty:     # rows of handlers' services
                session.flush()
            write_pending_events(session)   # then the action's events, in one statement
            for check in session.info.pop("after_flush_checks", ()):   # may still refuse: rolled back
                check(session)
            session.commit()
        except StaleDataError:
            session.rollback()
            raise self._lost_race(session.info.get("loaded", ())) from None
        except IntegrityError as err:
            session.rollback()
            if "events" in str(err.orig) and "seq" in str(err.orig):   # a log position taken meanwhile
                raise self._lost_race(session.info.get("loaded", ())) from err
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _lost_race(self, loaded) -> Conflict:
        """The Conflict for an action that lost the race for a case: who won, and when."""
        if len(loaded) != 1:
            return Conflict(msg("race"), race=True)
        (instance_id,) = loaded
        with self.sessions() as s:
            inst = s.get(Instance, instance_id)
            ev = _newest_driver(s, instance_id)
        ref = (inst.case_number or inst.id) if inst else instance_id
        if ev is None:
            return Conflict(msg("case_race", case=ref), race=True)
        return Conflict(msg("case_changed_by", case=ref, by=Person(ev.actor), at=ev.at, what=describe_driver(ev)),
                        by=ev.actor, at=ev.at, race=True)

    # --- deploy -------------------------------------------------------------------
    def validate(self, paths) -> "CheckResult":
        from .definitions import check_paths
        from .org import org_path
        # the units `assignTo` names are checked against the organisation file, when there is one
        org = self.org if self._org is not None or org_path().is_file() else None
        return check_paths(paths, self.handlers, org)

    def deploy(self, paths) -> list[DeployResult]:
        result = self.validate(paths)
        if not result.ok:
            raise ValidationFailed(result.problems)
        for attempt in range(3):
            try:
                return self._deploy_packages(result.packages)
            except IntegrityError:
                # another process (a second `serve` starting beside this one) deployed the same
                # processes at the same moment: read again; what it stored counts as unchanged
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _deploy_packages(self, packages) -> list[DeployResult]:
        now = self.clock.now()
        out = []
        with self.uow() as s:
            for pkg in packages:
                existing = s.execute(select(ProcessVersion).where(
                    ProcessVersion.process_id == pkg.process_id,
                    ProcessVersion.content_hash == pkg.content_hash)).scalar_one_or_none()
                if existing is not None:
                    out.append(DeployResult(pkg.process_id, existing.version, False, pkg.content_hash, pkg.source_path))
                    continue
                last = s.execute(select(func.max(ProcessVersion.version)).where(
                    ProcessVersion.process_id == pkg.process_id)).scalar() or 0
                s.add(ProcessVersion(process_id=pkg.process_id, version=last + 1, name=pkg.name,
                                     content_hash=pkg.content_hash, source_path=pkg.source_path,
                                     bpmn_xml=pkg.bpmn_xml, forms=pkg.forms, specs=pkg.specs, meta=pkg.meta,
                                     deployed_at=now))
                out.append(DeployResult(pkg.process_id, last + 1, True, pkg.content_hash, pkg.source_path))
        return out

    def processes(self) -> list[dict]:
        with self.sessions() as s:
            rows = s.execute(select(ProcessVersion.process_id, ProcessVersion.version, ProcessVersion.name,
                                    ProcessVersion.deployed_at, ProcessVersion.content_hash)
                             .order_by(ProcessVersion.process_id, ProcessVersion.version)).all()
        return [{"process_id": r[0], "version": r[1], "name": r[2], "deployed_at": iso(r[3]),
                 "content_hash": r[4]} for r in rows]

    def _version(self, s, process_id, version=None) -> "VersionInfo":
        q = select(ProcessVersion.id).where(ProcessVersion.process_id == process_id)
        q = q.where(ProcessVersion.version == version) if version else q.order_by(ProcessVersion.version.desc())
        version_id = s.execute(q.limit(1)).scalar_one_or_none()
        if version_id is None:
            known = sorted({p["process_id"] for p in self.processes()})
            what = f"version {version} of process '{process_id}'" if version else f"process '{process_id}'"
            raise NotFound(f"{what} is not deployed; deployed processes: {', '.join(known) or 'none'} "
                           "(run `complaintflow deploy`)")
        return self.version_info(s, version_id)

    def version_info(self, s, version_id: int) -> "VersionInfo":
        """A deployed version is immutable: load it (and restore its spec) once per process."""
        info = self._versions.get(version_id)
        if info is None:
            pv = s.get(ProcessVersion, version_id)
            spec, subs = self.serializer.specs_from_dict(pv.specs)
            info = VersionInfo(pv.id, pv.process_id, pv.version, pv.meta, pv.forms, spec, subs)
            self._versions[version_id] = info
        return info

    def calendar_of(self, s, inst) -> BusinessCalendar:
        """The calendar a case's limits count on: with its procedure's own reception hours."""
        return self.calendar.with_hours(self.version_info(s, inst.version_id).meta.get("reception_hours"))

    # --- actions ----------------------------------------------------------------------
    def start(self, process_id: str, data: dict, actor: str, *, version: int | None = None) -> ActionResult:
        if not actor:
            raise InvalidInput("an actor (user name) is required")
        now = self.clock.now()
        with self.uow() as s:
            result = self._start_in(s, process_id, data, actor, now, version=version)
        return self._committed(result)

    def _start_in(self, s, process_id, data, actor, now, *, version=None, extra=None) -> ActionResult:
        """Start a case inside session `s` (a new action's, or a handler's when one record is
        split into several cases). `extra` is data the engine adds after the intake form
        was checked (e.g. `split_from`)."""
        pv = self._version(s, process_id, version)
        data = self._intake(pv, data)
        initial = {**copy.deepcopy(pv.meta.get("initial_data") or {}), **data, **(extra or {})}
        inst = Instance(id=str(uuid.uuid4()), process_id=pv.process_id, version_id=pv.id, version=pv.version,
                        status="running", category=_short(initial.get("category")), received_at=now,
                        started_by=actor, updated_at=now, last_event_seq=0, step_count=0, id_counter=0)
        s.add(inst)    # written with the rest of the action (uow._write): new cases first
        spec, subs = pv.specs
        ids = IdSequence(inst.id)
        steplog = runtime.StepLog()
        with engine_context(now, ids):
            wf = BpmnWorkflow(spec, subs)
            wf.script_engine = self._engine(s, inst, steplog)
            runtime.begin(wf, initial)
            runtime.advance(wf, steplog)
        state_row = InstanceState(instance_id=inst.id, state="", state_hash="")
        s.add(state_row)
        driver = {"process_id": pv.process_id, "version": pv.version, "data": initial}
        return self._finish(s, Loaded(inst, pv, wf, ids, state_row, open_tasks={}), steplog, now, "started", actor,
                            driver, None)

    def check_intake(self, s, process_id, data, *, version=None) -> dict:
        """The intake data as the procedure's intake form accepts it, or InvalidInput."""
        return self._intake(self._version(s, process_id, version), data)

    def _intake(self, pv, data) -> dict:
        from .forms import validate_submission
        form = pv.meta.get("start_form")
        return validate_submission(pv.forms.get(form) if form else None, data, form or "", now=self.clock.now(),
                                   org=lambda: self.org)

    def complete_task(self, task_id: str, actor: str, data: dict, *, roles: set[str] | None = None,
                      expected_version: int | None = None) -> ActionResult:
        if not actor:
            raise InvalidInput("an actor (user name) is required")
        now = self.clock.now()
        try:
            with self.uow() as s:
                result = self._complete_in(s, task_id, actor, data, now, roles, expected_version)
        except Conflict as lost:
            if lost.race:       # the same task completed meanwhile: say so, not just "changed"
                with self.sessions() as s:
                    row = s.get(HumanTask, task_id)
                    if row is not None and row.status == "completed":
                        raise _already_completed(row) from None
            raise
        return self._committed(result)

    def _complete_in(self, s, task_id, actor, data, now, roles, expected_version) -> ActionResult:
        # The task, the case's other open task rows, the case row and its state, read by one
        # statement: one snapshot, so the task rows are those of the case version this action
        # checks at its flush (read apart, another action committing in between left a task it
        # had completed looking open here, and the sync below marked it cancelled over that
        # completion).
        read = s.execute(_COMPLETION_READ, {"task_id": task_id}).all()
        row = next((r for r, _, _ in read if r.id == task_id), None)
        if row is None:
            raise NotFound(msg("no_task_cli", task=task_id))
        case_rows = [r for r, _, _ in read]
        if row.status == "completed":
            raise _already_completed(row)
        if row.status != "open":
            raise Conflict(msg("task_not_open", task=row.name, id=task_id, status=Term(row.status)))
        refusal = task_refusal(row, actor, roles)      # not the user's role, or for another person
        if refusal is not None:
            raise NotAllowed(refusal)
        if row.claimed_by and row.claimed_by != actor:
            raise Conflict(msg("task_claimed", task=row.name, by=Person(row.claimed_by), at=row.claimed_at),
                           by=row.claimed_by, at=row.claimed_at)
        case = self._load(s, row.instance_id, now, expected_version, read=tuple(read[0][1:]))
        case.open_tasks = {r.id: r for r in case_rows if r.status == "open"}
        inst, pv, wf, ids = case.inst, case.pv, case.wf, case.ids
        task = wf.get_task_from_id(uuid.UUID(task_id))
        if task is None or not task.has_state(TaskState.READY):
            raise Conflict(msg("task_not_ready", task=row.name))
        from .forms import validate_submission
        from .review.facts import record_facts
        form = pv.meta["tasks"].get(row.task_spec, {}).get("form")
        data = validate_submission(pv.forms.get(form) if form else None, data, form or "", now=now,
                                   org=lambda: self.org)
        steplog = runtime.StepLog()
        with engine_context(now, ids):
            wf.script_engine = self._engine(s, inst, steplog)
            runtime.complete_user_task(wf, task_id, data)
            runtime.advance(wf, steplog)
        # completed in hand (so the task sync leaves it alone), written by the UPDATE below
        for key, value in (("status", "completed"), ("completed_at", now), ("completed_by", actor)):
            set_committed_value(row, key, value)
        record_facts(s, inst, pv.forms.get(form) if form else None, data, now)   # for statistics
        driver = {"task": row.task_spec, "name": row.name, "role": row.role, "data": data}
        result = self._finish(s, case, steplog, now, "task_completed", actor, driver, task_id)
        # A claim (inbox.claim_task, its own short transaction) may have been committed while
        # the engine ran: the task row is completed by one UPDATE on condition that it is still
        # free, after the unit of work's flush (the case row, its version checked). A claim that
        # came first wins and this action is rolled back; one that comes later finds it completed.
        def complete_unless_claimed(session):
            t = HumanTask.__table__
            done = session.execute(_COMPLETE_UNLESS_CLAIMED, {"b_id": task_id, "b_actor": actor, "b_at": now})
            if done.rowcount != 1:
                holder, since = session.execute(select(t.c.claimed_by, t.c.claimed_at).where(t.c.id == task_id)).one()
                raise Conflict(msg("task_claimed", task=row.name, by=Person(holder), at=since), by=holder, at=since)
        after_flush(s, complete_unless_claimed)
        return result

    def retry(self, instance_id: str, actor: str) -> ActionResult:
        now = self.clock.now()
        with self.uow() as s:
            case = self._load(s, instance_id, now)
            if not runtime.error_tasks(case.wf) and case.inst.status != "incident":
                raise Conflict(msg("no_incident", case=case.inst.case_number or case.inst.id))
            steplog = runtime.StepLog()
            with engine_context(now, case.ids):
                case.wf.script_engine = self._engine(s, case.inst, steplog)
                retried = runtime.retry_errors(case.wf)
                runtime.advance(case.wf, steplog)
            result = self._finish(s, case, steplog, now, "retry", actor, {"tasks": retried}, None)
        return self._committed(result)

    def send_message(self, instance_id: str, name: str, payload: dict, actor: str, *, roles: set[str] | None = None,
                     expected_version: int | None = None) -> ActionResult:
        """Deliver message `name` to a case waiting for it (docs/process-design.md, "Messages
        from outside"): checked against the waiting event's form, and, when `roles` is given
        (the web inbox, the API), refused to a user holding none of the roles that may record it."""
        if not actor:
            raise InvalidInput("an actor (user name) is required")
        if not isinstance(payload, dict):
            raise InvalidInput(msg("not_an_object"))
        now = self.clock.now()
        try:
            with self.uow() as s:
                result = self._message_in(s, instance_id, name, payload, actor, now, roles, expected_version)
        except Conflict as lost:
            if lost.race:       # the same message recorded meanwhile: say so, not just "changed"
                with self.sessions() as s:
                    ev = _newest_driver(s, instance_id)
                if ev is not None and ev.kind == "message_received" and (ev.payload or {}).get("message") == name:
                    raise Conflict(msg("message_done_by", event=ev.payload.get("name") or name, message=name,
                                       by=Person(ev.actor), at=ev.at), by=ev.actor, at=ev.at, race=True) from None
            raise
        return self._committed(result)

    def _message_in(self, s, instance_id, name, payload, actor, now, roles, expected_version) -> ActionResult:
        from .forms import validate_submission
        from .review.facts import record_facts
        case = self._load(s, instance_id, now, expected_version)
        ref = case.inst.case_number or case.inst.id
        waiting = messages.awaited(case.wf, case.pv.meta.get("start_role"))
        matching = [e for e in waiting if e.message == name]
        if not matching:
            raise Conflict(not_awaited(ref, name, waiting, messages.label_of(case.pv.specs, name)))
        event = matching[0]
        allowed = sorted({r for e in matching for r in e.roles})
        if roles is not None and not set(allowed) & set(roles):
            raise NotAllowed(msg("message_role", event=event.name, message=name, roles=[Role(r) for r in allowed],
                                 user=Person(actor)))
        data = payload
        for form in dict.fromkeys(e.form for e in matching if e.form):    # each declared form once
            data = validate_submission(case.pv.forms.get(form), data, form, now=now, org=lambda: self.org)
            record_facts(s, case.inst, case.pv.forms.get(form), data, now)
        steplog = runtime.StepLog()
        try:
            with engine_context(now, case.ids):
                case.wf.script_engine = self._engine(s, case.inst, steplog)
                runtime.deliver_message(case.wf, name, data)
                runtime.advance(case.wf, steplog)
        except runtime.WorkflowException:
            raise Conflict(not_awaited(ref, name, [])) from None
        # the role it was recorded in (the first allowed role the user holds; None for an operator)
        role = next((r for r in allowed if r in roles), None) if roles is not None else None
        driver = {"message": name, "payload": data, "element": event.element, "name": event.name, "form": event.form,
                  "role": role}
        return self._finish(s, case, steplog, now, "message_received", actor, driver, None)

    # --- shared action plumbing -----------------------------------------------------------
    def _breach(self, s, inst, fired, now) -> None:
        """The limits whose timers fired are breached (reminders are not limits)."""
        book = DeadlineBook(s, inst, self.calendar, self.clock)
        for timer in fired:
            name = timer.get("deadline")
            if name and not name.endswith(".remind"):
                book.breach(name, now, parse_instant(timer["due"]) if timer.get("due") else None)

    def _engine(self, s, inst, steplog):
        services = Services(clock=self.clock, case_numbers=DbCaseNumbers(self.engine), notifier=self.notifier,
                            case=InstanceSummary(inst), deadlines=DeadlineBook(s, inst, self.calendar_of(s, inst), self.clock),
                            cases=CaseStarter(self, s, inst))
        dispatcher = runtime.LiveDispatcher(self.handlers, services, inst.id, inst.process_id, steplog,
                                            timeout=self.handler_timeout)
        return ComplaintScriptEngine(dispatcher)

    def _load(self, s, instance_id, now, expected_version=None, read=None):
        """The case for an action dated `now` (the moment its events will carry). `read`: the
        case row and its state row, when the action read them with rows of its own."""
        inst, state = read or s.execute(_CASE_READ, {"instance_id": instance_id}).first() or (None, None)
        if inst is None:
            raise NotFound(msg("no_case", case=instance_id))
        if expected_version is not None and inst.row_version != expected_version:
            raise Conflict(msg("case_version", case=inst.case_number or inst.id, expected=expected_version,
                               actual=inst.row_version))
        if inst.status == "completed":
            raise Conflict(msg("case_closed", case=inst.case_number or inst.id))
        if now < inst.updated_at:
            raise InvalidInput(f"case {inst.case_number or inst.id} was last changed at {local_iso(inst.updated_at)}; "
                               f"an action dated {local_iso(now)} would come before it in the log — time only moves "
                               "forward; nothing was changed")
        s.info.setdefault("loaded", set()).add(inst.id)
        pv = self.version_info(s, inst.version_id)
        spec, subs = pv.specs
        wf = self.serializer.state_from_dict(json.loads(state.state), spec, subs)
        return Loaded(inst, pv, wf, IdSequence(inst.id, inst.id_counter), state, runtime.fired_timer_ids(wf))

    def _finish(self, s, case: Loaded, steplog, now, kind, actor, payload, task_id) -> ActionResult:
        inst, pv, wf, ids = case.inst, case.pv, case.wf, case.ids
        # what is stored of the tree (open tasks, incidents, next due) and, from the same pass, a
        # timer that fired inside this action, not on a tick (runtime.snapshot): it is logged
        # and breaches its limit exactly as a tick's would
        snap = runtime.snapshot(wf, fired_before=case.timers_fired)
        fired = snap.fired
        steplog.effects.extend(runtime.Effect("timer_fired", f, f["task_id"]) for f in fired)
        self._breach(s, inst, fired, now)
        # serialized once: the stored text (in tree order, runtime.state_text) and its hash
        state_json = runtime.state_text(self.serializer.state_to_dict(wf))
        digest = runtime.text_hash(state_json)
        if inst.step_count and not wf.is_completed():
            # an open case's state: one Core UPDATE after the flush (the ORM adds nothing to it)
            for key, value in (("state", state_json), ("state_hash", digest)):
                set_committed_value(case.state_row, key, value)
            after_flush(s, _state_update(inst.id, state_json, digest))
        else:   # a new case's row is inserted, a closing case's packed (compaction.py), by the ORM
            case.state_row.state, case.state_row.state_hash = state_json, digest
        inst.id_counter = ids.counter
        inst.step_count += 1
        inst.updated_at = now
        inst.next_due_at = snap.next_due
        errored = snap.errored
        had_incident = inst.status == "incident"
        last = getattr(wf, "last_task", None)
        department = _short((last.data if last is not None else {}).get("department"))
        if department and department != inst.department:      # the reviewer's search filters on it
            inst.department = department
        if wf.is_completed():
            inst.status = "completed"
            inst.closed_at = inst.closed_at or now
            pack_state(s, case)     # only its view and state hash are kept (compaction.py)
            if inst.handling_workdays is None:                 # statistics: average handling time
                inst.handling_workdays = self.calendar.working_days_between(
                    local_day(inst.received_at), local_day(inst.closed_at))
        else:
            inst.status = "incident" if errored else "running"

        writer = EventWriter.for_instance(s, inst, self.chain_key)
        writer.append(step=inst.step_count, kind=kind, at=now, actor=actor, task_id=task_id, payload=payload,
                      state_after=digest)
        for eff in steplog.effects:
            writer.append(step=inst.step_count, kind=eff.kind, at=now, actor="system", task_id=eff.task_id,
                          payload=eff.payload)
        if errored or had_incident:
            self._sync_incidents(s, inst, errored, writer, now)
        open_tasks, new_tasks = self._sync_tasks(s, inst, pv, wf, snap.ready_user, now, case.open_tasks)
        # webhooks, committed with the action
        outbox.record(s, inst, kind, payload, steplog.effects, now, new_tasks)
        if inst.lease_owner is not None:          # system work ends its lease with its commit
            inst.lease_owner, inst.lease_until = None, None
        return ActionResult(inst.id, inst.case_number, inst.status, open_tasks, [], inst.last_event_seq)

    def _committed(self, result: ActionResult) -> ActionResult:
        """The result as the caller sees it, after commit: with the case's open incidents."""
        if result.status == "incident":
            with self.sessions() as s:
                result.incidents = self._incidents(s, result.instance_id, open_only=True)
        return result

    def _sync_incidents(self, s, inst, errored, writer, now):
        open_rows = {r.task_id: r for r in s.execute(select(Incident).where(
            Incident.instance_id == inst.id, Incident.resolved_at.is_(None))).scalars()}
        errored_ids = set()
        for task in errored:
            tid = str(task.id)
            errored_ids.add(tid)
            info = task.internal_data.get("incident") or {}
            message = info.get("message") or "the task failed"
            if tid in open_rows:
                open_rows[tid].attempts += 1
                open_rows[tid].message = message
            else:
                s.add(Incident(instance_id=inst.id, task_id=tid, task_spec=task.task_spec.name,
                               handler=info.get("handler"), message=message, attempts=1, created_at=now))
            writer.append(step=inst.step_count, kind="incident", at=now, actor="system", task_id=tid,
                          payload={"task": task.task_spec.name, "handler": info.get("handler"), "message": message})
        for tid, row in open_rows.items():
            if tid not in errored_ids:
                row.resolved_at = now

    def _sync_tasks(self, s, inst, pv, wf, ready_user, now, open_rows=None):
        """The case's task rows brought in line with the engine's ready user tasks. Returns
        (the open tasks as dicts, the rows made for tasks new in this action): the new rows
        are written by one INSERT after the flush, so they are never in the session's `new`."""
        if open_rows is None:       # not read with the case (a tick, a retry, a message)
            open_rows = {r.id: r for r in s.execute(select(HumanTask).where(
                HumanTask.instance_id == inst.id, HumanTask.status == "open")).scalars()}
        ready = {str(t.id): t for t in ready_user}
        still_open, new_rows = [], []
        for tid, row in open_rows.items():
            if row.status != "open":        # completed by this very action
                continue
            if tid not in ready:
                row.status = "cancelled"
                row.completed_at = now
            else:
                if row.category != inst.category:
                    row.category = inst.category
                if row.priority != (priority := case_priority(ready[tid].data)):   # case data `priority`
                    row.priority = priority
                due_expression = pv.meta["tasks"].get(row.task_spec, {}).get("due")
                if due_expression:          # a limit extended, paused or recomputed moves the due time
                    _set_due(row, runtime.evaluate_due(wf, ready[tid], due_expression))
                still_open.append(row)
        for tid, task in ready.items():
            if tid in open_rows:
                continue
            meta = pv.meta["tasks"].get(task.task_spec.name, {})
            row = HumanTask(id=tid, instance_id=inst.id, process_id=inst.process_id, task_spec=task.task_spec.name,
                            name=meta.get("name") or task.task_spec.bpmn_name or task.task_spec.name,
                            role=meta.get("role") or task.task_spec.lane, form=meta.get("form"), status="open",
                            created_at=now, deadline=runtime.deadline_name(meta.get("due")), category=inst.category,
                            priority=case_priority(task.data))
            _set_due(row, runtime.evaluate_due(wf, task, meta.get("due")))
            if meta.get("assign_to"):       # a task for one person (engine/org.py)
                self._assign(s, inst, row, meta["assign_to"], task.data, now)
            new_rows.append(row)
            still_open.append(row)
        if new_rows:        # one INSERT (executemany) after the flush; the ORM adds nothing here
            columns = HumanTask.__table__.columns
            after_flush(s, lambda session: session.execute(
                _TASK_INSERT, [{c.key: getattr(r, c.key) for c in columns} for r in new_rows]))
        still_open.sort(key=lambda r: (r.created_at, r.task_spec))
        return [task_dict(r) for r in still_open], new_rows

    def _assign(self, s, inst, row, rule, data, now) -> None:
        """Give a new task to the person its `assignTo` names (the login in `row.assignee`).
        When there is no such person, or they have no login, the task stays with its lane's
        role; either way the case's log says so (a `task_assigned` event)."""
        from .org import AssignRule, Unassignable
        payload = {"task": row.task_spec, "name": row.name, "assign_to": rule}
        try:
            person, row.assignee = AssignRule.parse(rule).resolve(self.org, data)
            payload |= {"assignee": row.assignee, "person": person.id, "person_name": person.name}
        except Unassignable as err:
            payload |= {"assignee": None, "reason": err.reason}
        EventWriter.for_instance(s, inst, self.chain_key).append(
            step=inst.step_count, kind="task_assigned", at=now, actor="system", task_id=row.id, payload=payload)

    def replay(self, instance_id: str, *, until: int | None = None):
        from .replay import replay_instance
        with self.sessions() as s:
            inst = self._find_case(s, instance_id)
            return replay_instance(self, s, inst, until=until)


def after_flush(s, write) -> None:
    """Run `write(session)` in the action's unit of work after its flush (the case row written,
    its row version checked: `uow`) and its events; it may still refuse, and all is rolled back."""
    s.info.setdefault("after_flush_checks", []).append(write)


# The statements of every action, built once (building one costs about as much as running it).
_COMPLETION_READ = select(HumanTask, Instance, InstanceState).join(
    Instance, Instance.id == HumanTask.instance_id).outerjoin(     # a closed case has no state row
    InstanceState, InstanceState.instance_id == Instance.id).where(
    HumanTask.instance_id == select(HumanTask.instance_id).where(HumanTask.id == bindparam("task_id")).scalar_subquery(),
    or_(HumanTask.status == "open", HumanTask.id == bindparam("task_id")))
_CASE_READ = select(Instance, InstanceState).outerjoin(
    InstanceState, InstanceState.instance_id == Instance.id).where(Instance.id == bindparam("instance_id"))
_TASKS = HumanTask.__table__
_COMPLETE_UNLESS_CLAIMED = update(_TASKS).where(
    _TASKS.c.id == bindparam("b_id"), or_(_TASKS.c.claimed_by.is_(None), _TASKS.c.claimed_by == bindparam("b_actor"))
).values(status="completed", completed_at=bindparam("b_at"), completed_by=bindparam("b_actor"))
_TASK_INSERT = insert(_TASKS)
_STATES = InstanceState.__table__
_STATE_UPDATE = update(_STATES).where(_STATES.c.instance_id == bindparam("b_id")).values(
    state=bindparam("b_state"), state_hash=bindparam("b_hash"))
_CASES = Instance.__table__
_CASE_COLUMNS = frozenset(c.key for c in _CASES.columns) - {"row_version"}
_case_updates: dict[tuple[str, ...], object] = {}


def write_case_rows(session) -> None:
    """Each case row the action changed, by one Core `UPDATE … WHERE row_version = ?` (what the
    ORM's flush of `version_id_col` does, without its unit-of-work machinery): a case another
    action changed meanwhile matches no row, and the action is a lost race (`StaleDataError`,
    as from the ORM; `uow` makes it a Conflict naming who won). New cases are the ORM's."""
    for obj in [o for o in session.dirty if isinstance(o, Instance)]:
        state = sa_inspect(obj)
        changed = tuple(sorted(_CASE_COLUMNS - state.unmodified))
        if not changed:
            continue
        stmt = _case_updates.get(changed)
        if stmt is None:
            stmt = _case_updates[changed] = update(_CASES).where(
                _CASES.c.id == bindparam("b_id"), _CASES.c.row_version == bindparam("b_version")).values(
                {**{key: bindparam(f"b_{key}", type_=_CASES.c[key].type) for key in changed},
                 "row_version": bindparam("b_next")})
        version = obj.row_version
        params = {f"b_{key}": getattr(obj, key) for key in changed}
        if session.execute(stmt, {**params, "b_id": obj.id, "b_version": version, "b_next": version + 1}).rowcount != 1:
            raise StaleDataError(f"case {obj.id}: row version {version} was changed by another action")
        set_committed_value(obj, "row_version", version + 1)
        # written: the row as the ORM's own flush leaves one it wrote (its changes committed, off
        # the session's list of modified objects), so neither a flush nor the commit's goes over it
        # (SQLAlchemy has no public call for this; pinned <2.2 in pyproject.toml)
        state._commit_all(state.dict, session.identity_map)


def _state_update(instance_id: str, text: str, digest: str):
    return lambda session: session.execute(_STATE_UPDATE, {"b_id": instance_id, "b_state": text, "b_hash": digest})


def _newest_driver(s, instance_id: str) -> Event | None:
    """The case's newest action (its driver event: who did what, when)."""
    return s.execute(select(Event).where(Event.instance_id == instance_id, Event.state_after.is_not(None))
                     .order_by(Event.seq.desc()).limit(1)).scalar_one_or_none()


def _already_completed(row: HumanTask) -> Conflict:
    return Conflict(msg("task_done_by", task=row.name, id=row.id, by=Person(row.completed_by), at=row.completed_at),
                    by=row.completed_by, at=row.completed_at)


def _set_due(row: HumanTask, due) -> None:
    if row.due_at != due:
        row.due_at = due
    if row.due_sort != (due or NO_DUE):
        row.due_sort = due or NO_DUE


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds, not '{raw}'") from None
    if value < 0:
        raise InvalidInput(f"{name} must be 0 (no limit) or more seconds, not {raw}")
    return value


def _short(value):
    return None if value is None else str(value)[:100]
