"""The staff inbox: sign-in, role inbox, intake, task page, case page — the routes.

Every page goes through the service layer; nothing here changes a case except by
`service.start` and `service.complete_task`, which apply the engine's rules. Who may see and
do what is decided with access.py (refusals logged, a case or task the user may not see
answered as missing); what a case page shows is built by case_view.CaseView.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlparse

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from werkzeug.datastructures import MultiDict

from ..engine.clock import iso, parse_instant
from ..engine.errors import Conflict, InvalidInput, NotAllowed, NotFound, Person, Role, msg
from ..engine.org import with_people
from ..engine.inbox import INBOX_STATUSES
from ..engine.messages import not_awaited
from ..engine import deadline_text
from . import formgen
# re-exported: the other blueprints and the API import these from here
from .access import (Unseen, _mine, hide, is_reviewer, my_roles, person_name, refuse, said, svc,  # noqa: F401
                     t)
from .app import int_param, local_time
from .case_view import CaseView
from .i18n import LANGS

pages = Blueprint("pages", __name__)
OPEN_ENDPOINTS = {"pages.login", "pages.language", "static"}
INBOX_PAGE_SIZE = 50
INBOX_MAX_PAGE = 10_000         # 500,000 tasks deep; the page number is bounded before it reaches SQL
MAX_ROW_INDEX = 999             # table rows NAME.INDEX in a form (werkzeug reads at most 1,000 fields)
SAFE_NUMBER = 2 ** 53 - 1       # a number in a form beyond this loses digits in JSON readers: refused



@pages.before_app_request
def require_login():
    if request.endpoint in OPEN_ENDPOINTS or request.endpoint == "health" or request.blueprint == "api":
        return None
    if g.user is None:
        return redirect(url_for("pages.login", next=request.full_path))
    return None



@pages.app_context_processor
def limit_helpers():
    """Time limits and people as every page shows them (deadline_text.py)."""
    now = svc().clock.now() if g.get("ctx") else None
    lang = g.get("lang", "zh")
    return {"due_words": lambda limit: deadline_text.due_text(limit, lang, now) if limit and limit.get("due") else "",
            "left_words": lambda limit: deadline_text.left_text(limit, now, svc().calendar, lang)
            if limit and limit.get("due") else None,
            "size_words": lambda d: deadline_text.size_text(d.get("unit"), d.get("amount"), lang,
                                                            d.get("extended_by") or d.get("extended") or 0),
            "person": lambda login: person_name(login) or login}


@pages.app_errorhandler(NotAllowed)
def not_allowed(err):
    if request.blueprint == "api":
        return {"error": str(err)}, 403
    return render_template("error.html", message=t("not_allowed"), detail=said(err)), 403


@pages.app_errorhandler(Conflict)
def conflict(err):
    """Someone else acted first (or the action no longer fits): 409, saying who and when."""
    if request.blueprint == "api":
        return {"error": str(err), "by": err.by, "at": iso(err.at)}, 409
    return render_template("error.html", message=t("conflict_title"), detail=conflict_sentence(err)), 409


def lost_race(err, action, target, back):
    """A form posted after someone else acted: logged as refused, the 409 page with a way back."""
    svc().log_access(g.user.login, action, target, False, f"conflict: {err}")
    return render_template("error.html", message=t("conflict_title"), detail=conflict_sentence(err), back=back), 409


def conflict_sentence(err: Conflict) -> str:
    """What happened, in the page's language: who acted first and when (to the minute), else
    the engine's message."""
    if err.by and err.at:
        return t("conflict_by", by=person_name(err.by) or err.by, at=local_time(iso(err.at)))
    return said(err) or t("conflict_title")


@pages.app_errorhandler(NotFound)
def not_found(err):
    if request.blueprint == "api":
        return {"error": str(err)}, 404
    if isinstance(err, Unseen):
        return render_template("error.html", message=t(f"unseen_{err.kind}")), 404
    return render_template("error.html", message=t("not_found"), detail=said(err)), 404


# --- sign-in -------------------------------------------------------------------------------

