"""What the staff inbox needs from the service layer: role inboxes with filters and counts,
claiming and releasing tasks, the case page (data, path through the diagram), and the
access log. `ComplaintService` inherits these methods.

The inbox lists read indexed rows only (human_tasks joined to instances and deadlines);
the case page of one case deserializes that one case's engine state, read-only.
"""

from __future__ import annotations

import json
from functools import lru_cache
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, union_all, update
from SpiffWorkflow.util.task import TaskState

from . import messages
from .clock import iso
from .compaction import read_view, state_text
from .errors import Conflict, InvalidInput, NotAllowed, NotFound, Person, Term, msg
from .org import task_refusal
from .models import AccessLog, ClosedCase, Deadline, HumanTask, Instance, InstanceState, ProcessVersion
from .priority import LEVELS as PRIORITY_LEVELS
from .replay import latest_data
from .views import task_dict

INBOX_STATUSES = ("all", "mine", "unclaimed", "overdue", "provisional")
PAGE_MAX = 200
# counts stop here (shown as 99+, as a phone shows unread messages): counting all of a role's
# 100,000 tasks would cost 1,000 times counting 100, and "more than 99" is what a person reads
# from such a number; docs/performance.md
COUNT_CAP = 100


@dataclass
class InboxPage:
    tasks: list[dict]
    total: int
    limit: int
    offset: int
    capped: bool = False      # total is a lower bound: some stream had COUNT_CAP tasks or more


