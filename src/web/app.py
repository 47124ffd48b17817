"""Flask application factory: the staff inbox (HTML), a small read-only JSON API, sign-in.

Configuration comes from the environment with safe defaults (docs/operations.md):
COMPLAINTFLOW_SECRET_KEY (else a key kept in var/secret_key), COMPLAINTFLOW_USERS_FILE
(else the demo users), COMPLAINTFLOW_PROCESSES (the directory whose roles.json names the
roles; default processes/), and the web's defences against hostile input (`WebSettings`):
request size, HTTPS-only cookies, sign-in lockout, proxies in front.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from ..engine.clock import SHANGHAI, parse_instant
from ..engine.errors import InvalidInput
from ..engine.service import ComplaintService
from .i18n import translate
from .users import UserDirectory, load_users

if TYPE_CHECKING:      # only a type: auth is imported when the app is made
    from .auth import WebSessions

MiB = 1024 * 1024


@dataclass(frozen=True)
class WebSettings:
    """The web's limits, from COMPLAINTFLOW_* environment variables (docs/operations.md,
    "The web inbox under hostile input"). A value that is not understood stops the start
    with the setting's name, rather than silently falling back to a default."""

    max_request_bytes: int = 2 * MiB          # COMPLAINTFLOW_MAX_REQUEST_BYTES
    secure_cookies: bool = False              # COMPLAINTFLOW_SECURE_COOKIES
    login_max_failures: int = 5               # COMPLAINTFLOW_LOGIN_MAX_FAILURES (per user)
    login_lockout_minutes: int = 15           # COMPLAINTFLOW_LOGIN_LOCKOUT_MINUTES
    login_max_failures_per_address: int = 30  # COMPLAINTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS
    ratelimit_storage_uri: str = "memory://"  # COMPLAINTFLOW_RATELIMIT_STORAGE_URI
    trusted_proxies: int = 0                  # COMPLAINTFLOW_TRUSTED_PROXIES

    @classmethod
    def from_env(cls, env=None) -> "WebSettings":
        env = os.environ if env is None else env
        return cls(
            max_request_bytes=_env_int(env, "COMPLAINTFLOW_MAX_REQUEST_BYTES", cls.max_request_bytes, 1024, 1024 * MiB),
            secure_cookies=_env_bool(env, "COMPLAINTFLOW_SECURE_COOKIES", cls.secure_cookies),
            login_max_failures=_env_int(env, "COMPLAINTFLOW_LOGIN_MAX_FAILURES", cls.login_max_failures, 1, 1000),
            login_lockout_minutes=_env_int(env, "COMPLAINTFLOW_LOGIN_LOCKOUT_MINUTES", cls.login_lockout_minutes,
                                           1, 24 * 60),
            login_max_failures_per_address=_env_int(env, "COMPLAINTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS",
                                                    cls.login_max_failures_per_address, 1, 100_000),
            ratelimit_storage_uri=env.get("COMPLAINTFLOW_RATELIMIT_STORAGE_URI") or cls.ratelimit_storage_uri,
            trusted_proxies=_env_int(env, "COMPLAINTFLOW_TRUSTED_PROXIES", cls.trusted_proxies, 0, 10),
        )


def _env_int(env, name: str, default: int, lo: int, hi: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw) or not lo <= int(raw) <= hi:
        raise InvalidInput(f"{name} must be a whole number from {lo} to {hi}, not '{raw}'")
    return int(raw)


def _env_bool(env, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"{name} must be on or off (1/0, true/false, yes/no), not '{raw}'")


class BadParameter(BadRequest):
    """A query or form parameter that is not what the page expects: HTTP 400 with a message
    staff can read (the page's language) or, on /api, JSON."""

    def __init__(self, name: str, key: str, **values):
        super().__init__(f"parameter '{name}': {translate(key, 'en', **values)}")
        self.parameter, self.key, self.values = name, key, values


def int_param(source, name: str, default: int, lo: int, hi: int, key: str = "bad_number") -> int:
    """A whole-number parameter from request.args or request.form, bounded to lo..hi; absent or
    empty gives `default`; anything else (a sign, a decimal point, full-width digits, more
    digits than the bound has) is a BadParameter."""
    raw = source.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,%d}" % len(str(hi)), raw) or not lo <= int(raw) <= hi:
        raise BadParameter(name, key, lo=lo, hi=hi)
    return int(raw)


def date_param(source, name: str, key: str = "bad_date"):
    """A calendar day (YYYY-MM-DD) from request.args; absent or empty gives None; anything else
    is a BadParameter with the message `key`."""
    raw = source.get(name) or ""
    if not raw:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise BadParameter(name, key)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(name, key) from None


@dataclass
class WebContext:
    service: ComplaintService
    users: UserDirectory
    roles: dict            # roles.json: id -> {"zh", "en", "description", "sees_identity"}
    settings: WebSettings
    web_sessions: "WebSessions"

    def role_name(self, role: str | None, lang: str) -> str:
        entry = self.roles.get(role or "") or {}
        return entry.get("en" if lang == "en" else "zh") or (role or "")


