"""Idempotency keys: a retried request gets the first answer instead of doing the work twice.

An integration whose request timed out cannot know whether the case was registered. It
sends the request again with the same `Idempotency-Key` header and gets the first request's
status and body; no second case is started.

How: the first request reserves the key (an `idempotency_keys` row with no answer yet,
committed at once: of two requests reserving one key at the same moment the database lets
exactly one in). The winner does the work, and its answer is written into the row **in the
same transaction as the case**: either both are stored or neither. A request that finds the
key reserved waits for the answer (a retry racing the first attempt) and returns it; one
whose work failed releases the key, so a corrected retry may use it again (an error
registered nothing, so repeating it is harmless). A reservation left by a process that died
is taken over after ABANDONED. Keys are per token, compared with a fingerprint of the
request (the same key with a different request is refused), and kept KEEP.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from .errors import ComplaintflowError, Conflict
from .models import IdempotencyKey

KEEP = timedelta(hours=24)              # a key is remembered at least this long
ABANDONED = timedelta(minutes=10)       # a reservation without an answer this old is taken over
WAIT_SECONDS = 30.0                     # how long a retry waits for the first attempt's answer
KEY_MAX = 255


class KeyReused(ComplaintflowError):
    """The same Idempotency-Key with a different request: HTTP 422."""

    exit_code = 2


def fingerprint(*parts) -> str:
    """The SHA-256 of the request's parts as canonical JSON."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_once(service, token: str, key: str, print_: str, act) -> tuple[int, dict, bool]:
    """(status, body, replayed): `act(session) -> (status, body)` runs in one unit of work of
    the service, with the key's answer stored in it, unless the key already has an answer."""
    give_up = time.monotonic() + WAIT_SECONDS
    while True:
        found = _reserve(service, token, key, print_)
        if found is None:
            break
        if found.request_hash != print_:
            raise KeyReused(f"the Idempotency-Key '{key}' was used for a different request; "
                            "use a new key for a new request")
        if found.status is not None:
            return found.status, json.loads(found.body), True
        if time.monotonic() > give_up:
            raise Conflict(f"a request with the Idempotency-Key '{key}' is still being processed; "
                           "retry it later with the same key")
        time.sleep(0.05)     # the first attempt is running: its answer comes with its commit
    try:
        with service.uow() as s:
            status, body = act(s)
            s.execute(update(IdempotencyKey)
                      .where(IdempotencyKey.token_name == token, IdempotencyKey.key == key)
                      .values(status=status, body=json.dumps(body, ensure_ascii=False)))
    except BaseException:
        _release(service, token, key)
        raise
    return status, body, False


def _reserve(service, token, key, print_):
    """None when this request now holds the key; else the key's row as another left it."""
    now = service.clock.now()
    t = IdempotencyKey
    with service.sessions() as s:
        # forget keys past their time, and this key's reservation if its holder died
        s.execute(delete(t).where(or_(t.created_at < now - KEEP,
                                      and_(t.token_name == token, t.key == key, t.status.is_(None),
                                           t.created_at < now - ABANDONED))))
        s.add(IdempotencyKey(token_name=token, key=key, request_hash=print_, created_at=now))
        try:
            s.commit()
            return None
        except IntegrityError:
            s.rollback()
        row = s.execute(select(t).where(t.token_name == token, t.key == key)).scalar_one_or_none()
        if row is None:          # released meanwhile: try again
            return _Pending(print_)
        return row


class _Pending:
    """A key released between our insert and our read: looks like a pending answer, so the
    caller loops and reserves again."""

    status = None
    body = None

    def __init__(self, request_hash):
        self.request_hash = request_hash


def _release(service, token, key) -> None:
    t = IdempotencyKey
    with service.sessions() as s:
        s.execute(delete(t).where(t.token_name == token, t.key == key, t.status.is_(None)))
        s.commit()
