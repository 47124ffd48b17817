"""The read side of the service layer: task lists, case summaries, history.

Everything here reads indexed rows; nothing deserializes engine state (a test makes that
raise while these run). `ComplaintService` inherits these methods.
"""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select, union_all

from .deadlines import DeadlineBook
from .errors import NotFound
from .models import Event, HumanTask, Incident, Instance
from .views import case_dict, case_not_found, deadline_dict, incident_dict, task_dict


class CaseQueries:
    """Needs `sessions`, `calendar`, `clock` and `version_info` from the service."""

    def _open_tasks(self, s, instance_id):
        rows = s.execute(select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.status == "open")
                         .order_by(HumanTask.created_at, HumanTask.task_spec)).scalars()
        return [task_dict(r) for r in rows]

    def _incidents(self, s, instance_id, open_only=False):
        q = select(Incident).where(Incident.instance_id == instance_id)
        if open_only:
            q = q.where(Incident.resolved_at.is_(None))
        return [incident_dict(r) for r in s.execute(q.order_by(Incident.id)).scalars()]

    def list_tasks(self, *, role: str | None = None, instance_id: str | None = None,
                   roles: set[str] | None = None, user: str | None = None, limit: int = 500) -> list[dict]:
        """Open tasks, by priority (P1 first), then due, then creation. With `roles` (what a user
        may do): those roles' tasks for no one person, and with `user` the tasks assigned to that
        user whatever their role.

        For a role (or roles) each role's first `limit` tasks are read in that order from the
        inbox index and merged, as `inbox()` does, so the list never sorts all of a role's
        tasks: it costs the same at 1,000 cases or 1,000,000 (bench/bench_million.py)."""
        order = (HumanTask.priority, HumanTask.due_sort, HumanTask.created_at, HumanTask.id)
        mine = HumanTask.assignee.is_(None) if roles is not None else None
        if role:
            wanted = [role] if roles is None or role in roles else []
        else:
            wanted = None if roles is None else sorted(roles)
        if instance_id or wanted is None:       # one case's few tasks, or every open task
            q = select(HumanTask.id).where(HumanTask.status == "open")
            if instance_id:
                q = q.where(HumanTask.instance_id == instance_id)
            if wanted is not None:
                theirs = and_(HumanTask.role.in_(wanted), mine) if mine is not None else HumanTask.role.in_(wanted)
                q = q.where(or_(theirs, HumanTask.assignee == user) if user else theirs)
            streams = [q]
        else:                                   # one stream per role, and the user's own tasks
            streams = [select(HumanTask.id).where(HumanTask.status == "open", HumanTask.role == r,
                                                   *([mine] if mine is not None else [])) for r in wanted]
            if user and roles is not None:
                streams.append(select(HumanTask.id).where(HumanTask.status == "open", HumanTask.assignee == user,
                                                          *([HumanTask.role == role] if role else [])))
        if not streams:
            return []
        firsts = [st.order_by(*order).limit(limit).subquery() for st in streams]
        ids = union_all(*[select(f.c.id) for f in firsts]) if len(firsts) > 1 else select(firsts[0].c.id)
        task = HumanTask.__table__
        q = (select(*task.c, Instance.case_number).join(Instance, Instance.id == task.c.instance_id)
             .where(task.c.id.in_(ids)).order_by(*order).limit(limit))
        with self.sessions() as s:        # plain rows, not ORM objects: a list of 500 costs a third
            return [dict(task_dict(t), case_number=t.case_number) for t in s.execute(q).all()]

    def get_task(self, task_id: str) -> dict:
        with self.sessions() as s:
            row = s.get(HumanTask, task_id)
            if row is None:
                raise NotFound(f"there is no task '{task_id}'")
            return task_dict(row)

    def task_form(self, task_id: str) -> dict | None:
        with self.sessions() as s:
            row = s.get(HumanTask, task_id)
            if row is None:
                raise NotFound(f"there is no task '{task_id}'")
            inst = s.get(Instance, row.instance_id)
            return self.version_info(s, inst.version_id).forms.get(row.form) if row.form else None

    def list_cases(self, *, process_id: str | None = None, status: str | None = None, limit: int = 200) -> list[dict]:
        q = select(Instance)
        if process_id:
            q = q.where(Instance.process_id == process_id)
        if status:
            q = q.where(Instance.status == status)
        with self.sessions() as s:
            return [case_dict(i) for i in s.execute(q.order_by(Instance.received_at.desc()).limit(limit)).scalars()]

    def show(self, instance_id: str) -> dict:
        with self.sessions() as s:
            inst = self._find_case(s, instance_id)
            out = case_dict(inst)
            out["open_tasks"] = self._open_tasks(s, inst.id)
            out["incidents"] = self._incidents(s, inst.id)
            out["completed_tasks"] = [task_dict(r) for r in s.execute(
                select(HumanTask).where(HumanTask.instance_id == inst.id, HumanTask.status != "open")
                .order_by(HumanTask.completed_at)).scalars()]
            now = self.clock.now()
            out["deadlines"] = [deadline_dict(d, now) for d in DeadlineBook(s, inst, self.calendar, self.clock).rows()]
            return out

    def resolve_case(self, ref: str) -> str:
        """The instance id of a case given by instance id or case number."""
        with self.sessions() as s:
            return self._find_case(s, ref).id

    def count_open_tasks(self, *, roles: set[str] | None = None) -> int:
        q = select(func.count()).select_from(HumanTask).where(HumanTask.status == "open")
        if roles is not None:
            q = q.where(HumanTask.role.in_(roles))
        with self.sessions() as s:
            return s.execute(q).scalar()

    def _find_case(self, s, ref: str) -> Instance:
        inst = s.get(Instance, ref)
        if inst is None:
            inst = s.execute(select(Instance).where(Instance.case_number == ref)).scalar_one_or_none()
        if inst is None:
            raise case_not_found(ref)
        return inst

    def history(self, instance_id: str, after: int | None = None) -> list[dict]:
        """The case's events, oldest first. `after`: only those after that one (its seq), the
        events appended since a page read the log up to it; `instance_id` is then the id of a
        case the caller has read (not a case number), and the case is not looked up again."""
        from .eventlog import event_dict
        with self.sessions() as s:
            case_id = self._find_case(s, instance_id).id if after is None else instance_id
            # plain rows, not model objects: nothing changes them (the case page reads them)
            q = select(Event.__table__).where(Event.instance_id == case_id)
            rows = s.execute((q if after is None else q.where(Event.seq > after)).order_by(Event.seq))
            return [event_dict(e) for e in rows]
