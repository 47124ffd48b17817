"""The per-instance event log: append-only, strictly ordered, chained with a key.

Each event's `hash` covers its content, its case and the previous event's hash, so an
edited, removed or reordered event is found by `check_chain` at its position. Since schema
0004 the chain is an HMAC-SHA256 with a key the database does not hold (the chain key file,
docs/operations.md): whoever can write the database but lacks the key cannot recompute the
chain after changing an event. Each keyed event names its key by `key_id`, a fingerprint
that does not reveal the key. Events written before 0004 have no `key_id` and an unkeyed
SHA-256 chain; they keep verifying, and the report says how many there are. A keyed event
covers the hash of the event before it, so unkeyed events followed by a keyed one are
protected by it too.

The first event of each step (the *driver*: started, task_completed, timer_fired,
message_received, retry, deadlines_recomputed) carries `state_after`, the hash of the
engine state that action produced; replay compares its own state against it step by step.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert

from .clock import UTC, ensure_aware, iso
from .errors import ComplaintflowError
from .models import Event
from .spec import canonical_json

GENESIS = "0" * 64
DRIVERS = {"started", "task_completed", "timer_fired", "message_received", "retry", "deadlines_recomputed"}

KEY_FILE_SETTING = "COMPLAINTFLOW_CHAIN_KEY_FILE"
DEFAULT_KEY_FILE = Path("var") / "chain_key"
_HEX_KEY = re.compile(r"^(?:[0-9a-fA-F]{2}){32,}$")


class ChainKeyError(ComplaintflowError):
    """The chain key file is missing where keyed events exist, or does not hold a key."""


# --- the digests ------------------------------------------------------------------------

def _body(seq, step, kind, at, actor, task_id, payload, state_after) -> dict:
    return {"seq": seq, "step": step, "kind": kind, "at": ensure_aware(at).astimezone(UTC).isoformat(),
            "actor": actor, "task_id": task_id, "payload": payload, "state_after": state_after}


def event_digest(prev_hash: str, seq: int, step: int, kind: str, at: datetime, actor, task_id, payload,
                 state_after) -> str:
    """The unkeyed SHA-256 link of events written before schema 0004 (anyone can compute it)."""
    body = canonical_json(_body(seq, step, kind, at, actor, task_id, payload, state_after))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def keyed_digest(key: bytes, instance_id: str, prev_hash: str, seq: int, step: int, kind: str, at: datetime,
                 actor, task_id, payload, state_after) -> str:
    """HMAC-SHA256 over the previous hash and the event, including its case, so that an event
    cannot be moved to another case either."""
    body = canonical_json({"instance_id": instance_id, **_body(seq, step, kind, at, actor, task_id, payload,
                                                               state_after)})
    return hmac.new(key, (prev_hash + body).encode("utf-8"), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A fingerprint naming the key (stored with each event); it does not reveal the key."""
    return hmac.new(key, b"complaintflow chain key id", hashlib.sha256).hexdigest()[:16]


# --- the key file -----------------------------------------------------------------------

def chain_key_path() -> Path:
    return Path(os.environ.get(KEY_FILE_SETTING) or DEFAULT_KEY_FILE)


def load_chain_key(engine=None, path: Path | None = None) -> bytes:
    """The chain key from its file (COMPLAINTFLOW_CHAIN_KEY_FILE, default var/chain_key).

    Made on first start (32 random bytes, hex, mode 600) — but never silently in place of a
    lost one: if the database (`engine`) already holds keyed events, a missing file is an
    error, since a new key would start chains nobody could verify with the old one."""
    path = Path(path) if path is not None else chain_key_path()
    if not path.exists():
        existing = _a_keyed_event(engine) if engine is not None else None
        if existing is not None:
            raise ChainKeyError(
                f"the chain key file {path} does not exist, but the database holds events chained with key "
                f"{existing}; restore the key file from its backup or point {KEY_FILE_SETTING} at it "
                "(docs/operations.md, 'The chain key'). Nothing was changed.")
        _create_key_file(path)
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ChainKeyError(f"the chain key file {path} cannot be read: {err}") from err
    if not _HEX_KEY.match(text):
        raise ChainKeyError(f"the chain key file {path} does not hold a chain key "
                            "(an even number, at least 64, of hexadecimal characters)")
    return bytes.fromhex(text)


