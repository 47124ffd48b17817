"""The staff inbox: sign-in, role inbox, intake, task page, case page.

Every page goes through the service layer; nothing here changes a case except by
`service.start` and `service.complete_task`, which apply the engine's rules. A user sees
and acts only on tasks of roles they hold; other attempts are refused and logged. A case or
task the user may not see is answered exactly as one that does not exist (404, the same
page), so that sequential case numbers cannot be probed; both are logged.
"""

from __future__ import annotations

import json
import math
import re
import threading
from functools import cached_property
from urllib.parse import urlparse

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from werkzeug.datastructures import MultiDict

from ..engine import drawing, legal_states
from ..engine.confidentiality import (hidden_from, identity_fields, identity_values, may_see_identity, redact,
                                      revealed_fields)
from ..engine.clock import iso, parse_instant
from ..engine.deadlines import rounds
from ..engine.errors import Conflict, InvalidInput, NotAllowed, NotFound, Person, Role, msg
from ..engine.org import with_people
from ..engine.inbox import INBOX_STATUSES
from ..engine.messages import not_awaited
from ..engine.review.history import readable_history
from ..engine import deadline_text
from . import diagram_view, formgen
from .app import int_param, local_time
from .i18n import LANGS, translate

pages = Blueprint("pages", __name__)
OPEN_ENDPOINTS = {"pages.login", "pages.language", "static"}
INBOX_PAGE_SIZE = 50
INBOX_MAX_PAGE = 10_000         # 500,000 tasks deep; the page number is bounded before it reaches SQL
MAX_ROW_INDEX = 999             # table rows NAME.INDEX in a form (werkzeug reads at most 1,000 fields)
SAFE_NUMBER = 2 ** 53 - 1       # a number in a form beyond this loses digits in JSON readers: refused


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


@pages.before_app_request
def require_login():
    if request.endpoint in OPEN_ENDPOINTS or request.endpoint == "health" or request.blueprint == "api":
        return None
    if g.user is None:
        return redirect(url_for("pages.login", next=request.full_path))
    return None


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


# --- a case as a user may see it -------------------------------------------------------------