@pages.route("/login", methods=["GET", "POST"])
def login():
    # wrapped at start-up in the sign-in limits (auth.install_sign_in_limits): a wrong password
    # answers 401, which is what those limits count
    error = None
    if request.method == "POST":
        user = g.ctx.users.authenticate(request.form.get("login", ""), request.form.get("password", ""))
        if user is None:
            error = t("bad_login")
            svc().log_access(request.form.get("login", "")[:100], "sign_in", None, False, "wrong user name or password")
        else:
            g.ctx.web_sessions.end(session.get("sid"))        # one browser, one session
            session.clear()
            session["sid"] = g.ctx.web_sessions.begin(user, request.remote_addr)
            session["lang"] = user.lang
            target = request.args.get("next") or ""
            return redirect(target if _local_path(target) else url_for("pages.inbox"))
    return render_template("login.html", error=error), 401 if error else 200


_SAFE_PATH = re.compile(r"/(?![/\\])[^\\\x00-\x20\x7f]*")


def _local_path(target: str) -> bool:
    """A path on this site: one slash, then no second slash or backslash (browsers read
    `//host` and `/\\host` as another site), no spaces or control characters."""
    parsed = urlparse(target)
    return bool(_SAFE_PATH.fullmatch(target or "")) and not parsed.scheme and not parsed.netloc


@pages.post("/logout")
def logout():
    g.ctx.web_sessions.end(session.get("sid"))
    session.clear()
    return redirect(url_for("pages.login"))


@pages.get("/lang/<code>")
def language(code):
    if code in LANGS:
        session["lang"] = code
    back = request.referrer or ""
    return redirect(back if _local_path(urlparse(back).path) and urlparse(back).netloc in ("", request.host)
                    else url_for("pages.inbox"))


# --- inbox ---------------------------------------------------------------------------------

@pages.get("/")
def inbox():
    roles = my_roles()
    if is_reviewer() and all((g.ctx.roles.get(r) or {}).get("reviews") for r in roles):
        return redirect(url_for("review.search"))        # a reviewer has no tasks: straight to the search
    status = request.args.get("status", "all")
    if status not in INBOX_STATUSES:
        status = "all"
    process_id = request.args.get("process") or None
    category = request.args.get("category") or None
    page_no = int_param(request.args, "page", 1, 1, INBOX_MAX_PAGE, "bad_page")
    size = INBOX_PAGE_SIZE
    page = svc().inbox(roles=roles, user=g.user.login, process_id=process_id, category=category,
                       status=status, limit=size, offset=(page_no - 1) * size)
    procedures = [(info["process_id"], info["name"]) for info in _my_procedures()]
    titles = _category_titles([pid for pid, _ in procedures])
    return render_template("inbox.html", page=page, page_no=page_no, size=size, status=status,
                           statuses=INBOX_STATUSES, process_id=process_id, category=category,
                           procedures=procedures, categories=sorted(titles, key=lambda c: titles[c]),
                           counts=svc().inbox_counts(roles), category_title=lambda c: titles.get(c, c))


def _my_procedures() -> list[dict]:
    """The newest version of each procedure one of the user's roles works on (registers its
    cases or has a lane in it), by id."""
    out = []
    for info in svc().newest_processes():
        meta = info["meta"]
        roles = {meta.get("start_role")} | {task.get("role") for task in (meta.get("tasks") or {}).values()}
        if my_roles() & roles:
            out.append(info)
    return out


def _category_titles(process_ids) -> dict:
    """Category code -> its title in the procedures' intake forms."""
    out = {}
    wanted = set(process_ids)
    for info in svc().newest_processes():
        if info["process_id"] not in wanted:
            continue
        form = info["forms"].get(info["meta"].get("start_form") or "") or {}
        out |= formgen.choice_titles((form.get("properties") or {}).get("category") or {})
    return out


@pages.post("/tasks/<task_id>/claim")
def claim(task_id):
    return _claim_or_release(task_id, svc().claim_task, "claimed")


@pages.post("/tasks/<task_id>/release")
def release(task_id):
    return _claim_or_release(task_id, svc().release_task, "released")