def _secret_key() -> str:
    key = os.environ.get("COMPLAINTFLOW_SECRET_KEY")
    if key:
        return key
    path = Path("var") / "secret_key"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_roles(processes_dir: str | Path | None = None) -> dict:
    folder = Path(processes_dir or os.environ.get("COMPLAINTFLOW_PROCESSES") or "processes")
    path = folder / "roles.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def create_app(service: ComplaintService | None = None, *, users: UserDirectory | None = None,
               roles: dict | None = None, secret_key: str | None = None, testing: bool = False,
               settings: WebSettings | None = None) -> Flask:
    from .auth import WebSessions, install_sign_in_limits
    settings = settings or WebSettings.from_env()
    app = Flask(__name__)
    if settings.trusted_proxies:
        # the client's address and scheme as the proxies in front saw them (sign-in limits
        # per address, the address kept with a session); only as many hops as are trusted
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    roles = roles if roles is not None else load_roles()
    app.config.update(
        SECRET_KEY=secret_key or _secret_key(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        # a larger body is refused (413) from its Content-Length, before it is read
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_request_bytes,   # one long text field: the same bound
        WTF_CSRF_TIME_LIMIT=None,          # a form left open over lunch still submits
        TESTING=testing,
    )
    CSRFProtect(app)
    if service is None:
        from ..engine.sms import notifier_from_env     # SMS when COMPLAINTFLOW_SMS_URL is set, else the log
        service = ComplaintService(notifier=notifier_from_env())
    users = users or load_users(known_roles=set(roles) or None)
    check_org(service, users)         # the organisation file: refused at start when it is wrong
    ctx = WebContext(service, users, roles, settings, WebSessions(service, users))
    app.extensions["complaintflow"] = ctx

    @app.before_request
    def load_user():
        if (request.content_length or 0) > settings.max_request_bytes:
            raise RequestEntityTooLarge()            # also where no view would read the body
        g.ctx = ctx
        g.user = None
        g.lang = session.get("lang") or "zh"
        _refuse_nul()
        if request.endpoint not in ("static", "health"):
            ctx.users.refresh()                       # a changed users file applies at once
            g.user = ctx.web_sessions.resolve(session.get("sid"))
            if g.user is None and "sid" in session:
                session.pop("sid")                    # ended, or never valid: drop it from the cookie
        g.lang = session.get("lang") or (g.user.lang if g.user else "zh")

    @app.context_processor
    def helpers():
        return {"t": lambda key, **kw: translate(key, g.get("lang", "zh"), **kw), "when": local_time,
                "role_name": lambda r: ctx.role_name(r, g.get("lang", "zh")), "user": g.get("user"),
                "lang": g.get("lang", "zh")}

    @app.errorhandler(CSRFError)
    def csrf_error(err):
        from flask import flash
        flash(translate("csrf", g.get("lang", "zh")), "error")
        return redirect(request.referrer or url_for("pages.inbox")), 303

    @app.errorhandler(BadParameter)
    def bad_parameter(err):
        if _wants_json():
            return jsonify(error=err.description), 400
        lang = g.get("lang", "zh")
        return render_template("error.html", message=translate("bad_request", lang),
                               detail=translate(err.key, lang, name=err.parameter, **err.values)), 400

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(err):
        limit = app.config["MAX_CONTENT_LENGTH"]
        if _wants_json():
            return jsonify(error=f"the request is larger than {limit} bytes"), 413
        lang = g.get("lang", "zh")
        return render_template("error.html", message=translate("too_large", lang),
                               detail=translate("too_large_detail", lang, size=_size(limit))), 413

    @app.get("/healthz")
    def health():
        return {"status": "ok"}

    from .api import api
    from .api_v1 import api_v1    # first: its token check runs before the pages' sign-in check (docs/api.md)
    app.register_blueprint(api_v1)
    from .pages import pages
    app.register_blueprint(pages)
    app.register_blueprint(api)
    from .dossier_pages import dossier_pages      # the case dossier (归档) downloads
    app.register_blueprint(dossier_pages)
    from .stats_pages import stats; app.register_blueprint(stats)   # noqa: E702  (统计, docs/statistics.md)
    from .review_pages import review
    app.register_blueprint(review)
    install_sign_in_limits(app, ctx, settings)
    return app


def check_org(service, users) -> None:
    """The service's organisation file (engine/org.py) read and checked, its people's logins
    against the users file: OrgFileError (one line per entry at fault) when it is wrong."""
    from ..engine.org import OrgFileError, users_problems
    from .users import DEMO_USERS
    problems = users_problems(service.org, set(users.users), users.source, Path(users.source) == DEMO_USERS)
    if problems:
        raise OrgFileError(problems)


def _refuse_nul() -> None:
    """A NUL character in the path, the query or a form is refused (400): PostgreSQL cannot
    store or even compare text holding one (`/cases/a%00b` was a DataError, HTTP 500)."""
    sources = [("path", (request.view_args or {}).items()), ("query", request.args.items(multi=True))]
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        sources.append(("form", request.form.items(multi=True)))
    for where, pairs in sources:
        for key, value in pairs:
            if "\x00" in key or (isinstance(value, str) and "\x00" in value):
                raise BadParameter(key.replace("\x00", "\\0") or where, "bad_nul")


def _wants_json() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _size(limit: int) -> str:
    return f"{limit / MiB:g} MB" if limit >= MiB else f"{limit / 1024:g} KB"


def local_time(value, with_seconds=False) -> str:
    """An ISO moment as staff read it: Beijing time, no offset."""
    if not value:
        return ""
    try:
        at = parse_instant(str(value)).astimezone(SHANGHAI)
    except ValueError:
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")
