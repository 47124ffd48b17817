"""Tables. Specs (process_versions) are immutable and stored once; instances refer to them.

The query side (instances' summary columns, human_tasks) is plain indexed rows, so listing
tasks or cases never loads engine state (instance_states holds that, one row per instance).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        TypeDecorator, UniqueConstraint, false, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator):
    """Stores UTC; always returns timezone-aware datetimes (SQLite keeps no offset)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


class HashBytes(TypeDecorator):
    """A SHA-256 or HMAC-SHA256 digest: 64 hex characters to Python, its 32 bytes in the database
    (schema 0009: half the room, three of them on every event). On SQLite the column keeps its
    declared text type (SQLite stores the bytes as they are) and rows written before 0009 keep
    their hex text; both read back as hex."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else bytes.fromhex(value)

    def process_result_value(self, value, dialect):
        return value if value is None or isinstance(value, str) else bytes(value).hex()


NO_DUE = datetime(9999, 12, 31, tzinfo=timezone.utc)

# the inbox indexes hold open tasks only (schema 0009): closed tasks take no room in them
OPEN_ONLY = {"sqlite_where": text("status = 'open'"), "postgresql_where": text("status = 'open'")}


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict: JSON}


class ProcessVersion(Base):
    __tablename__ = "process_versions"
    __table_args__ = (
        UniqueConstraint("process_id", "version"),
        UniqueConstraint("process_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(String(500))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    forms: Mapped[dict] = mapped_column(JSON)          # form path -> JSON Schema
    specs: Mapped[dict] = mapped_column(JSON)          # serialized spec + subprocess specs
    meta: Mapped[dict] = mapped_column(JSON)           # per-task roles, forms, start form, initial data
    deployed_at: Mapped[datetime]


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("process_id", "case_number"),
        Index("ix_instances_next_due", "next_due_at"),
        Index("ix_instances_status_received", "status", "received_at"),
        # the reviewer's search (migration 0005): each filter reads cases in received order
        Index("ix_instances_case_number", "case_number"),
        Index("ix_instances_received", "received_at"),
        Index("ix_instances_process_received", "process_id", "received_at"),
        Index("ix_instances_category_received", "category", "received_at"),
        Index("ix_instances_department_received", "department", "received_at"),
        Index("ix_instances_legal_state_received", "legal_state", "received_at"),
        Index("ix_instances_breached_received", "breached", "received_at"),
        Index("ix_instances_closed", "closed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # process_id and category are read through (process_id, received_at), (process_id,
    # case_number) and (category, received_at); their own indexes went in schema 0009
    process_id: Mapped[str] = mapped_column(String(100))
    version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    version: Mapped[int] = mapped_column(Integer)                 # the process version number
    status: Mapped[str] = mapped_column(String(20))               # running | incident | completed
    case_number: Mapped[str | None] = mapped_column(String(50))
    category: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    next_due_at: Mapped[datetime | None]                          # earliest waiting timer
    legal_state: Mapped[str | None] = mapped_column(String(50))   # e.g. deemed_accepted
    started_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime]
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_event_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)  # head of the hash chain
    step_count: Mapped[int] = mapped_column(Integer, default=0)
    id_counter: Mapped[int] = mapped_column(Integer, default=0)   # deterministic task ids
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)
    department: Mapped[str | None] = mapped_column(String(100))   # case data `department`, kept in step
    breached: Mapped[bool] = mapped_column(default=False, server_default=false())  # a declared limit was breached
    handling_workdays: Mapped[int | None] = mapped_column(Integer)  # receipt to closing, set at close
    # system work (tick, recompute) leases a case before running its handlers (service.py)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]

    __mapper_args__ = {"version_id_col": row_version}


class InstanceState(Base):
    __tablename__ = "instance_states"

    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), primary_key=True)
    # never read: tells the unit of work to write the case before the rows that refer to it
    # (and its version-checked UPDATE before them), whatever order they were added in
    case_row: Mapped["Instance"] = relationship(lazy="raise")
    state: Mapped[str] = mapped_column(Text)                      # JSON of the engine state, no spec
    state_hash: Mapped[str] = mapped_column(String(64))
    # a closed case's state JSON, zlib-compressed, `state` then '' (engine/compaction.py, schema 0009)
    packed: Mapped[bytes | None] = mapped_column(LargeBinary)


class ClosedCase(Base):
    """What is kept of a closed case's engine state (schema 0010, engine/compaction.py): its
    hash, and what readers show of it — the case data and its path through the diagram —
    zlib-compressed. The state itself is rebuilt from the event log when it is needed
    (`replay`, which checks it against this hash); the case's `instance_states` row is
    deleted by the closing action (or by `complaintflow compact` for cases closed before)."""

    __tablename__ = "closed_cases"

    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), primary_key=True)
    # never read: tells the unit of work to write the case before the rows that refer to it
    case_row: Mapped["Instance"] = relationship(lazy="raise")
    state_hash: Mapped[str] = mapped_column(HashBytes)          # of the state the closing action produced
    view: Mapped[bytes] = mapped_column(LargeBinary)            # compaction.pack_view


class HumanTask(Base):
    __tablename__ = "human_tasks"
    __table_args__ = (
        # the inbox: each role's open tasks in due order, also within a procedure, a category,
        # or a claimer (bench/bench_inbox.py)
        # (since schema 0008 the case's priority comes first: 1 before 2 before 3, then due)
        # (since schema 0009 they hold open tasks only: every inbox query says status = 'open')
        Index("ix_human_tasks_open_role_due", "status", "role", "priority", "due_sort", "id", **OPEN_ONLY),
        Index("ix_human_tasks_open_role_process_due", "status", "role", "process_id", "priority", "due_sort", "id",
              **OPEN_ONLY),
        Index("ix_human_tasks_open_role_category_due", "status", "role", "category", "priority", "due_sort", "id",
              **OPEN_ONLY),
        Index("ix_human_tasks_open_role_claimed_due", "status", "role", "claimed_by", "priority", "due_sort", "id",
              **OPEN_ONLY),
        Index("ix_human_tasks_instance", "instance_id", "status"),
        # tasks for one named person (engine/org.py), in the same order
        Index("ix_human_tasks_open_assignee_due", "status", "assignee", "priority", "due_sort", "id", **OPEN_ONLY),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # SpiffWorkflow task id
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    # never read: tells the unit of work to write the case before the rows that refer to it
    # (and its version-checked UPDATE before them), whatever order they were added in
    case_row: Mapped["Instance"] = relationship(lazy="raise")
    process_id: Mapped[str] = mapped_column(String(100))
    task_spec: Mapped[str] = mapped_column(String(100))            # BPMN element id
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    form: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))                # open | completed | cancelled
    created_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_by: Mapped[str | None] = mapped_column(String(100))     # a claimed task is not taken by a colleague
    claimed_at: Mapped[datetime | None]
    deadline: Mapped[str | None] = mapped_column(String(100))       # the limit its due time comes from
    # due_at, or NO_DUE for a task without one: the inbox sorts on it through an index
    # (soonest first, tasks without a limit last), which `due_at IS NULL` ordering cannot use
    due_sort: Mapped[datetime] = mapped_column(default=lambda: NO_DUE)
    category: Mapped[str | None] = mapped_column(String(100))       # the case's, kept in step for the filter
    # the one user the task is for when the procedure names a person (engine/org.py); NULL: the role's
    assignee: Mapped[str | None] = mapped_column(String(100))
    # the case's priority kept in step, as P1/P2/P3: 1 first in the inbox (e.g. direct and
    # widespread complaints), 3 = normal (the default)
    priority: Mapped[int] = mapped_column(default=3, server_default="3")


class AccessLog(Base):
    """Who asked to see or do what, and whether it was refused (confidentiality, 举报人保密)."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_refused", "allowed", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    user: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))       # view_task, complete_task, view_case, start, ...
    target: Mapped[str | None] = mapped_column(String(100))
    allowed: Mapped[bool]
    reason: Mapped[str | None] = mapped_column(Text)