class CaseView:
    """One case for one user: summary, data, history and path, with identity masked where
    the user's roles may not see it."""

    def __init__(self, ref: str, action: str, *, task: dict | None = None):
        """`task`: a task of the case that is for one of the user's roles (the task page), which
        already shows the user works on the case: nothing more is read to check that (a
        reviewer's reading is still logged), and the summary only when a page shows it."""
        self.ref, self.action = ref, action
        self.reviewing = is_reviewer()
        self._choice_titles: dict[str, dict] = {}      # found once per page (choice_titles, limit_label)
        self._limit_labels: dict[tuple, str] = {}
        if task is not None and _mine(task) and not self.reviewing:
            self.id = task["instance_id"]
            return
        self.id = self.summary["instance_id"]
        # every role that has or had a task in the case (service.case_roles), from the task
        # rows `show` already read: open and not open
        task_roles = {t["role"] for t in self.summary["open_tasks"] + self.summary["completed_tasks"] if t["role"]}
        if self.reviewing:          # reads every case, and every reading is on record
            svc().log_access(g.user.login, action, self.summary.get("case_number") or self.id, True, "compliance review")
        elif not (my_roles() & task_roles or my_roles() & {self.meta.get("start_role")} or self.messages
                  or my_roles() & self.recorded_in or any(t.get("assignee") == g.user.login for t in
                                                          self.summary["open_tasks"] + self.summary["completed_tasks"])):
            hide("case", action, self.summary.get("case_number") or self.id,
                 f"no role of {g.user.login} ({', '.join(sorted(my_roles()))}) works on this case")

    @cached_property
    def summary(self) -> dict:
        try:
            return svc().show(self.ref)
        except NotFound as err:
            hide("case", self.action, self.ref, str(err))

    # The case's state (data and path) is read when a page first needs it: a task page's POST
    # that completes the task reads it once, in `complete_task`, not here as well.
    @cached_property
    def detail(self) -> dict:
        return svc().case_detail(self.id)

    @cached_property
    def meta(self) -> dict:
        return self.detail["meta"]

    def legal_state_name(self, state: str | None) -> str | None:
        """The legal state as staff read it (processes/legal_states.json, kept with the version)."""
        return legal_states.label(self.meta, state, g.lang)

    @property
    def recorded_in(self) -> set[str]:
        """The roles messages from outside were recorded in (they work on the case too)."""
        return {e["payload"].get("role") for e in self.history if e["kind"] == "message_received"} - {None}

    @cached_property
    def messages(self) -> list[dict]:
        """The messages from outside the case waits for that the user's roles may record
        (engine/messages.py); a reviewer records none."""
        if self.reviewing:
            return []
        return [m for m in self.detail["awaited"] if my_roles() & set(m["roles"])]

    @cached_property
    def hidden(self) -> set[str]:
        return identity_fields(self.detail["forms"])

    @cached_property
    def sees_identity(self) -> bool:
        return (may_see_identity(my_roles(), g.ctx.roles, self.detail["data"], self.meta.get("start_role"))
                and not self.identity_withheld)

    @cached_property
    def identity_withheld(self) -> bool:
        """The user is the person the procedure hides the complainant's identity from
        (`hideIdentityFrom`, the person complained about): no role or task shows it to them."""
        return hidden_from(self.meta, self.detail["data"], svc().org, g.user.login)

    @cached_property
    def secrets(self) -> set:
        return set() if self.sees_identity else identity_values(self.detail["data"], self.hidden)

    @cached_property
    def history(self) -> list[dict]:
        if "summary" not in self.__dict__:        # the task page, which has not read the case row
            return svc().history(self.id)
        last = self.summary["events"]         # an event appended since `show` read the case belongs to the next key
        return _by_log(self._log_key("events"), lambda: [e for e in svc().history(self.id) if e["seq"] <= last])

    def _log_key(self, *more) -> tuple | None:
        """What is read from the case's event log is the same while its last event is (`_by_log`).
        None for a reviewer, who reads the log as stored now: an event edited in place (which
        `replay --verify` finds) changes no last event."""
        return None if self.reviewing else (str(svc().engine.url), self.id, self.summary["events"], *more)

    @cached_property
    def readable(self) -> list[dict]:
        """The readable history (engine.review.history): one Chinese sentence per event, the
        submitted fields by title, the changes; `raw_json` is the stored event, masked like
        everything else the user reads, for the 原始数据 toggle."""
        def read():
            rows = readable_history(svc(), self.id, may_see_identity=self.sees_identity, names=_names,
                                    roles=g.ctx.roles, limit_label=self.limit_label, seeds=self.reviewing,
                                    detail=self.detail, events=self.history)
            for row in rows:
                row["fields"] = self.mask(row.get("fields") or [])
                row["changes"] = self.mask(row.get("changes") or [])
                row["raw_json"] = json.dumps(self.mask(row.get("raw")), ensure_ascii=False, indent=2, default=str)
            return rows
        if "summary" not in self.__dict__:
            return read()
        # how this user reads it: identity shown or masked (and which fields), the language of
        # the mask, the app's users and roles (a reviewer's, with the limits' seeds, is not kept)
        return _by_log(self._log_key("readable", self.sees_identity, frozenset(self.hidden), g.lang, id(g.ctx)), read)

    def reveal(self, task: dict):
        """Identity fields the task's BPMN grants (`revealFields`) to the user holding it:
        shown on this task's page, every showing logged."""
        shown = set() if self.sees_identity or self.identity_withheld else revealed_fields(self.detail["bpmn_xml"], task, self.detail["data"],
                                                                 self.hidden, g.user.login)
        if shown:
            self.hidden = self.hidden - shown
            self.secrets = identity_values(self.detail["data"], self.hidden)
            svc().log_access(g.user.login, "reveal_identity", self.summary.get("case_number") or self.id, True,
                             f"task '{task['name']}' ({task['task']}) shows {', '.join(sorted(shown))}")

    def assignment(self, task: dict) -> dict | None:
        """For a task its procedure gives to one person (`assignTo`, engine/org.py): the case log's
        `task_assigned` event of it — to whom (`assignee`), or why to no one (`reason`)."""
        if not (self.meta["tasks"].get(task["task"]) or {}).get("assign_to"):
            return None
        found = [e["payload"] for e in self.history if e["kind"] == "task_assigned" and e["task_id"] == task["task_id"]]
        return found[-1] if found else None

    def mask(self, value):
        if self.sees_identity or not self.hidden:
            return value
        return redact(value, self.hidden, t("confidential"), self.secrets)

    @property
    def data(self):
        shown = {k: v for k, v in self.detail["data"].items() if k != "deadlines"}
        return self.mask(shown)

    @cached_property
    def _properties(self) -> dict[str, dict]:
        out = {}
        for schema in self.detail["forms"].values():
            for name, prop in (schema.get("properties") or {}).items():
                if isinstance(prop, dict) and prop.get("title"):
                    out.setdefault(name, prop)
        return out

    def properties(self) -> dict[str, dict]:
        """Field name -> its schema in the forms of the process (the first form naming it)."""
        return self._properties

    def summary_rows(self) -> list[tuple[str, str]]:
        """(title, value as staff read it) for each filled field of the case data; a choice
        whose value none of the forms gives a title (a placeholder such as "none") is left out."""
        props = self.properties()
        rows = [(props[k]["title"], display(v, props[k], self.choice_titles(k))) for k, v in self.data.items()
                if k in props and v not in (None, "", [], {}) and k not in self.undecided]
        return [(title, value) for title, value in rows if value != ""]

    def choice_titles(self, name: str) -> dict:
        """Value -> title of field `name`'s choices in every form of the process naming it."""
        titles = self._choice_titles.get(name)
        if titles is None:
            titles = self._choice_titles[name] = self._choices_of(name)
        return titles

    def _choices_of(self, name: str) -> dict:
        out = {}
        for schema in self.detail["forms"].values():
            prop = (schema.get("properties") or {}).get(name)
            if isinstance(prop, dict):
                out = formgen.choice_titles(prop) | out
        return out

    @property
    def process_name(self) -> str:
        return self.meta.get("name") or self.summary["process_id"]

    def limit_label(self, name: str, unit=None, amount=None) -> str:
        """A limit's Chinese name from the case's BPMN (deadline_text.limit_label), found once
        per page for each (name, unit, amount)."""
        key = (name, unit, amount)
        if key not in self._limit_labels:
            self._limit_labels[key] = deadline_text.limit_label(name, self.detail["bpmn_xml"], unit, amount)
        return self._limit_labels[key]

    def deadlines(self) -> list[dict]:
        """The case's limits, each with its Chinese name (`label`)."""
        return [dict(d, label=self.limit_label(d["name"], d["unit"], d["amount"])) for d in self.summary["deadlines"]]

    def limit_rounds(self) -> list[dict]:
        """Limits started more than once (promise loops) with their rounds from the event log
        (engine.deadlines.rounds); the log is read only when there is one."""
        looped = [d for d in self.summary["deadlines"] if (d.get("round") or 1) > 1]
        return [dict(rounds(d, self.history), name=d["name"], label=self.limit_label(d["name"], d["unit"], d["amount"]))
                for d in looped]

    def limit_for(self, task: dict) -> dict | None:
        """The limit a task is due by (the running limit with the task's due moment), or the
        bare due moment when no limit of the case has it; None without a due moment."""
        if not task.get("due"):
            return None
        return next((d for d in self.deadlines() if d["due"] == task["due"] and d["status"] in ("open", "breached")),
                    {"due": task["due"]})

    @cached_property
    def undecided(self) -> set[str]:
        """Fields of the summary (those with a title) still holding the procedure's initial
        data (what its gateways start from) that no task, message or handler set since: a
        default, not a decision."""
        initial, data = self.meta.get("initial_data") or {}, self.detail["data"]
        props = self.properties()
        keys = {k for k, v in initial.items() if data.get(k) == v and k in props}   # of those the summary shows
        for e in self.history if keys else ():          # none: the history is not read for it
            p = e["payload"] or {}
            keys -= set({"task_completed": p.get("data"), "message_received": p.get("payload"),
                         "handler_called": p.get("updates")}.get(e["kind"]) or {})
        return keys

    def diagram(self) -> str:
        """The diagram with the case's path and its open tasks in view, the same for the same
        last event of the case (`_by_log`) in the same language."""
        return _by_log(self._log_key("diagram", g.lang, id(g.ctx), request.args.get("diagram") == "all"), self._draw)

    def _draw(self) -> str:
        path = self.detail["path"]
        names = {k: g.ctx.role_name(k, g.lang) for k in g.ctx.roles}
        try:
            svg = drawing.render(self.detail["bpmn_xml"].encode("utf-8"), role_names=names, done=set(path["done"]),
                                 current=set(path["current"]), taken_flows=set(path["flows"]))
        except ValueError:
            return ""
        if request.args.get("diagram") == "all":        # the whole drawing at 100%, for pages without script
            return svg
        return diagram_view.focus(svg, self.detail["bpmn_xml"], {t["task"] for t in self.summary["open_tasks"]})

    def acknowledgement(self) -> list[str]:
        return [e["payload"]["outputs"]["message"] for e in self.history
                if e["kind"] == "handler_called" and isinstance(e["payload"].get("outputs"), dict)
                and e["payload"]["outputs"].get("kind") in ("acknowledgement", "receipt")]


