"""API tokens: how an integration (a hotline system, a WeChat account, a web form) calls /api/v1.

A token has a name, the roles it acts in, an optional expiry, and a secret shown once when it
is created (`complaintflow token create`). Only the SHA-256 of the secret is stored: the
secret is 32 random bytes (256 bits) from `secrets`, so nobody can guess it or search for it
from its hash, and a slow password hash (which protects low-entropy passwords people choose)
would add nothing but CPU time on every API call.

Whatever a token does is done by its actor, `api:NAME` (`Caller.actor`): the event log, the
task claims and the access log all name it. Anything else that acts for an integration
outside a signed-in user (e.g. an outbound webhook sender resending a delivery) can name
itself the same way with `api_actor(name)`. A token's name is never reused: a revoked token
stays listed, so an actor in the log always means one token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .clock import SHANGHAI, iso, local_minute, parse_instant
from .errors import ComplaintflowError, Conflict, InvalidInput, NotFound
from .models import ApiToken

ACTOR_PREFIX = "api:"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,59}")
SECRET_PREFIX = "cft_"          # recognisable in a leaked config file or a secret scanner


class Unauthorized(ComplaintflowError):
    """No token, or one that is not (or no longer) valid: HTTP 401."""

    exit_code = 6


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: a token's name and roles. `login` and `roles` are what the
    web layer reads of a signed-in user, so the pages' role and confidentiality rules apply
    to a token unchanged."""

    name: str
    roles: tuple[str, ...]
    lang: str = "en"

    @property
    def actor(self) -> str:
        return api_actor(self.name)

    @property
    def login(self) -> str:
        return self.actor


def api_actor(name: str) -> str:
    """The actor recorded for what the integration `name` does."""
    return ACTOR_PREFIX + name


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def expiry(value: str | None) -> datetime | None:
    """--expires: a day (valid through that day, Beijing time) or a moment with its offset."""
    if not value:
        return None
    value = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return datetime.combine(date.fromisoformat(value) + timedelta(days=1), time(), SHANGHAI)
        return parse_instant(value)
    except ValueError:
        raise InvalidInput(f"--expires must be a day (2026-12-31) or a moment (2026-12-31T18:00+08:00), "
                           f"not '{value}'") from None


def create_token(service, name: str, roles, *, expires_at: datetime | None = None) -> str:
    """Store a new token and return its secret (shown once; only its hash is kept)."""
    roles = sorted({r.strip() for r in roles if r and r.strip()})
    if not NAME_PATTERN.fullmatch(name or ""):
        raise InvalidInput(f"a token name is 1 to 60 lower-case letters, digits, '-', '_' or '.', "
                           f"starting with a letter or digit, not '{name}'")
    if not roles:
        raise InvalidInput("a token needs at least one role (--role ROLE)")
    now = service.clock.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput(f"the expiry {local_minute(expires_at)} is not in the future")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    try:
        with service.sessions() as s:
            s.add(ApiToken(name=name, secret_hash=secret_hash(secret), roles=roles, created_at=now,
                           expires_at=expires_at, revoked_at=None))
            s.commit()
    except IntegrityError:
        raise Conflict(f"a token named '{name}' exists already (names are never reused, even after "
                       "`token revoke`); choose another name") from None
    return secret


def list_tokens(service) -> list[dict]:
    now = service.clock.now()
    with service.sessions() as s:
        rows = s.execute(select(ApiToken).order_by(ApiToken.name)).scalars().all()
    return [{"name": r.name, "actor": api_actor(r.name), "roles": list(r.roles), "created": iso(r.created_at),
             "expires": iso(r.expires_at), "revoked": iso(r.revoked_at), "status": _status(r, now)} for r in rows]


def revoke_token(service, name: str) -> dict:
    now = service.clock.now()
    with service.sessions() as s:
        row = s.get(ApiToken, name)
        if row is None:
            raise NotFound(f"there is no token '{name}' (see `complaintflow token list`)")
        if row.revoked_at is not None:
            raise Conflict(f"token '{name}' was already revoked at {local_minute(row.revoked_at)}; nothing was changed")
        s.execute(update(ApiToken).where(ApiToken.name == name).values(revoked_at=now))
        s.commit()
    return {"name": name, "revoked": iso(now)}


def authenticate(service, authorization: str | None) -> Caller:
    """The caller of an `Authorization: Bearer <secret>` header, or Unauthorized saying why."""
    scheme, _, secret = (authorization or "").strip().partition(" ")
    if not authorization:
        raise Unauthorized("this API needs a token: send 'Authorization: Bearer <secret>' "
                           "(created with `complaintflow token create`)")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <secret>'")
    with service.sessions() as s:
        row = s.execute(select(ApiToken).where(ApiToken.secret_hash == secret_hash(secret.strip()))).scalar_one_or_none()
    if row is None:
        raise Unauthorized("the token is not known (mistyped, or not created on this server)")
    status = _status(row, service.clock.now())
    if status == "revoked":
        raise Unauthorized(f"token '{row.name}' was revoked at {local_minute(row.revoked_at)}")
    if status == "expired":
        raise Unauthorized(f"token '{row.name}' expired at {local_minute(row.expires_at)}")
    return Caller(row.name, tuple(row.roles))


def _status(row: ApiToken, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"
