"""Database setup: SQLite file under var/ by default, any SQLAlchemy URL by one setting."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from .models import Base

DEFAULT_DB_PATH = Path("var") / "complaintflow.sqlite3"


def database_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("COMPLAINTFLOW_DATABASE_URL")
    if url:
        return url
    DEFAULT_DB_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_DB_PATH}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    # The schema is created on first use; see docs/operations.md about migrations.
    Base.metadata.create_all(engine)
    return engine


def make_session_factory(engine: Engine):
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)