# What a page makes from a case's event log alone (its events, its readable history, its
# diagram with the path, which follows the log) for the last few cases shown. The log only
# grows and every change of a case appends to it, so for the same case and the same last
# event (the case row's `events`, read by `show` on every view) it is the same: a case viewed
# again unchanged is not read and formatted again, and a case that changed is (its key is
# another). Entries are only read once kept (docs/performance.md, "The web pages").
_LOG_VIEWS: dict[tuple, object] = {}
_LOG_VIEWS_MAX = 64
_LOG_VIEWS_LOCK = threading.Lock()


def _by_log(key: tuple | None, make):
    if key is None:
        return make()
    with _LOG_VIEWS_LOCK:
        found = _LOG_VIEWS.pop(key, None)
        if found is not None:
            _LOG_VIEWS[key] = found              # the most recent last
            return found
    found = make()
    with _LOG_VIEWS_LOCK:
        if len(_LOG_VIEWS) >= _LOG_VIEWS_MAX:
            _LOG_VIEWS.pop(next(iter(_LOG_VIEWS)))
        _LOG_VIEWS[key] = found
    return found


def _names(login: str):
    """(display name, role id) of a login for the readable history, or None."""
    user = g.ctx.users.get(login)
    return (user.name, min(user.roles)) if user else None


def display(value, prop: dict, titles: dict | None = None) -> str:
    """A case value as staff read it: choice titles, Beijing time, 是/否; "" for a choice
    field's value that has no title (a placeholder, not a decision)."""
    titles = titles if titles is not None else formgen.choice_titles(prop)
    if titles and isinstance(value, str) and value not in titles:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return "、".join(str(titles.get(v, v)) for v in value)
    if isinstance(value, (str, int)) and value in titles:
        return str(titles[value])
    if prop.get("format") == "date-time" and isinstance(value, str):
        return local_time(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


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

def _mine(task: dict) -> bool:
    """A task the user may work on: assigned to them, or their role's and assigned to nobody."""
    return task["assignee"] == g.user.login if task.get("assignee") else task["role"] in my_roles()


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
