"""The task list and one case read straight from a SQLite store with the standard library's
`sqlite3`, for the command line's `tasks` and `show`: no SQLAlchemy, no models, which together
cost a read command most of its start (docs/performance.md, "How fast the command starts").

It reads the same rows as the service (`CaseQueries.list_tasks`, `CaseQueries.show`,
`awaited_messages`) and makes the same dicts (`views`); tests/test_cli_start.py checks that
both give the same tasks in the same order and the same case. The engine (SpiffWorkflow and
the version's spec) is loaded only for a case that waits at an event, to find the messages
it waits for. It is used only where it cannot differ: a SQLite file named by a plain
`sqlite:///PATH` URL that exists and whose schema is current (`db.SCHEMA_HEAD`). Anything
else (PostgreSQL, a new or older database, which the service migrates) goes through the
service. The file is opened read-only, so a read command never writes the store.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from .clock import Clock, SystemClock
from .db import SCHEMA_HEAD, database_url
from .views import case_dict, case_not_found, deadline_dict, incident_dict, task_dict

WAITING = 8          # SpiffWorkflow's TaskState.WAITING, as a serialized task's state holds it (a test checks)


def _utc(value: bytes) -> datetime:
    """A DATETIME column as SQLAlchemy stores it on SQLite (UTC, no offset), as models.UTCDateTime
    returns it: timezone-aware."""
    return datetime.fromisoformat(value.decode()).replace(tzinfo=timezone.utc)


sqlite3.register_converter("DATETIME", _utc)     # applies only to connections asking for it (below)
sqlite3.register_converter("BOOLEAN", lambda value: value != b"0")      # as SQLAlchemy's Boolean reads it


def _attributes(cursor, row) -> SimpleNamespace:
    """A row whose columns are attributes, as the views' functions read a model row."""
    return SimpleNamespace(**{d[0]: value for d, value in zip(cursor.description, row)})


class SqliteReads:
    """Reads of one SQLite store, each on a read-only connection of its own."""

    def __init__(self, path: Path, clock: Clock | None = None):
        self.uri = f"{path.resolve().as_uri()}?mode=ro"
        self.clock = clock or SystemClock()          # the moment a limit counts as overdue, as the service's

    @classmethod
    def open(cls, url: str | None, clock: Clock | None = None) -> "SqliteReads | None":
        """The store at `url` (default: the service's), or None when it is not a SQLite file
        that exists with the current schema."""
        url = database_url(url)
        prefix = "sqlite:///"
        path = url[len(prefix):]
        if not url.startswith(prefix) or not path or path.startswith(":") or any(c in path for c in "?%#"):
            return None
        reads = cls(Path(path), clock)
        try:
            with reads._connect() as conn:
                heads = [r.version_num for r in conn.execute("SELECT version_num FROM alembic_version")]
        except sqlite3.Error:            # no such file, no alembic_version yet, not a database
            return None
        return reads if heads == [SCHEMA_HEAD] else None

    def _connect(self):
        conn = sqlite3.connect(self.uri, uri=True, timeout=30, detect_types=sqlite3.PARSE_DECLTYPES)
        conn.row_factory = _attributes
        return closing(conn)

    def list_tasks(self, *, role: str | None = None, instance_id: str | None = None, limit: int = 500) -> list[dict]:
        """Open tasks (of `role`, of one case), by priority, then due: `CaseQueries.list_tasks`."""
        where, params = ["human_tasks.status = 'open'"], []
        if role:
            where.append("human_tasks.role = ?")
            params.append(role)
        if instance_id:
            where.append("human_tasks.instance_id = ?")
            params.append(instance_id)
        sql = ("SELECT human_tasks.*, instances.case_number FROM human_tasks "
               "JOIN instances ON instances.id = human_tasks.instance_id "
               f"WHERE {' AND '.join(where)} "
               "ORDER BY human_tasks.priority, human_tasks.due_sort, human_tasks.created_at, human_tasks.id LIMIT ?")
        with self._connect() as conn:
            return [dict(task_dict(r), case_number=r.case_number) for r in conn.execute(sql, [*params, limit])]

    def show(self, ref: str) -> dict:
        """One case (REF: instance id or case number) with its open, completed and cancelled
        tasks, incidents and limits: `CaseQueries.show`."""
        with self._connect() as conn:
            inst = self._find_case(conn, ref)
            rows = lambda sql: conn.execute(sql, (inst.id,))        # noqa: E731
            out = case_dict(inst)
            out["open_tasks"] = [task_dict(r) for r in rows(
                "SELECT * FROM human_tasks WHERE instance_id = ? AND status = 'open' ORDER BY created_at, task_spec")]
            out["incidents"] = [incident_dict(r) for r in rows("SELECT * FROM incidents WHERE instance_id = ? ORDER BY id")]
            out["completed_tasks"] = [task_dict(r) for r in rows(
                "SELECT * FROM human_tasks WHERE instance_id = ? AND status != 'open' ORDER BY completed_at")]
            now = self.clock.now()
            out["deadlines"] = [deadline_dict(r, now) for r in rows("SELECT * FROM deadlines WHERE instance_id = ? ORDER BY id")]
            return out

    def awaited_messages(self, ref: str) -> list[dict]:
        """The messages from outside the case waits for now: `awaited_messages` of the service.
        A closed case waits for none, nor does a case none of whose tasks waits: neither loads
        the engine."""
        with self._connect() as conn:
            inst = self._find_case(conn, ref)
            if inst.status == "completed":
                return []
            row = conn.execute("SELECT * FROM instance_states WHERE instance_id = ?", (inst.id,)).fetchone()
            if not row.state:                        # packed, as a closed case's was: compaction's reader
                from .compaction import state_text
                row.state = state_text(row)
            state = json.loads(row.state)
            if not any(t["state"] == WAITING for wf in (state, *state["subprocesses"].values())
                       for t in wf["tasks"].values()):
                return []
            version = conn.execute("SELECT specs, meta FROM process_versions WHERE id = ?", (inst.version_id,)).fetchone()
        from . import messages
        from .serializer import Serializer
        serializer = Serializer()
        wf = serializer.state_from_dict(state, *serializer.specs_from_dict(json.loads(version.specs), owned=True))
        return [e.as_dict() for e in messages.awaited(wf, json.loads(version.meta).get("start_role"))]

    @staticmethod
    def _find_case(conn, ref: str):
        """The case's row by instance id, else by case number: `CaseQueries._find_case`."""
        for column in ("id", "case_number"):
            row = conn.execute(f"SELECT * FROM instances WHERE {column} = ?", (ref,)).fetchone()
            if row is not None:
                return row
        raise case_not_found(ref)