class InboxMixin:
    """Needs `sessions`, `uow`, `clock`, `serializer`, `version_info` from the service."""

    # --- the inbox -----------------------------------------------------------------------
    def inbox(self, *, roles: set[str], user: str | None = None, process_id: str | None = None,
              category: str | None = None, status: str = "all", limit: int = 50, offset: int = 0) -> InboxPage:
        """Open tasks of `roles`, by priority (P1 first), then soonest due first (tasks without
        a due time last).

        Each role's tasks are read in that order straight from the index (status, role,
        priority, due_sort); the page is the first `offset + limit` of each role merged. So a page
        costs about the same with a hundred open cases or a hundred thousand."""
        if status not in INBOX_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(INBOX_STATUSES)}, not '{status}'")
        if not 1 <= limit <= PAGE_MAX or offset < 0:
            raise InvalidInput(f"limit must be 1..{PAGE_MAX} and offset 0 or more")
        now = self.clock.now()
        deadline_join = and_(Deadline.instance_id == HumanTask.instance_id, Deadline.name == HumanTask.deadline)

        def filtered(q, *owner):        # owner: the role's tasks, or those assigned to the user
            q = q.where(HumanTask.status == "open", *owner)
            if process_id:
                q = q.where(HumanTask.process_id == process_id)
            if category:
                q = q.where(HumanTask.category == category)
            if status == "mine":
                q = q.where(HumanTask.claimed_by == user)
            elif status == "unclaimed":
                q = q.where(HumanTask.claimed_by.is_(None))
            elif status == "overdue":
                q = q.where(HumanTask.due_sort <= now)
            elif status == "provisional":
                q = q.join(Deadline, deadline_join).where(Deadline.provisional.is_(True))
            return q

        roles = sorted(roles)
        if not roles and not user:
            return InboxPage([], 0, limit, offset)
        # one stream per role (its tasks for no one person), and one of the tasks assigned to
        # the user whatever their roles (engine/org.py): a task for a person is in their inbox only
        owners = [(HumanTask.role == r, HumanTask.assignee.is_(None)) for r in roles]
        owners += [(HumanTask.assignee == user,)] if user else []
        firsts = [filtered(select(HumanTask.id, HumanTask.priority, HumanTask.due_sort), *owner)
                  .order_by(HumanTask.priority, HumanTask.due_sort, HumanTask.id).limit(offset + limit).subquery()
                  for owner in owners]
        merged = union_all(*[select(f.c.id, f.c.priority, f.c.due_sort) for f in firsts]).subquery()
        page_ids = (select(merged.c.id).order_by(merged.c.priority, merged.c.due_sort, merged.c.id)
                    .limit(limit).offset(offset))
        q = (select(HumanTask, Instance.case_number, Instance.category, Instance.legal_state,
                    Deadline.provisional, Deadline.status, Deadline.unit, Deadline.last_day)
             .join(Instance, Instance.id == HumanTask.instance_id)
             .outerjoin(Deadline, deadline_join)
             .where(HumanTask.id.in_(page_ids))
             .order_by(HumanTask.priority, HumanTask.due_sort, HumanTask.id))
        # each stream counted up to the cap, and at least one row past this page (so "next" is
        # right on deep pages): a total costs the same at any size (shown as 99+)
        cap = max(COUNT_CAP, offset + limit + 1)
        counts = [select(func.count()).select_from(filtered(select(HumanTask.id), *owner).limit(cap).subquery())
                  .scalar_subquery() for owner in owners]
        with self.sessions() as s:
            rows = s.execute(q).all()
            found = s.execute(select(*counts)).one()
        total, capped = sum(found), any(n >= cap for n in found)
        tasks = []
        for t, case_number, cat, legal_state, provisional, deadline_status, unit, last_day in rows:
            # unit and last_day: how the due time reads (the last day of a day-based limit)
            tasks.append(dict(task_dict(t), case_number=case_number, category=cat, legal_state=legal_state,
                              claimed_by=t.claimed_by, claimed=iso(t.claimed_at), deadline=t.deadline,
                              overdue=bool(t.due_at and t.due_at <= now), provisional=bool(provisional),
                              deadline_status=deadline_status, unit=unit, last_day=last_day))
        return InboxPage(tasks, total, limit, offset, capped)

    def inbox_counts(self, roles: set[str]) -> dict[str, dict]:
        """Open and overdue tasks per role, each counted up to COUNT_CAP (the page shows 99+);
        `open_capped` / `overdue_capped` say a count reached it.

        A count reads at most COUNT_CAP entries of the role's index, so the panel costs the
        same with a hundred open tasks or a million; overdue ones are sought per priority
        (P1, P2, P3 each up to now) in the same index."""
        now = self.clock.now()
        roles = sorted(roles)
        # a task assigned to one person is not the role's (it is not in the role's list either);
        # `assignee || ''` so that the database walks the role's index, not the assignee's
        # (whose NULL entries are every role's tasks)
        unassigned = HumanTask.assignee.op("||")("").is_(None)
        cols = [c for r in roles for c in (
            _capped(HumanTask.role == r, unassigned),
            _capped(HumanTask.role == r, unassigned, HumanTask.priority.in_(PRIORITY_LEVELS),
                    HumanTask.due_sort <= now))]
        if not cols:
            return {}
        with self.sessions() as s:
            found = s.execute(select(*cols)).one()
        # *_capped: the count reached the cap, so it is a lower bound (the page shows 99+)
        return {r: {"open": found[2 * i], "overdue": found[2 * i + 1], "open_capped": found[2 * i] >= COUNT_CAP,
                    "overdue_capped": found[2 * i + 1] >= COUNT_CAP} for i, r in enumerate(roles)}

    # --- claims ------------------------------------------------------------------------------
    def claim_task(self, task_id: str, user: str, *, roles: set[str] | None = None) -> dict:
        """Take a task so that colleagues do not work on it at the same time. Atomic: of two
        users claiming at once exactly one gets it; the other is told who holds it."""
        now = self.clock.now()
        with self.sessions() as s:
            row = self._open_task_row(s, task_id, user, roles)
            self._claimed_by_other(row, user)
            t = HumanTask.__table__
            done = s.execute(update(t).where(t.c.id == task_id, t.c.status == "open",
                                             or_(t.c.claimed_by.is_(None), t.c.claimed_by == user))
                             .values(claimed_by=user, claimed_at=now))
            s.commit()
            if done.rowcount != 1:       # someone else claimed (or completed) it meanwhile
                s.expire_all()
                row = self._open_task_row(s, task_id, user, roles)
                self._claimed_by_other(row, user)
            return task_dict(row) | {"claimed_by": user, "claimed": iso(now)}

    def release_task(self, task_id: str, user: str, *, roles: set[str] | None = None) -> dict:
        with self.sessions() as s:
            row = self._open_task_row(s, task_id, user, roles)
            t = HumanTask.__table__
            done = s.execute(update(t).where(t.c.id == task_id, t.c.claimed_by == user)
                             .values(claimed_by=None, claimed_at=None))
            s.commit()
            if done.rowcount != 1:
                s.expire_all()
                row = self._open_task_row(s, task_id, user, roles)
                said = (msg("release_other", task=row.name, by=Person(row.claimed_by)) if row.claimed_by
                        else msg("release_unclaimed", task=row.name))
                raise Conflict(said, by=row.claimed_by, at=row.claimed_at)
            return task_dict(row) | {"claimed_by": None, "claimed": None}

    @staticmethod
    def _claimed_by_other(row, user):
        if row.claimed_by and row.claimed_by != user:
            raise Conflict(msg("task_claimed", task=row.name, by=Person(row.claimed_by), at=row.claimed_at),
                           by=row.claimed_by, at=row.claimed_at)

    def _open_task_row(self, s, task_id, user, roles):
        row = s.get(HumanTask, task_id)
        if row is None:
            raise NotFound(msg("no_task", task=task_id))
        refusal = task_refusal(row, user, roles)     # not the user's role, or for another person
        if refusal is not None:
            raise NotAllowed(refusal)
        if row.status != "open":
            said = (msg("task_closed_by", task=row.name, status=Term(row.status), by=Person(row.completed_by),
                        at=row.completed_at) if row.completed_by else
                    msg("task_closed", task=row.name, status=Term(row.status)))
            raise Conflict(said, by=row.completed_by, at=row.completed_at)
        return row

    # --- the case page ---------------------------------------------------------------------
    def case_detail(self, instance_id: str) -> dict:
        """What the case page shows beyond `show`: the case data as it stands, the path
        through the diagram (elements done, elements waiting now, sequence flows taken) and
        the messages from outside it waits for (engine/messages.py). A closed case's data and
        path are read from what was kept of it when it closed (compaction.py)."""
        with self.sessions() as s:
            inst = self._find_case(s, instance_id)
            pv = self.version_info(s, inst.version_id)
            kept = s.get(ClosedCase, inst.id) if inst.status == "completed" else None
            if kept is not None:
                view, awaited = read_view(s, kept), []
            else:
                wf = self._read_state(s, inst, pv)
                view, awaited = case_view(wf), _awaited(inst, pv, wf)
            xml = s.execute(select(ProcessVersion.bpmn_xml).where(ProcessVersion.id == pv.id)).scalar_one()
            return {"data": view["data"], "path": path_of(view, xml), "bpmn_xml": xml, "forms": pv.forms,
                    "meta": pv.meta, "awaited": awaited, "message_labels": messages.labels(pv.specs)}

    def awaited_messages(self, ref: str) -> list[dict]:
        """The messages from outside the case waits for now: message, element, name, form, roles."""
        with self.sessions() as s:
            inst = self._find_case(s, ref)
            if inst.status == "completed":             # a closed case waits for none
                return []
            pv = self.version_info(s, inst.version_id)
            return _awaited(inst, pv, self._read_state(s, inst, pv))

    def _read_state(self, s, inst, pv):
        """The engine state of one case that keeps it (an open case, or one closed before
        schema 0010 and not compacted yet), read-only."""
        state = s.get(InstanceState, inst.id)
        return self.serializer.state_from_dict(json.loads(state_text(state)), *pv.specs)

    def case_roles(self, instance_id: str) -> tuple[str, set[str]]:
        """The case's instance id and every role that has or had a task in it."""
        with self.sessions() as s:
            inst = self._find_case(s, instance_id)
            roles = set(s.execute(select(HumanTask.role).where(HumanTask.instance_id == inst.id).distinct()).scalars())
            return inst.id, {r for r in roles if r}

    def process_info(self, process_id: str) -> dict:
        """The newest deployed version of a process: its name, meta (roles, forms) and forms."""
        with self.sessions() as s:
            pv = self._version(s, process_id)      # cached per version: no further query
        return _process_info(pv)

    def newest_processes(self) -> list[dict]:
        """`process_info` of every deployed process, by id, from one query (the inbox page lists
        each procedure; a query per procedure, twice, was a third of the page's time)."""
        with self.sessions() as s:
            rows = s.execute(select(ProcessVersion.id, ProcessVersion.process_id)
                             .order_by(ProcessVersion.process_id, ProcessVersion.version)).all()
            newest = {pid: vid for vid, pid in rows}            # the last of each process is its newest
            return [_process_info(self.version_info(s, newest[pid])) for pid in sorted(newest)]

    # --- access log ----------------------------------------------------------------------------
    def log_access(self, user: str, action: str, target: str | None, allowed: bool, reason: str | None = None):
        with self.uow() as s:
            s.add(AccessLog(at=self.clock.now(), user=user or "(anonymous)", action=action, target=target,
                            allowed=allowed, reason=reason))

    def access_log(self, *, refused_only: bool = False, limit: int = 200) -> list[dict]:
        q = select(AccessLog)
        if refused_only:
            q = q.where(AccessLog.allowed.is_(False))
        with self.sessions() as s:
            rows = s.execute(q.order_by(AccessLog.id.desc()).limit(limit)).scalars()
            return [{"at": iso(r.at), "user": r.user, "action": r.action, "target": r.target,
                     "allowed": r.allowed, "reason": r.reason} for r in rows]


