"""Read-only JSON for a signed-in user (the same session as the inbox): my tasks, a case,
its history. The same role and confidentiality rules as the pages apply; a case the user may
not see is answered as a missing one (404, the same body)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from ..engine.errors import ComplaintflowError, NotAllowed, NotFound
from ..engine.inbox import PAGE_MAX
from .app import int_param
from .schemas import dump

api = Blueprint("api", __name__, url_prefix="/api")


@api.before_request
def signed_in():
    if g.user is None:
        return jsonify(error="sign in first (POST /login)"), 401
    return None


@api.get("/tasks")
def tasks():
    page = g.ctx.service.inbox(roles=set(g.user.roles), user=g.user.login, limit=int_param(request.args, "limit", 50, 1, PAGE_MAX))
    return jsonify(dump("task", page.tasks, many=True))


@api.get("/cases/<ref>")
def case(ref):
    from .pages import CaseView
    view = CaseView(ref, "view_case")
    return jsonify(dict(dump("case", view.summary), data=view.data))


@api.get("/cases/<ref>/history")
def history(ref):
    from .pages import CaseView
    view = CaseView(ref, "view_case")
    events = [dict(e, payload=view.mask(e["payload"])) for e in view.history]
    return jsonify(dump("event", events, many=True))


@api.errorhandler(ComplaintflowError)
def on_error(err):
    code = 404 if isinstance(err, NotFound) else 403 if isinstance(err, NotAllowed) else 400
    return jsonify(error=str(err)), code