def _create_key_file(path: Path) -> None:
    """Write a new key beside `path` and link it into place, so that a process starting at the
    same moment sees either no file or a whole key, and the first one made wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:     # another process made it first: use theirs
            pass
    finally:
        tmp.unlink(missing_ok=True)


def _a_keyed_event(engine) -> str | None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    with Session(engine) as s:
        return s.execute(select(Event.key_id).where(Event.key_id.is_not(None)).limit(1)).scalar_one_or_none()


# --- writing ----------------------------------------------------------------------------

class EventWriter:
    def __init__(self, session, instance, prev_hash: str, key: bytes):
        if not key:
            raise ValueError("an event writer needs the chain key")
        self.session = session
        self.instance = instance
        self.prev = prev_hash
        self.key = key
        self.key_id = key_id(key)

    @classmethod
    def for_instance(cls, session, instance, key: bytes):
        return cls(session, instance, instance.last_event_hash or GENESIS, key)

    def append(self, *, step, kind, at, actor=None, task_id=None, payload=None, state_after=None) -> dict:
        """Chain an event to the case; it is written with the action's other events by
        `write_pending_events`, after the flush that wrote (and version-checked) the case row."""
        seq = self.instance.last_event_seq + 1
        payload = payload or {}
        digest = keyed_digest(self.key, self.instance.id, self.prev, seq, step, kind, at, actor, task_id, payload,
                              state_after)
        # prev_hash is stored empty (schema 0010): it is always the previous event's hash, which
        # the HMAC covers; check_chain takes it from there
        row = {"instance_id": self.instance.id, "seq": seq, "step": step, "kind": kind, "at": at, "actor": actor,
               "task_id": task_id, "payload": payload, "state_after": state_after, "prev_hash": "",
               "hash": digest, "key_id": self.key_id}
        self.session.info.setdefault("pending_events", []).append(row)
        self.instance.last_event_seq = seq
        self.instance.last_event_hash = digest
        self.prev = digest
        return row


def write_pending_events(session) -> None:
    """The events the action appended, as one multi-row INSERT (the ORM would send one statement
    per event to learn each new id, which nothing needs)."""
    rows = session.info.pop("pending_events", None)
    if rows:
        session.execute(_EVENT_INSERT, rows)


_EVENT_INSERT = insert(Event.__table__)     # built once: every action sends it


# --- checking ---------------------------------------------------------------------------

@dataclass
class ChainCheck:
    """What `check_chain` found: the first broken link (or None), and how the events are chained."""

    broken: tuple[int, str] | None
    key_id: str | None              # the key in use
    keyed: int = 0                  # events with a keyed link
    unkeyed: int = 0                # events with only an unkeyed SHA-256 link (written before 0004)
    unprotected: int = 0               # unkeyed events with no keyed event after them (all or none)
    wrong_key: bool = False         # chained with a key other than the one in use
    head_seq: int = 0
    head_hash: str = GENESIS

    def as_dict(self) -> dict:
        return {"key_id": self.key_id, "keyed_events": self.keyed, "unkeyed_events": self.unkeyed,
                "unprotected_events": self.unprotected, "verifiable_with_key": not self.wrong_key,
                "head": {"seq": self.head_seq, "hash": self.head_hash}}

    def describe(self) -> str:
        """One sentence on how far the chain protects the case."""
        if self.wrong_key:
            return "the chain cannot be verified with the key in use"
        if not self.unkeyed:
            return f"all {self.keyed} event(s) are chained with key {self.key_id}"
        if self.unprotected == self.unkeyed:
            return (f"all {self.unkeyed} event(s) are only unkeyed-hashed (written before keyed chaining): "
                    "anyone who can write the database could have rewritten them")
        return (f"events 1–{self.unkeyed} are only unkeyed-hashed (written before keyed chaining); the "
                f"{self.keyed} event(s) after them are chained with key {self.key_id} and cover them")


def check_chain(events: list[Event], key: bytes | None) -> ChainCheck:
    """Walk the chain: every link, every keyed event against `key`. Unkeyed (pre-0004) events
    may only come before the first keyed one."""
    current = key_id(key) if key else None
    check = ChainCheck(None, current)
    prev = GENESIS
    for expected_seq, ev in enumerate(events, start=1):
        if ev.seq != expected_seq:
            check.broken = (expected_seq, f"event {expected_seq} is missing (the next stored event is {ev.seq})")
            return check
        if ev.prev_hash and ev.prev_hash != prev:        # empty: implied (events since 0010)
            check.broken = (ev.seq, f"event {ev.seq} does not follow event {ev.seq - 1} "
                                    "(its link to the previous event is wrong)")
            return check
        if ev.key_id is None:
            if check.keyed:
                check.broken = (ev.seq, f"event {ev.seq} ({ev.kind}) has an unkeyed link after keyed events: "
                                        "the log was rewritten without the key")
                return check
            digest = event_digest(prev, ev.seq, ev.step, ev.kind, ev.at, ev.actor, ev.task_id, ev.payload,
                                  ev.state_after)
            check.unkeyed += 1
        else:
            if key is None or ev.key_id != current:
                check.wrong_key = True
                check.broken = (ev.seq, f"event {ev.seq} was chained with key {ev.key_id}, but the key in use is "
                                        f"{current or 'none'}: the chain is not verifiable with this key (is "
                                        f"{KEY_FILE_SETTING} the key file this database was written with?)")
                return check
            digest = keyed_digest(key, ev.instance_id, prev, ev.seq, ev.step, ev.kind, ev.at, ev.actor, ev.task_id,
                                  ev.payload, ev.state_after)
            check.keyed += 1
        if not hmac.compare_digest(digest, ev.hash or ""):
            check.broken = (ev.seq, f"event {ev.seq} ({ev.kind}) was changed after it was written "
                                    "(its hash does not match)")
            return check
        prev = ev.hash
        check.head_seq, check.head_hash = ev.seq, ev.hash
    check.unprotected = check.unkeyed if not check.keyed else 0
    return check


def verify_chain(events: list[Event], key: bytes | None = None) -> tuple[int, str] | None:
    """Return (position, reason) of the first broken link, or None if the chain holds."""
    return check_chain(events, key).broken


def event_dict(ev: Event) -> dict:
    return {"seq": ev.seq, "step": ev.step, "kind": ev.kind, "at": iso(ev.at), "actor": ev.actor,
            "task_id": ev.task_id, "payload": ev.payload, "state_after": ev.state_after}