def _claim_or_release(task_id, action, done_key):
    _task_for_me(task_id, "claim_task")      # not the user's: 404, or 403 for a task given to a colleague
    try:
        action(task_id, g.user.login, roles=my_roles())
        flash(t(done_key), "ok")
    except (NotAllowed, NotFound) as err:
        hide("task", "claim_task", task_id, str(err))
    except Conflict as err:
        flash(conflict_sentence(err), "error")
    back = request.form.get("back") or ""
    return redirect(back if _local_path(back) else url_for("pages.inbox"), 303)


@pages.get("/cases/<ref>")
def case_page(ref):
    from .review_pages import badge_for
    view = CaseView(ref, "view_case")
    registered = request.args.get("registered") == "1"
    return render_template("case.html", view=view, case=view.summary, registered=registered, badge=badge_for(view))


# --- messages from outside -------------------------------------------------------------------

@pages.route("/cases/<ref>/messages/<name>", methods=["GET", "POST"])
def message_page(ref, name):
    """Record a message from outside the case waits for (a withdrawal, a supplement, a
    ruling) with its form: the same `send_message` as the CLI and the API."""
    action = "view_message" if request.method == "GET" else "record_message"
    view = CaseView(ref, action)
    event = next((m for m in view.messages if m["message"] == name), None)
    if event is None:
        waiting = [m for m in view.detail["awaited"] if m["message"] == name]
        if waiting:         # awaited, but not from this user's roles
            refuse(action, view.summary.get("case_number") or view.id,
                   msg("message_role", event=waiting[0]["name"], message=name, user=Person(g.user.login),
                       roles=[Role(r) for r in sorted({r for m in waiting for r in m["roles"]})]))
        done = [e for e in view.history if e["kind"] == "message_received" and e["payload"].get("message") == name]
        if done:            # a colleague recorded it a moment ago (an open form, a second tab)
            by, at = done[-1]["actor"], parse_instant(done[-1]["at"])
            raise Conflict(msg("message_done_by", event=done[-1]["payload"].get("name") or name, message=name,
                               by=Person(by), at=at), by=by, at=at)
        raise Conflict(not_awaited(view.summary.get("case_number") or view.id, name, view.detail["awaited"],
                                   view.detail["message_labels"].get(name)))
    form = Submission(view.detail["forms"].get(event["form"] or ""))
    if request.method == "POST":
        try:
            result = form.post(lambda data: svc().send_message(view.id, name, data, g.user.login, roles=my_roles()))
        except NotAllowed as err:
            refuse(action, view.summary.get("case_number") or view.id, err.message or str(err))
        except Conflict as err:      # a colleague recorded it first, or the case moved on
            return lost_race(err, action, view.summary.get("case_number") or view.id,
                             url_for("pages.case_page", ref=ref))
        if result is not None:
            flash(f"已登记「{event['name']}」 {result.case_number or ''}", "ok")
            return redirect(url_for("pages.case_page", ref=ref), 303)
    return render_template("message.html", event=event, view=view, case=view.summary, **form.context()), form.status


# --- tasks ---------------------------------------------------------------------------------


def _task_for_me(task_id, action):
    try:
        task = svc().get_task(task_id)
    except NotFound as err:
        hide("task", action, task_id, str(err))
    if task.get("assignee") and not _mine(task) and task["role"] in my_roles():
        # a task of the user's role that the procedure gave to one colleague: say so (403)
        refuse(action, task_id, msg("task_assigned", task=task["name"], assignee=Person(task["assignee"]),
                                    user=Person(g.user.login)))
    if not _mine(task):
        hide("task", action, task_id, f"task '{task['name']}' is assigned to {task['assignee']}" if task.get("assignee")
             else f"task '{task['name']}' is for role '{task['role']}', which {g.user.login} does not hold")
    return task


