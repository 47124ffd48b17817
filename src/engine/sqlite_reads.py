"""The task list read straight from a SQLite store with the standard library's `sqlite3`, for
the command line's `tasks`: no SQLAlchemy, no models, no engine, which together cost a
read command most of its start (docs/performance.md, "How fast the command starts").

It reads the same rows as the service (`CaseQueries.list_tasks`) and makes the same dicts
(`views.task_dict`); tests/test_cli_start.py checks that both list the same tasks in the
same order. It is used only where it cannot differ: a SQLite file named by a plain
`sqlite:///PATH` URL that exists and whose schema is current (`db.SCHEMA_HEAD`). Anything
else (PostgreSQL, a new or older database, which the service migrates) goes through the
service. The file is opened read-only, so a read command never writes the store.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from .db import SCHEMA_HEAD, database_url
from .views import task_dict


def _utc(value: bytes) -> datetime:
    """A DATETIME column as SQLAlchemy stores it on SQLite (UTC, no offset), as models.UTCDateTime
    returns it: timezone-aware."""
    return datetime.fromisoformat(value.decode()).replace(tzinfo=timezone.utc)


sqlite3.register_converter("DATETIME", _utc)     # applies only to connections asking for it (below)


def _attributes(cursor, row) -> SimpleNamespace:
    """A row whose columns are attributes, as the views' functions read a model row."""
    return SimpleNamespace(**{d[0]: value for d, value in zip(cursor.description, row)})


class SqliteReads:
    """Reads of one SQLite store, each on a read-only connection of its own."""

    def __init__(self, path: Path):
        self.uri = f"{path.resolve().as_uri()}?mode=ro"

    @classmethod
    def open(cls, url: str | None) -> "SqliteReads | None":
        """The store at `url` (default: the service's), or None when it is not a SQLite file
        that exists with the current schema."""
        url = database_url(url)
        prefix = "sqlite:///"
        path = url[len(prefix):]
        if not url.startswith(prefix) or not path or path.startswith(":") or any(c in path for c in "?%#"):
            return None
        reads = cls(Path(path))
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
