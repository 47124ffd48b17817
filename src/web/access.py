"""Who is asking, for every page: the signed-in user's roles, refusals and look-ups answered
as missing (split out of pages.py; the routes there and the case view, case_view.py, use it).

A user sees and acts only on tasks of roles they hold; other attempts are refused and
logged. A case or task the user may not see is answered exactly as one that does not exist
(404, the same page), so that sequential case numbers cannot be probed; both are logged.
"""

from __future__ import annotations

from flask import g

from ..engine.errors import NotAllowed, NotFound
from .i18n import translate


def svc():
    return g.ctx.service


def t(key, **kw):
    return translate(key, g.lang, **kw)


def my_roles() -> set[str]:
    return set(g.user.roles)


def is_reviewer() -> bool:
    """Holds a role marked `"reviews": true` in roles.json: reads every case of every
    procedure (each reading logged), acts on none."""
    return any((g.ctx.roles.get(r) or {}).get("reviews") is True for r in my_roles())


def refuse(action: str, target: str, reason):
    """Refuse and log an attempt outside the user's roles (`reason`: a Message, logged in English)."""
    svc().log_access(g.user.login, action, target, False, str(reason))
    raise NotAllowed(reason)


class Unseen(NotFound):
    """A case or task that does not exist or that the user may not see: one answer for both."""

    def __init__(self, kind: str):
        super().__init__(f"there is no {kind} by that reference among those your roles work on")
        self.kind = kind


def hide(kind: str, action: str, target: str, reason: str):
    """Log a refused or missing look-up and answer it as missing (404)."""
    svc().log_access(g.user.login, action, str(target)[:100], False, reason)
    raise Unseen(kind)


def person_name(login: str | None) -> str | None:
    """A user's display name (None when the users file does not know the login)."""
    user = g.ctx.users.get(login) if login else None
    return user.name if user else None


def said(err) -> str | None:
    """An engine error in the page's language, people and roles by name; None when the error
    has no language-neutral message (its English is never shown on a page)."""
    return err.text(g.lang, person=person_name, role=lambda r: g.ctx.role_name(r, g.lang))


def _mine(task: dict) -> bool:
    """A task the user may work on: assigned to them, or their role's and assigned to nobody."""
    return task["assignee"] == g.user.login if task.get("assignee") else task["role"] in my_roles()