class Submission:
    """A form on a page: shown empty (with its defaults) or, after a POST, parsed and sent to
    the service by `act(data)`; errors go back beside the fields with what was typed."""

    def __init__(self, schema: dict | None):
        # person fields (`x-org-person`) offer the organisation's people to choose from (org.py)
        self.schema = with_people(schema, svc().org) if schema else {"type": "object", "properties": {}}
        self.values, self.errors, self.status = formgen.to_form_values(self.schema, {}), {}, 200

    def post(self, act):
        """The action's result, or None when the form goes back with errors."""
        form, bad_rows = _bounded_rows(request.form)
        data, self.errors = formgen.parse(self.schema, form)
        self.values = form                              # re-shown as typed: nothing is lost
        for name, value in data.items():
            if _too_large(value):
                self.errors.setdefault(name, []).append(t("number_too_large"))
        if bad_rows:
            self.errors.setdefault("_form", []).append(t("bad_row", max=MAX_ROW_INDEX + 1))
        if not self.errors:
            try:
                return act(data)
            except InvalidInput as err:
                texts = err.field_texts(g.lang, person=person_name) or {"_form": [said(err) or t("bad_request")]}
                self.errors = formgen.explain(self.schema, data, texts)
        self.status = 400
        return None

    def context(self) -> dict:
        return {"fields": formgen.fields(self.schema, self.values), "values": self.values, "errors": self.errors}


def _bounded_rows(form) -> tuple[MultiDict, bool]:
    """The form without table rows numbered beyond MAX_ROW_INDEX (NAME.INDEX or NAME.INDEX.COLUMN,
    the names formgen gives table inputs), and whether there were any."""
    def fits(key):
        return all(not part.isdecimal() or (part.isascii() and len(part) <= 3 and int(part) <= MAX_ROW_INDEX)
                   for part in key.split(".")[1:])
    pairs = list(form.items(multi=True))
    kept = [(k, v) for k, v in pairs if fits(k)]
    return MultiDict(kept), len(kept) != len(pairs)


def _too_large(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) > SAFE_NUMBER
    if isinstance(value, float):
        return not math.isfinite(value) or abs(value) > SAFE_NUMBER
    if isinstance(value, dict):
        return any(_too_large(v) for v in value.values())
    if isinstance(value, list):
        return any(_too_large(v) for v in value)
    return False


@pages.route("/tasks/<task_id>", methods=["GET", "POST"])
def task_page(task_id):
    task = _task_for_me(task_id, "view_task" if request.method == "GET" else "complete_task")
    view = CaseView(task["instance_id"], "view_task", task=task)
    form = Submission(svc().task_form(task_id))
    if request.method == "POST":
        try:
            result = form.post(lambda data: svc().complete_task(task_id, g.user.login, data, roles=my_roles()))
        except NotAllowed as err:
            hide("task", "complete_task", task_id, str(err))
        except Conflict as err:      # a colleague (or the scheduler) acted first: the conflict page
            return lost_race(err, "complete_task", task_id, url_for("pages.task_page", task_id=task_id))
        if result is not None:
            flash(f"{t('task_done')} {result.case_number or ''}", "ok")
            return redirect(url_for("pages.inbox"), 303)
    view.reveal(task)                 # the identity the task needs, logged when the page shows it
    meta = view.meta["tasks"].get(task["task"], {})
    return render_template("task.html", task=task, view=view, case=view.summary, documentation=meta.get("documentation"),
                           **form.context()), form.status


# --- intake --------------------------------------------------------------------------------

def _startable() -> list[dict]:
    return [info for info in _my_procedures() if info["meta"].get("start_role") in my_roles()]


@pages.get("/new")
def new_case():
    return render_template("new.html", procedures=_startable())


@pages.route("/new/<process_id>", methods=["GET", "POST"])
def intake(process_id):
    info = svc().process_info(process_id)
    if info["meta"].get("start_role") not in my_roles():
        refuse("start", process_id, msg("start_role", process=info["name"], role=Role(info["meta"].get("start_role"))))
    form = Submission(info["forms"].get(info["meta"].get("start_form") or ""))
    if request.method == "POST":
        result = form.post(lambda data: svc().start(process_id, data, g.user.login))
        if result is not None:
            return redirect(url_for("pages.case_page", ref=result.instance_id, registered=1), 303)
    return render_template("intake.html", info=info, **form.context()), form.status