class WebSession(Base):
    """A signed-in browser session, kept on the server so that it can be ended there."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user", "user", "ended_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)   # SHA-256 of the cookie's token
    user: Mapped[str] = mapped_column(String(100))
    credential: Mapped[str] = mapped_column(String(64))             # fingerprint of the password hash
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class Event(Base):
    """The append-only event log, strictly ordered per instance by `seq`."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("instance_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # (read through the unique (instance_id, seq) index; its own index went in schema 0009)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    # never read: tells the unit of work to write the case before the rows that refer to it
    # (and its version-checked UPDATE before them), whatever order they were added in
    case_row: Mapped["Instance"] = relationship(lazy="raise")
    seq: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)          # the action this event belongs to
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(100))
    task_id: Mapped[str | None] = mapped_column(String(36))
    payload: Mapped[dict] = mapped_column(JSON)
    state_after: Mapped[str | None] = mapped_column(HashBytes)   # on the step's first event
    # the previous event's hash; stored empty since schema 0010 (implied: eventlog.check_chain)
    prev_hash: Mapped[str] = mapped_column(HashBytes)
    hash: Mapped[str] = mapped_column(HashBytes)
    # the chain key's fingerprint (eventlog.key_id): `hash` is an HMAC-SHA256 with that key;
    # NULL on events written before schema 0004, whose `hash` is an unkeyed SHA-256
    key_id: Mapped[str | None] = mapped_column(String(16))


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_open", "instance_id", "resolved_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    # never read: tells the unit of work to write the case before the rows that refer to it
    # (and its version-checked UPDATE before them), whatever order they were added in
    case_row: Mapped["Instance"] = relationship(lazy="raise")
    task_id: Mapped[str] = mapped_column(String(36))
    task_spec: Mapped[str] = mapped_column(String(100))
    handler: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class Deadline(Base):
    """A time limit of a case (query side): what the rule says, when it is due, and whether
    it was met. The engine's timers use the `deadlines` variable in case data; this row
    keeps the details for `show`, recomputation and statistics."""

    __tablename__ = "deadlines"
    __table_args__ = (
        UniqueConstraint("instance_id", "name"),
        Index("ix_deadlines_open", "status", "provisional"),
        Index("ix_deadlines_breached", "process_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    # never read: tells the unit of work to write the case before the rows that refer to it
    # (and its version-checked UPDATE before them), whatever order they were added in
    case_row: Mapped["Instance"] = relationship(lazy="raise")
    process_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    rule: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime]
    due_at: Mapped[datetime]
    last_day: Mapped[str | None] = mapped_column(String(10))
    provisional: Mapped[bool]
    status: Mapped[str] = mapped_column(String(20))          # open | paused | met | breached | stopped
    # how many times the limit was started for this case (a promise renewed each round:
    # 1 for a limit started once; earlier rounds are in the event log)
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    paused_at: Mapped[datetime | None]
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    extended_by: Mapped[int] = mapped_column(Integer, default=0)
    remind_workdays: Mapped[int | None] = mapped_column(Integer)
    breached_at: Mapped[datetime | None]                      # when the breach was noticed
    completed_at: Mapped[datetime | None]


class CaseCounter(Base):
    __tablename__ = "case_counters"

    process_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


class Verification(Base):
    """The result of one `replay --verify` of a case (the reviewer's badge, bulk checks)."""

    __tablename__ = "verifications"
    __table_args__ = (
        Index("ix_verifications_instance", "instance_id", "checked_at"),
        Index("ix_verifications_failed", "consistent", "checked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    checked_at: Mapped[datetime]
    checked_by: Mapped[str] = mapped_column(String(100))
    consistent: Mapped[bool]
    events: Mapped[int] = mapped_column(Integer)
    chain_head: Mapped[str | None] = mapped_column(String(64))   # the last event's hash when checked
    summary: Mapped[str | None] = mapped_column(Text)           # the first difference, in plain words


class CaseFact(Base):
    """A fact a procedure's forms declare for statistics (satisfaction, mediation outcome):
    one row per case and fact, the latest value, written with the task that recorded it."""

    __tablename__ = "case_facts"
    __table_args__ = (Index("ix_case_facts_name", "name", "process_id", "recorded_at"),)

    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), primary_key=True)
    case_row: Mapped["Instance"] = relationship(lazy="raise")
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100))
    value: Mapped[str | None] = mapped_column(String(100))
    positive: Mapped[bool | None]                              # e.g. satisfied, mediation succeeded
    recorded_at: Mapped[datetime]


class ApiToken(Base):
    """An integration's bearer token for /api/v1 (engine/tokens.py): a name, the roles it acts
    in, and the SHA-256 of its secret (the secret itself is shown once and never stored)."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)   # the actor is "api:" + name
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """The first answer to a request sent with an `Idempotency-Key` header, per token, so that
    a retry gets that answer again instead of a second case. `status` is NULL while the first
    request runs; the row with its answer is written in the same transaction as the case."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    token_name: Mapped[str] = mapped_column(String(60), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    status: Mapped[int | None]
    body: Mapped[str | None] = mapped_column(Text)


class Outbox(Base):
    """A webhook or an SMS to send (engine/outbox.py, engine/sms.py): one row per event and
    receiver, or per SMS notice (kind "sms", url "sms:<number>"), written in the action's
    transaction, sent after commit and retried with backoff until sent or failed."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)    # the same for every receiver
    kind: Mapped[str] = mapped_column(String(30))
    instance_id: Mapped[str] = mapped_column(String(36))
    process_id: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)                          # the exact bytes signed and sent
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10))                  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(100))     # SQLite: the deliverer sending it
    lease_until: Mapped[datetime | None]
