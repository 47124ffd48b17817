"""Flask application factory: the staff inbox (HTML), a small read-only JSON API, sign-in.

Configuration comes from the environment with safe defaults (docs/operations.md):
COMPLAINTFLOW_SECRET_KEY (else a key kept in var/secret_key), COMPLAINTFLOW_USERS_FILE
(else the demo users), COMPLAINTFLOW_PROCESSES (the directory whose roles.json names the
roles; default processes/).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from ..engine.clock import SHANGHAI, parse_instant
from ..engine.service import ComplaintService
from .i18n import translate
from .users import UserDirectory, load_users


@dataclass
class WebContext:
    service: ComplaintService
    users: UserDirectory
    roles: dict            # roles.json: id -> {"zh", "en", "description", "sees_identity"}

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
               roles: dict | None = None, secret_key: str | None = None, testing: bool = False) -> Flask:
    app = Flask(__name__)
    roles = roles if roles is not None else load_roles()
    app.config.update(
        SECRET_KEY=secret_key or _secret_key(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,          # a form left open over lunch still submits
        TESTING=testing,
    )
    CSRFProtect(app)
    ctx = WebContext(service or ComplaintService(), users or load_users(known_roles=set(roles) or None), roles)
    app.extensions["complaintflow"] = ctx

    @app.before_request
    def load_user():
        g.ctx = ctx
        g.user = ctx.users.get(session.get("user"))
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

    @app.get("/healthz")
    def health():
        return {"status": "ok"}

    from .api import api
    from .pages import pages
    app.register_blueprint(pages)
    app.register_blueprint(api)
    return app


def local_time(value, with_seconds=False) -> str:
    """An ISO moment as staff read it: Beijing time, no offset."""
    if not value:
        return ""
    try:
        at = parse_instant(str(value)).astimezone(SHANGHAI)
    except ValueError:
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")
