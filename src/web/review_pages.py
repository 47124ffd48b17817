"""The compliance reviewer's pages (docs/review.md): find cases, replay a case event by event,
check cases against their event log.

Reviewers hold a role marked `"reviews": true` in roles.json. They read every case of every
procedure — each search, case, replay and check is written to access_log — and act on none:
completing, claiming and registering stay with the task roles (pages.py refuses them).
Identity fields are masked unless the reviewer role has `sees_identity`.

`/cases/<ref>/replay` is open to anyone who may see the case (reviewers: every case).
"""

from __future__ import annotations

import json
import threading

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from ..engine import drawing
from ..engine.clock import iso
from ..engine.errors import NotFound
from ..engine.review import at_event, search as case_search, verify
from .app import date_param, int_param
from .case_view import display
from .pages import CaseView, _category_titles, is_reviewer, refuse, svc, t

review = Blueprint("review", __name__)
STATUSES = ("running", "completed", "incident")
MAX_OFFSET = 1_000_000
MAX_EVENTS = 1_000_000


@review.app_context_processor
def reviewer_flag():
    user = g.get("user")
    return {"is_reviewer": bool(user) and is_reviewer()}


def _reviewers_only(action: str, target: str | None = None):
    if not is_reviewer():
        refuse(action, target, f"{g.user.login} holds no reviewing role")



def _text_param(name: str) -> str | None:
    return (request.args.get(name) or "").strip()[:100] or None


# --- find ----------------------------------------------------------------------------------

@review.get("/review")
def search():
    _reviewers_only("review_search")
    # the bulk check's state first: a page that shows its result also shows every badge it wrote
    job = _job().snapshot()
    status = request.args.get("status") or None
    if status not in STATUSES:
        status = None
    breached = {"1": True, "0": False}.get(request.args.get("breached") or "")
    filters = {"case_number": _text_param("case_number"), "process_id": _text_param("process"),
               "received_from": date_param(request.args, "received_from"),
               "received_to": date_param(request.args, "received_to"),
               "status": status, "breached": breached, "category": _text_param("category"),
               "department": _text_param("department"), "legal_state": _text_param("legal_state")}
    limit = int_param(request.args, "limit", 50, 10, 200)
    offset = int_param(request.args, "offset", 0, 0, MAX_OFFSET)
    result = case_search.search_cases(svc(), limit=limit, offset=offset, **filters)
    svc().log_access(g.user.login, "review_search", request.query_string.decode("utf-8", "replace")[:100] or None,
                     True, "compliance review")
    procedures = sorted({p["process_id"]: p["name"] for p in svc().processes()}.items())
    titles = _category_titles([pid for pid, _ in procedures])
    badges = {c["instance_id"]: c["last_verification"] if "last_verification" in c
              else verify.last_verification(svc(), c["instance_id"]) for c in result["cases"]}
    args = {k: v for k, v in request.args.items() if k != "offset" and v}
    return render_template("review_search.html", result=result, filters=filters, args=args, limit=limit,
                           offset=offset, statuses=STATUSES, procedures=procedures, badges=badges,
                           categories=sorted(titles, key=lambda c: titles[c]),
                           category_title=lambda c: titles.get(c, c), job=job)


# --- verify --------------------------------------------------------------------------------

class BulkCheck:
    """One bulk verification at a time per app, in a background thread: its progress and its
    last result, for the /review page. A daemon thread is enough here: verify_all only reads
    the log and writes Verification rows, so a check cut short by a restart loses nothing
    but itself."""

    def __init__(self):
        self.lock = threading.Lock()
        self.thread = None
        self.state: dict = {}

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.state, running=bool(self.thread and self.thread.is_alive()))

    def start(self, service, actor: str, process_id: str | None, actor_name: str | None = None) -> bool:
        with self.lock:
            if self.thread and self.thread.is_alive():
                return False
            self.state = {"by": actor_name or actor, "process_id": process_id, "started_at": iso(service.clock.now()),
                          "done": 0, "total": None, "result": None, "error": None}
            self.thread = threading.Thread(target=self._run, args=(service, actor, process_id),
                                           name="complaintflow-verify", daemon=True)
            self.thread.start()
            return True

    def _progress(self, done: int, total: int):
        with self.lock:
            self.state.update(done=done, total=total)

    def _run(self, service, actor, process_id):
        try:
            result = verify.verify_all(service, actor=actor, process_id=process_id, progress=self._progress)
            with self.lock:
                self.state.update(result=result, ended_at=iso(service.clock.now()))
        except Exception as err:     # shown on the page; the thread must not die silently
            with self.lock:
                self.state.update(error=str(err)[:300], ended_at=iso(service.clock.now()))

    def wait(self, timeout: float | None = None):
        if self.thread:
            self.thread.join(timeout)


def _job() -> BulkCheck:
    return current_app.extensions.setdefault("complaintflow.bulk_check", BulkCheck())


@review.post("/review/verify")
def verify_all():
    _reviewers_only("verify_all")
    process_id = (request.form.get("process") or "").strip()[:100] or None
    started = _job().start(svc(), g.user.login, process_id, g.user.name)
    svc().log_access(g.user.login, "verify_all", process_id, True, "compliance review" if started else "already running")
    flash(t("verify_started" if started else "verify_busy"), "ok" if started else "error")
    return redirect(url_for("review.search"), 303)


@review.get("/review/verify")
def verify_status():
    _reviewers_only("verify_status")
    return _job().snapshot()


@review.post("/cases/<ref>/verify")
def verify_case(ref):
    view = CaseView(ref, "verify_case")
    if not view.reviewing:
        refuse("verify_case", view.summary.get("case_number") or view.id, f"{g.user.login} holds no reviewing role")
    verify.verify_case(svc(), view.id, actor=g.user.login)
    return redirect(url_for("pages.case_page", ref=view.summary.get("case_number") or view.id) + "#verification", 303)


def badge_for(view) -> dict | None:
    return verify.last_verification(svc(), view.id) if view.reviewing else None


# --- replay --------------------------------------------------------------------------------

@review.get("/cases/<ref>/replay")
def replay(ref):
    view = CaseView(ref, "replay_case")
    total = len(view.readable)
    if not total:
        raise NotFound(f"case '{ref}' has no events")
    until = min(int_param(request.args, "until", total, 1, MAX_EVENTS), total)
    at = at_event.case_at(svc(), view.id, until)
    path = at.get("path") or {}
    names = {k: g.ctx.role_name(k, g.lang) for k in g.ctx.roles}
    try:
        diagram = drawing.render(view.detail["bpmn_xml"].encode("utf-8"), role_names=names,
                                 done=set(path.get("done") or ()), current=set(path.get("current") or ()),
                                 taken_flows=set(path.get("flows") or ()))
    except ValueError:
        diagram = ""
    props = view.properties()
    data = view.mask({k: v for k, v in (at.get("data") or {}).items() if k != "deadlines"})
    rows = [(props[k]["title"], display(v, props[k])) for k, v in data.items()   # as the forms name them
            if k in props and v not in (None, "", [], {})]
    raw = json.dumps(data, ensure_ascii=False, indent=2, default=str)           # everything, behind 原始数据
    number = view.summary.get("case_number") or view.id
    return render_template("review_replay.html", view=view, case=view.summary, at=at, until=until, total=total,
                           diagram=diagram, data_rows=rows, raw_data=raw, ref=number, badge=badge_for(view),
                           event=next((e for e in view.readable if e["seq"] == until), None))