def _process_info(pv) -> dict:
    return {"process_id": pv.process_id, "version": pv.version, "name": pv.meta.get("name") or pv.process_id,
            "meta": pv.meta, "forms": pv.forms}


def _capped(*where):
    """The number of open tasks matching `where`, counted up to COUNT_CAP (a LIMITed subquery)."""
    rows = select(HumanTask.id).where(HumanTask.status == "open", *where).limit(COUNT_CAP).subquery()
    return select(func.count()).select_from(rows).scalar_subquery()


def _awaited(inst, pv, wf) -> list[dict]:
    if inst.status == "completed":
        return []
    return [e.as_dict() for e in messages.awaited(wf, pv.meta.get("start_role"))]


def case_view(wf) -> dict:
    """What the case page reads of the engine state: the case data and the path (`_walk`).
    A closed case keeps this, not its state (compaction.py)."""
    return {"data": latest_data(wf), **_walk(wf)}


def _path(wf, bpmn_xml: str) -> dict:
    return path_of(_walk(wf), bpmn_xml)


def _walk(wf) -> dict:
    """The path as the elements reached (sorted), the indexes of those done and of those
    waiting now, and the steps taken between them as index pairs (`path_of` turns them into
    sequence flows)."""
    done, current, steps = set(), set(), set()
    for task in wf.get_tasks():
        element = getattr(task.task_spec, "bpmn_id", None)
        if not element:
            continue
        if task.has_state(TaskState.COMPLETED):
            done.add(element)
        elif task.has_state(TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR):
            current.add(element)
        else:
            continue
        parent = task.parent
        while parent is not None and not getattr(parent.task_spec, "bpmn_id", None):
            parent = parent.parent
        if parent is not None:
            steps.add((parent.task_spec.bpmn_id, element))
    elements = sorted(done | current | {e for step in steps for e in step})
    index = {e: i for i, e in enumerate(elements)}
    return {"elements": elements, "done": sorted(index[e] for e in done - current),
            "current": sorted(index[e] for e in current), "steps": sorted([index[a], index[b]] for a, b in steps)}


def path_of(view: dict, bpmn_xml: str) -> dict:
    """Elements done and current, and the flows taken, from a `case_view`: a task's parent
    (skipping engine-internal specs) is the element it came from."""
    flow_ids, elements = _flow_ids(bpmn_xml), view["elements"]
    steps = ((elements[a], elements[b]) for a, b in view["steps"])
    return {"done": [elements[i] for i in view["done"]], "current": [elements[i] for i in view["current"]],
            "flows": sorted({flow_ids[step] for step in steps if step in flow_ids})}


@lru_cache(maxsize=32)
def _flow_ids(bpmn_xml: str) -> dict:
    """(source, target) -> sequence flow id, once per process version's BPMN text (a version
    never changes once deployed); callers only read the mapping."""
    from lxml import etree
    root = etree.fromstring(bpmn_xml.encode("utf-8"))
    return {(f.get("sourceRef"), f.get("targetRef")): f.get("id")
            for f in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}sequenceFlow")}
