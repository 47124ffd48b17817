"""Database setup: SQLite file under var/ by default, any SQLAlchemy URL by one setting.

SQLAlchemy is imported by the functions that use it: the command line's read commands
take the URL and the schema head from here and read a SQLite store without it
(engine/sqlite_reads.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

DEFAULT_DB_PATH = Path("var") / "complaintflow.sqlite3"


def database_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("COMPLAINTFLOW_DATABASE_URL")
    if url:
        return url
    DEFAULT_DB_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_DB_PATH}"


def json_text(value) -> str:
    """How JSON columns are written (event payloads, specs, forms): UTF-8 and no spaces, not
    `json.dumps`' default of `\\uXXXX` escapes (6 bytes per Chinese character instead of 3).
    The text is only stored: readers parse it, and an event's hash is computed over its
    parsed payload (eventlog.keyed_digest), so rows written either way read and verify the
    same. A value holding a lone surrogate, which UTF-8 cannot carry, keeps the escapes."""
    import json

    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(value, separators=(",", ":"))
    return text


def make_engine(url: str) -> Engine:
    from sqlalchemy import create_engine, event

    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=json_text)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, json_serializer=json_text)
    migrate(engine)
    return engine


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x436F6D70    # the advisory lock that serialises migrations on PostgreSQL
# The revision id of the newest migration in migrations/versions. Known here so that a start
# on a current database needs one query and no Alembic (tests/test_migrations.py checks that
# it is Alembic's head); a new migration must change it.
SCHEMA_HEAD = "0010"


def schema_is_current(engine: Engine) -> bool:
    """Whether the database is at SCHEMA_HEAD: one query of alembic_version."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [SCHEMA_HEAD]
    except DBAPIError:          # no alembic_version table yet: a new database, or one from before migrations
        return False


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic), on every start — unless it is
    already there, which one query finds out without loading Alembic.

    A database made before migrations existed (tables, no alembic_version) holds the first
    migration's schema: it is stamped with it and then upgraded."""
    if schema_is_current(engine):
        return
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect, text

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # several `serve` processes starting at once on one database: one migrates, the
            # others wait here for it and then find the schema current (held to commit)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        tables = set(inspect(conn).get_table_names())
        if "instances" in tables and "alembic_version" not in tables:
            command.stamp(cfg, "0001")
        command.upgrade(cfg, "head")


def make_session_factory(engine: Engine):
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False, autoflush=False)
