"""One case as one user may see it (the case page, the task and message pages, the dossier,
the API's case read): summary, data, readable history and diagram, with identity masked
where the user's roles may not see it; and what pages keep of a case's event log
(`_by_log`, docs/performance.md "The web pages"). The routes are in pages.py.
"""

from __future__ import annotations

import json
import threading
from functools import cached_property

from flask import g, request

from ..engine import deadline_text, drawing, legal_states
from ..engine.confidentiality import hidden_from, identity_fields, identity_values, may_see_identity, redact, \
    revealed_fields
from ..engine.deadlines import rounds
from ..engine.errors import NotFound
from ..engine.review.history import reading
from . import diagram_view, formgen
from .access import _mine, hide, is_reviewer, my_roles, svc, t
from .app import local_time


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
        last = self.summary["events"]         # an event appended since `show` read the case belongs to the next view

        def upto(events):
            return [e for e in events if e["seq"] <= last]
        # kept for an earlier last event: only the events appended since are read
        return _by_log(self._log_key("events"), last, lambda: upto(svc().history(self.id)),
                       lambda kept, seen: kept + upto(svc().history(self.id, after=seen)))

    def _log_key(self, *more) -> tuple | None:
        """What `_by_log` keeps of the case's event log is kept under this key, for its last
        event. None for a reviewer, who reads the log as stored now: an event edited in place
        (which `replay --verify` finds) changes no last event."""
        return None if self.reviewing else (str(svc().engine.url), self.id, *more)

    @cached_property
    def readable(self) -> list[dict]:
        """The readable history (engine.review.history): one Chinese sentence per event, the
        submitted fields by title, the changes; `raw_json` is the stored event, masked like
        everything else the user reads, for the 原始数据 toggle."""
        def shown(rows):
            return [dict(row, fields=self.mask(row.get("fields") or []), changes=self.mask(row.get("changes") or []),
                         raw_json=json.dumps(self.mask(row.get("raw")), ensure_ascii=False, indent=2, default=str))
                    for row in rows]

        def read():
            detail = self.detail
            done = reading(detail["meta"], detail["forms"], detail["bpmn_xml"], g.ctx.roles, self.history,
                           may_see_identity=self.sees_identity, names=_names, limit_label=self.limit_label,
                           seeds=self.reviewing)
            return done, shown(done.rows), self.secrets

        def more(kept, seen):
            """The rows kept for event `seen` and those of the events since; None (read it all
            again) when the identity strings to mask are not the same as when they were made."""
            done, rows, secrets = kept
            if secrets != self.secrets:
                return None
            went_on = done.more([e for e in self.history if e["seq"] > seen], self.limit_label)
            return None if went_on is None else (went_on, rows + shown(went_on.rows[len(done.rows):]), secrets)
        if "summary" not in self.__dict__:
            return read()[1]
        # how this user reads it: identity shown or masked (and which fields), the language of
        # the mask, the app's users and roles (a reviewer's, with the limits' seeds, is not kept)
        key = self._log_key("readable", self.sees_identity, frozenset(self.hidden), g.lang, id(g.ctx))
        return _by_log(key, self.summary["events"], read, more)[1]

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
        return _by_log(self._log_key("diagram", g.lang, id(g.ctx), request.args.get("diagram") == "all"),
                       self.summary["events"], self._draw)

    def _draw(self) -> str:
        path = self.detail["path"]
        names = _role_names(g.ctx, g.lang)
        raw = self.detail["bpmn_xml"].encode("utf-8")      # once: the drawing and the window are kept by it
        try:
            svg = drawing.render(raw, role_names=names, done=set(path["done"]), current=set(path["current"]),
                                 taken_flows=set(path["flows"]))
        except ValueError:
            return ""
        if request.args.get("diagram") == "all":        # the whole drawing at 100%, for pages without script
            return svg
        return diagram_view.focus(svg, raw, {t["task"] for t in self.summary["open_tasks"]})

    def acknowledgement(self) -> list[str]:
        return [e["payload"]["outputs"]["message"] for e in self.history
                if e["kind"] == "handler_called" and isinstance(e["payload"].get("outputs"), dict)
                and e["payload"]["outputs"].get("kind") in ("acknowledgement", "receipt")]


# What a page makes from a case's event log alone (its events, its readable history, its
# diagram with the path, which follows the log) for the last few cases shown, each with the
# last event it was made for. The log only grows and every change of a case appends to it,
# so for the same case and the same last event (the case row's `events`, read by `show` on
# every view) it is the same: a case viewed again unchanged is not read and formatted again.
# A case that changed has a later last event: what can be extended (the events, the readable
# history) is, with the events appended since only; the rest is made again. Entries are never
# changed once kept, only replaced (docs/performance.md, "The web pages").
_LOG_VIEWS: dict[tuple, tuple[int, object]] = {}
_LOG_VIEWS_MAX = 64
_LOG_VIEWS_LOCK = threading.Lock()


def _by_log(key: tuple | None, last: int, make, extend=None):
    """What `make()` gives for the case's log up to event `last`, kept under `key` (None: not
    kept). Kept for an earlier event `seen`, `extend(kept, seen)` goes on from it (None when
    it cannot: made afresh); kept for a later one (another page read the case after this one
    did), this page makes its own and keeps nothing."""
    if key is None:
        return make()
    with _LOG_VIEWS_LOCK:
        found = _LOG_VIEWS.pop(key, None)
        if found is not None:
            _LOG_VIEWS[key] = found              # the most recent last
    if found is not None and found[0] == last:
        return found[1]
    made = extend(found[1], found[0]) if found is not None and found[0] < last and extend is not None else None
    if made is None:
        made = make()
    with _LOG_VIEWS_LOCK:
        kept = _LOG_VIEWS.get(key)
        if kept is None or kept[0] < last:
            if kept is None and len(_LOG_VIEWS) >= _LOG_VIEWS_MAX:
                _LOG_VIEWS.pop(next(iter(_LOG_VIEWS)))
            _LOG_VIEWS[key] = (last, made)
    return made


_ROLE_NAMES: dict[tuple, tuple[object, dict]] = {}


def _role_names(ctx, lang: str) -> dict:
    """Role id -> its name in `lang` for the diagram's lanes: the app's roles do not change
    while it runs, so they are named once per app and language."""
    kept = _ROLE_NAMES.get((id(ctx), lang))
    if kept is None or kept[0] is not ctx:
        kept = _ROLE_NAMES[(id(ctx), lang)] = (ctx, {k: ctx.role_name(k, lang) for k in ctx.roles})
    return kept[1]


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

