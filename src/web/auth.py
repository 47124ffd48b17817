"""Who is signed in, and how hard it is to guess a password.

Sessions are kept on the server (table `web_sessions`): the signed Flask cookie carries only
a random token; the table holds its SHA-256, the user, a fingerprint of the user's password
hash, the client's address and when the session began, was last seen and ended. Each
request costs one primary-key lookup (and, at most once a minute, an update of
`last_seen_at`). A session ends at sign-out, when the user's password in the users file
changes, or when the user is removed from it; a cookie copied before then stops working.

Sign-in attempts are limited with Flask-Limiter: failed attempts (and only those) are
counted per user name and per client address in a moving window; once a user has
COMPLAINTFLOW_LOGIN_MAX_FAILURES failures (default 5) within
COMPLAINTFLOW_LOGIN_LOCKOUT_MINUTES (15), or an address
COMPLAINTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS (30), further attempts - the right password
too - are refused (HTTP 429, logged in access_log) until the oldest counted failure leaves
the window. The counts live in COMPLAINTFLOW_RATELIMIT_STORAGE_URI: `memory://` (the
default) is per process; several `serve` processes need a shared storage such as
`redis://host:6379` (with the `redis` package installed).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import Flask, g, render_template, request
from flask_limiter import Limiter
from limits.errors import ConfigurationError
from sqlalchemy import select, update

from ..engine.errors import InvalidInput
from ..engine.models import WebSession
from .i18n import translate
from .users import User, UserDirectory

TOUCH_EVERY = timedelta(minutes=1)       # last_seen_at is written at most this often


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class WebSessions:
    """Server-side sign-in sessions in the service's database, on the service's clock."""

    def __init__(self, service, users: UserDirectory):
        self.service, self.users = service, users

    def begin(self, user: User, address: str | None) -> str:
        """A new session for `user`; returns the token the cookie carries (never stored)."""
        token = secrets.token_urlsafe(32)
        now = self.service.clock.now()
        with self.service.sessions() as s:
            s.add(WebSession(id=_digest(token), user=user.login, credential=user.credential,
                             address=(address or "")[:64] or None, created_at=now, last_seen_at=now))
            s.commit()
        return token

    def resolve(self, token) -> User | None:
        """The user of a live session, or None (no token, unknown, ended, password changed,
        user gone)."""
        if not isinstance(token, str) or not token:
            return None
        now = self.service.clock.now()
        table = WebSession.__table__
        # every request asks this: a plain row on a connection, no ORM session (docs/performance.md)
        with self.service.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == _digest(token))).first()
            if row is None or row.ended_at is not None:
                return None
            user = self.users.get(row.user)
            if user is None or user.credential != row.credential:
                # ended for good, even if the old password returns
                conn.execute(update(table).where(table.c.id == row.id).values(ended_at=now))
                conn.commit()
                return None
            if now - row.last_seen_at >= TOUCH_EVERY:
                conn.execute(update(table).where(table.c.id == row.id).values(last_seen_at=now))
                conn.commit()
            return user

    def end(self, token) -> None:
        if not isinstance(token, str) or not token:
            return
        with self.service.sessions() as s:
            row = s.get(WebSession, _digest(token))
            if row is not None and row.ended_at is None:
                row.ended_at = self.service.clock.now()
                s.commit()


# --- sign-in limits ------------------------------------------------------------------------

def client_address() -> str:
    """The client's address (behind COMPLAINTFLOW_TRUSTED_PROXIES, as the proxy saw it)."""
    return request.remote_addr or "unknown"


def attempted_login() -> str:
    return request.form.get("login", "").strip()[:100] or "(empty)"


def _failed(response) -> bool:
    return response.status_code == 401          # the login page's answer to a wrong password


def install_sign_in_limits(app: Flask, ctx, settings) -> Limiter:
    """Wrap the sign-in view of `app` in its own limiter (one per app: counts never leak
    between apps, e.g. tests)."""
    try:
        limiter = Limiter(client_address, app=app, storage_uri=settings.ratelimit_storage_uri,
                          strategy="moving-window", key_prefix="complaintflow", headers_enabled=False)
    except ConfigurationError as err:
        raise InvalidInput(f"COMPLAINTFLOW_RATELIMIT_STORAGE_URI '{settings.ratelimit_storage_uri}': {err}") from err
    minutes = settings.login_lockout_minutes

    def refused(why: str):
        def on_breach(limit):
            login = attempted_login()
            ctx.service.log_access(login, "sign_in", None, False,
                                   f"sign-in locked: {why} (address {client_address()}); the attempt was not checked")
            lang = g.get("lang", "zh")
            page = render_template("login.html", error=translate("locked_out", lang, minutes=minutes))
            response = app.make_response((page, 429))
            response.headers["Retry-After"] = str(minutes * 60)
            return response
        return on_breach

    per_user = limiter.limit(f"{settings.login_max_failures} per {minutes} minutes", key_func=attempted_login,
                             methods=["POST"], deduct_when=_failed, scope="sign-in-user",
                             on_breach=refused(f"{settings.login_max_failures} failed attempts for this user "
                                               f"within {minutes} minutes"))
    per_address = limiter.limit(f"{settings.login_max_failures_per_address} per {minutes} minutes",
                                key_func=client_address, methods=["POST"], deduct_when=_failed,
                                scope="sign-in-address",
                                on_breach=refused(f"{settings.login_max_failures_per_address} failed attempts "
                                                  f"from this address within {minutes} minutes"))
    app.view_functions["pages.login"] = per_user(per_address(app.view_functions["pages.login"]))
    return limiter
