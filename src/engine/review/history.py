"""The readable history of a case (docs/review.md).

readable_history(service, instance_id, *, may_see_identity: bool,
                 names: Callable[[str], tuple[str, str | None] | None] | None = None,
                 roles: dict | None = None) -> list[dict]

One dict per event, oldest first:
    {"seq": int, "step": int, "kind": str, "at": ISO UTC, "at_local": "2026年05月06日 10:00",
     "actor": login id | "system", "actor_name": display name (names(login)[0], or 系统),
     "actor_role": role's Chinese name or None,
     "sentence": "李客服（客服接待）完成了「初步核实」", (Chinese; identity masked as （保密）
                 unless may_see_identity)
     "fields": [{"title": form field title, "value": label as shown (choice titles, 是/否,
                 dates in Chinese format)}],
     "changes": [{"title": ..., "before": ..., "after": ...}],   # case data changed at this step
     "raw": the event as stored (dict), for the 原始数据 toggle (masked like the rest)}
`names(login)` returns (display name, role id) from the web's users directory, or None.
`roles` is roles.json (role id -> {"zh": ...}); without it, the roles.json beside the
process's source file is read when it exists, else role ids are shown.

Everything comes from the events and the process version (its forms, meta and BPMN): no
engine state is loaded. The case data before/after each event is followed from the events
themselves: the start data, each task's submission, each handler's result variable and
updates, recomputed deadlines.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select

from .. import legal_states
from ..clock import SHANGHAI, parse_instant
from ..confidentiality import identity_fields, identity_values, redact
from ..eventlog import event_dict
from ..forms import choice_titles
from ..models import Event, ProcessVersion

MASK = "（保密）"
SYSTEM = "系统"
EMPTY = "—"

NOTICE_KINDS = {"receipt": "受理回执", "refusal": "不予受理告知", "acknowledgement": "受理告知",
                "report_major": "重大投诉上报", "complainant": "告知", "staff": "内部通知",
                "external": "移送函"}
# case-data keys that no form declares but the engine and handlers keep
KNOWN_KEYS = {"case_number": "受理编号", "deadlines": "时限", "legal_state": "法律状态",
              "split_from": "拆分自", "rehandle_count": "重新处理次数"}
# the legal states the shipped procedures record (case.set_state); others are shown as given
DEADLINE_STATUS = {"met": "按时完成", "breached": "已超期", "open": "计时中", "paused": "已暂停",
                   "stopped": "已终止（未到期）"}
UNITS = {"workdays": "个工作日", "days": "日", "natural_days": "日", "hours": "小时", "minutes": "分钟",
         "months": "个月"}


def readable_history(service, instance_id, *, may_see_identity: bool, names=None, roles: dict | None = None,
                     limit_label=None, seeds: bool = True, detail: dict | None = None,
                     events: list[dict] | None = None) -> list[dict]:
    """`detail`: the case's `service.case_detail`, when the caller has read it already (the case
    page), with `instance_id` the case's id and `roles` given: then only the events are read,
    not the case row and the version's BPMN again; `events`: with `detail`, the case's
    `service.history` the caller has read too (only read here, never changed): then nothing is."""
    if detail is not None and roles is not None and events is not None:
        return _read(detail["meta"], detail["forms"], detail["bpmn_xml"], roles, names, may_see_identity, events,
                     limit_label, seeds)
    with service.sessions() as s:
        if detail is not None and roles is not None:
            case_id, meta, forms, xml = instance_id, detail["meta"], detail["forms"], detail["bpmn_xml"]
        else:
            inst = service._find_case(s, instance_id)
            pv = service.version_info(s, inst.version_id)
            xml, source = s.execute(select(ProcessVersion.bpmn_xml, ProcessVersion.source_path)
                                    .where(ProcessVersion.id == pv.id)).one()
            case_id, meta, forms = inst.id, pv.meta, pv.forms
            if roles is None:
                roles = _roles_beside(source)
        # plain rows, not model objects: nothing here is changed, and the page reads them on every view
        events = [event_dict(e) for e in s.execute(
            select(Event.__table__).where(Event.instance_id == case_id).order_by(Event.seq))]
    return _read(meta, forms, xml, roles, names, may_see_identity, events, limit_label, seeds)


def _read(meta, forms, xml, roles, names, may_see_identity, events, limit_label, seeds) -> list[dict]:
    return reading(meta, forms, xml, roles, events, may_see_identity=may_see_identity, names=names,
                   limit_label=limit_label, seeds=seeds).rows


def reading(meta, forms, xml, roles, events, *, may_see_identity: bool, names=None, limit_label=None,
            seeds: bool = True) -> Reading:
    """The readable history of `events` (readable_history's rows) from the version's meta,
    forms and BPMN, kept with where the reading stands, to go on with later events (`more`)."""
    reader = _Reader(meta, forms, _elements(xml), roles or {}, names, may_see_identity, events)
    if limit_label is not None:          # (name, unit, amount) -> the limit's name for people
        reader.limit = limit_label
    reader.seeds = seeds                 # the seed references of limits (出处): for reviewers
    return Reading([reader.event(e) for e in events], reader)


class Reading:
    """A case's readable history so far (`rows`, never changed once made) and where its reading
    stands: the case data followed through the events, the limits' last days, the identity
    strings masked. The log only grows, so the rows of the events read stay what they are
    when more are appended, unless a later event brings identity strings to mask."""

    def __init__(self, rows: list[dict], reader: _Reader):
        self.rows, self._reader = rows, reader

    def more(self, events: list[dict], limit_label=None) -> Reading | None:
        """This history followed by the rows of `events` (the events after the last one read, in
        order), exactly as reading them all from the start gives; None when it must be read again
        from the start: `events` bring identity strings that rows already made show unmasked."""
        before = self._reader
        if not before.may_see and not identity_values(_all_data(events), before.secret_fields) <= before.secret_values:
            return None
        reader = copy.copy(before)          # this one stays as it is (another page may go on from it)
        # the data is only ever given new values per key (apply), never changed inside
        reader.data, reader.last_days, reader._names_cache = dict(before.data), dict(before.last_days), {}
        if limit_label is not None:
            reader.limit = limit_label
        return Reading(self.rows + [reader.event(e) for e in events], reader)


# --- one pass over the events --------------------------------------------------------------

class _Reader:
    def __init__(self, meta, forms, elements, roles, names, may_see, events):
        self.meta, self.forms = meta or {}, forms or {}
        self.elements, self.roles, self.names = elements, roles, names
        self.may_see = may_see
        self.props = _all_properties(self.forms)
        self.secret_fields = set() if may_see else identity_fields(self.forms)
        self.secret_values = set() if may_see else identity_values(_all_data(events), self.secret_fields)
        self.data: dict = {}
        self._names_cache: dict = {}
        self.last_days: dict = {}       # limit name -> its last day, for limits counted in days

    # identity
    def hide(self, value):
        if self.may_see:
            return value
        return redact(value, self.secret_fields, MASK, self.secret_values)

    def hide_text(self, text):
        return self.hide(str(text)) if text is not None else text

    # who
    def who(self, e) -> tuple[str, str | None, str]:
        actor = e["actor"] or "system"
        if actor == "system" or actor.startswith("system "):
            return SYSTEM, None, SYSTEM
        found = self._names_cache.get(actor, ...)
        if found is ...:
            found = self.names(actor) if self.names else None
            self._names_cache[actor] = found
        display, role = (found[0] or actor, found[1]) if found else (actor, None)
        p = e["payload"] or {}
        if e["kind"] in ("task_completed", "message_received") and p.get("role"):
            role = p["role"]                       # the role the task was done (the message recorded) in
        elif e["kind"] == "started" and not role:
            role = self.meta.get("start_role")
        role_name = self.role_name(role) if role else None
        return display, role_name, f"{display}（{role_name}）" if role_name else display

    def role_name(self, role):
        return (self.roles.get(role) or {}).get("zh") or role

    @staticmethod
    def limit(name, unit=None, amount=None):
        """A time limit's name as shown (readable_history's `limit_label`; the id by default)."""
        return name

    # names of elements
    def element_name(self, element_id):
        info = self.elements.get(element_id) or {}
        task_meta = (self.meta.get("tasks") or {}).get(element_id) or {}
        return task_meta.get("name") or info.get("name") or element_id

    def title(self, key):
        prop = self.props.get(key)
        if prop and prop.get("title"):
            return prop["title"]
        if key in KNOWN_KEYS:
            return KNOWN_KEYS[key]
        owner = next((i for i in self.elements.values() if i.get("result") == key), None)
        return owner["name"] if owner and owner.get("name") else key

    # values
    def value(self, key, value, prop=None):
        prop = prop if prop is not None else self.props.get(key) or {}
        if key == "deadlines" and isinstance(value, dict):       # the limits by their names
            value = {self.limit(k.removesuffix(".remind")) + ("（提醒）" if k.endswith(".remind") else ""): v
                     for k, v in value.items()}
        if key in self.secret_fields and value not in (None, "", []):
            return MASK
        return self.hide_text(label(value, prop, self))

    def fields(self, data: dict, form: str | None) -> list[dict]:
        schema = self.forms.get(form) or {} if form else {}
        props = schema.get("properties") or {}
        keys = [k for k in props if k in data] + [k for k in data if k not in props]
        return [{"title": (props.get(k) or {}).get("title") or self.title(k),
                 "value": self.value(k, data[k], props.get(k))} for k in keys]

    # what changed
    def apply(self, updates: dict) -> list[dict]:
        changes = []
        for key, after in updates.items():
            before = self.data.get(key)
            if key in self.data and before == after:
                continue
            changes.append({"title": self.title(key),
                            "before": self.value(key, before) if key in self.data else EMPTY,
                            "after": self.value(key, after)})
            self.data[key] = copy.deepcopy(after)
        return changes

    # one event
    def event(self, e) -> dict:
        actor_name, actor_role, who = self.who(e)
        at = parse_instant(e["at"]).astimezone(SHANGHAI)
        p = e["payload"] or {}
        kind = e["kind"]
        fields, updates = [], {}
        if kind == "started":
            updates = p.get("data") or {}
            intake = ((self.forms.get(self.meta.get("start_form")) or {}).get("properties") or {})
            # what was registered; the procedure's initial data shows among the changes only
            fields = self.fields({k: v for k, v in updates.items() if not intake or k in intake
                                  or k == "split_from"}, self.meta.get("start_form"))
            name = self.meta.get("name") or p.get("process_id")
            sentence = f"{who}登记了投诉，按「{name}」（第 {p.get('version')} 版）办理"
        elif kind == "task_completed":
            task = p.get("task")
            form = ((self.meta.get("tasks") or {}).get(task) or {}).get("form")
            fields = self.fields(p.get("data") or {}, form)
            updates = p.get("data") or {}
            sentence = f"{who}完成了「{p.get('name') or self.element_name(task)}」"
        elif kind == "timer_fired":
            sentence = self.timer(p)
        elif kind == "handler_called":
            sentence, fields = self.handler(p)
            if "error" not in p:
                result = (self.elements.get(p.get("task")) or {}).get("result")
                # a record (a notice sent, a deadline started) is what the sentence says; a
                # scalar result (a case number, a counter) is a change of the case data
                if result and not isinstance(p.get("outputs"), (dict, list)):
                    updates[result] = p.get("outputs")
                updates.update(p.get("updates") or {})
        elif kind == "incident":
            sentence = f"「{self.element_name(p.get('task'))}」出错，需处理后重试：{self.hide_text(p.get('message'))}"
        elif kind == "retry":
            tasks = "、".join(f"「{self.element_name(t)}」" for t in p.get("tasks") or []) or "失败的步骤"
            sentence = f"{who}重试了{tasks}"
        elif kind == "message_received":
            # recorded by staff from the case page, the CLI or the API: the event's name and form
            # (events written before they were recorded say the message's name)
            sentence = f"{who}登记：{p['name']}" if p.get("name") else f"{who}送达消息「{p.get('message')}」"
            fields = self.fields(p.get("payload") or {}, p.get("form"))
            updates = p.get("payload") or {}
        elif kind == "deadlines_recomputed":
            moved = [f"「{n}」由 {_when(c.get('from'))} 改为 {_when(c.get('to'))}"
                     for n, c in (p.get("changes") or {}).items()]
            sentence = "按新公布的节假日安排重新计算时限：" + "；".join(moved) if moved else "重新计算了时限"
            updates = {"deadlines": p.get("deadlines")} if p.get("deadlines") is not None else {}
        elif kind == "task_assigned":       # a task for one person (engine/org.py)
            sentence = (f"「{p.get('name')}」指派给{p.get('person_name') or p.get('assignee')}（{p.get('assignee')}）"
                        if p.get("assignee") else f"「{p.get('name')}」{p.get('reason')}，由所在角色办理")
        elif kind == "event_unhandled":
            sentence = f"发出的事件「{p.get('name') or p.get('event')}」无环节等待，未产生作用"
        else:
            sentence = f"{who}：{kind}"
        changes = self.apply(updates) if updates else []
        # a value first set by the submission shown just above is not said twice
        shown = {(f["title"], f["value"]) for f in fields}
        changes = [c for c in changes if not (c["before"] == EMPTY and (c["title"], c["after"]) in shown)]
        return {"seq": e["seq"], "step": e["step"], "kind": kind, "at": e["at"], "at_local": local_text(at),
                "actor": e["actor"] or "system", "actor_name": actor_name, "actor_role": actor_role,
                "sentence": self.hide_text(sentence), "fields": fields, "changes": changes,
                "raw": self.hide(e)}

    def timer(self, p) -> str:
        element = p.get("task")
        info = self.elements.get(element) or {}
        name = p.get("name") or info.get("name") or element
        due = _when(p.get("due"))
        if info.get("attached_to"):
            lead = f"「{self.element_name(info['attached_to'])}」的计时器「{name}」触发"
        else:
            lead = f"计时器「{name}」触发"
        if p.get("deadline"):
            last = self.last_days.get(p["deadline"])
            if last:      # a limit counted in days: its last day has passed (the engine's due is 00:00 after it)
                return f"{lead}：「{self.limit(p['deadline'])}」已超过最后一日 {_day(last)}"
            return f"{lead}：「{self.limit(p['deadline'])}」已到期（到期时间 {due}）"
        return f"{lead}（到期时间 {due}）"

    def handler(self, p) -> tuple[str, list[dict]]:
        handler, element = p.get("handler") or "", p.get("task")
        step = self.element_name(element)
        if "error" in p:
            return f"系统执行「{step}」（{handler}）失败：{self.hide_text(p['error'])}", []
        out = p.get("outputs")
        inputs = p.get("inputs") or {}
        if handler.startswith("notify.") and isinstance(out, dict):
            to = str(out.get("to") or "")
            to = self.role_name(to[5:]) if to.startswith("role:") else (to or "（未留联系方式）")
            what = NOTICE_KINDS.get(out.get("kind"), out.get("kind") or "通知")
            return f"系统向{to}发送{what}（「{step}」）", [{"title": "内容", "value": self.hide_text(out.get("message"))}]
        if handler == "deadline.start" and isinstance(out, dict):
            size = "约定时刻" if out.get("unit") == "at" else f"{out.get('amount')}{UNITS.get(out.get('unit'), out.get('unit'))}"
            self.last_days[out.get("name")] = out.get("last_day")
            ends = _ends(out)
            prov = "（暂定：当年节假日安排尚未公布）" if out.get("provisional") else ""
            fields = [{"title": "依据", "value": inputs.get("rule")}] if inputs.get("rule") else []
            if inputs.get("seed") and getattr(self, "seeds", True):
                fields.append({"title": "出处", "value": inputs["seed"]})
            return (f"系统起算时限「{self.limit(out.get('name'), out.get('unit'), out.get('amount'))}」（{size}）：{ends}{prov}", fields)
        if handler == "deadline.stop" and isinstance(out, dict):
            status = DEADLINE_STATUS.get(out.get("status"), out.get("status"))
            return f"时限「{self.limit(out.get('name'))}」结束：{status}", []
        if handler == "deadline.pause" and isinstance(out, dict):
            names = "、".join(f"「{self.limit(n)}」" for n in out.get("paused") or []) or "（无计时中的时限）"
            why = f"，原因：{out['reason']}" if out.get("reason") else ""
            return f"系统暂停计时：{names}{why}", []
        if handler == "deadline.resume" and isinstance(out, dict):
            names = "、".join(f"「{self.limit(n)}」" for n in out.get("resumed") or []) or "（无暂停的时限）"
            return f"系统恢复计时：{names}", []
        if handler == "deadline.extend" and isinstance(out, dict):
            if out.get("granted"):
                self.last_days[out.get("name")] = out.get("last_day")
                return f"时限「{self.limit(out.get('name'))}」延长：{_ends(out)}", []
            return f"时限「{self.limit(out.get('name'))}」未予延长：{out.get('reason')}", []
        if handler == "case_number.assign":
            return f"系统分配受理编号 {out}", []
        if handler == "case.close":
            return "系统办结归档（结案）", []
        if handler == "case.set_state" and isinstance(out, dict):
            state = out.get("legal_state")
            return f"案件法律状态记为「{legal_states.label(self.meta, state)}」（「{step}」）", []
        if handler == "case.split" and isinstance(out, dict):
            numbers = "、".join(c.get("case_number") or c.get("instance_id") or "?" for c in out.get("cases") or [])
            return f"系统将本件拆分为 {len(out.get('cases') or [])} 件新案件：{numbers}", []
        return f"系统执行「{step}」（处理程序 {handler}）", []


# --- values as people read them --------------------------------------------------------------

def label(value, prop: dict, reader=None) -> str:
    """A value as shown: choice titles, 是/否, dates in Chinese, lists and rows readable."""
    prop = prop or {}
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, bool):
        return "是" if value else "否"
    titles = choice_titles(prop)
    if isinstance(value, list):
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        if all(isinstance(v, dict) for v in value):
            return "；".join(f"第{n}行：{label(v, items, reader)}" for n, v in enumerate(value, start=1))
        return "、".join(titles.get(v, None) or label(v, items, reader) for v in value)
    if isinstance(value, dict):
        inner = prop.get("properties") or {}
        parts = []
        for k, v in value.items():
            sub = inner.get(k)
            title = (sub or {}).get("title") or k
            parts.append(f"{title}：{label(v, sub or {}, reader)}")
        return "，".join(parts)
    if titles and _hashable(value) and value in titles:
        return titles[value]
    if isinstance(value, str):
        fmt = prop.get("format")
        if fmt == "date":
            return _day(value)
        if fmt == "date-time" or _looks_like_instant(value):
            return _when(value)
        return value
    return str(value)


def local_text(at) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M")


def _when(text) -> str:
    if not text:
        return EMPTY
    if str(text).startswith("9999-12-31"):      # deadlines.PAUSED: a limit while it is paused
        return "已暂停"
    try:
        return local_text(parse_instant(str(text)))
    except ValueError:
        return str(text)


def _ends(out: dict) -> str:
    """When a limit ends as people read it (engine/deadline_text.py): its last day for a limit
    counted in days, else the moment it is due."""
    if out.get("last_day"):
        return f"最后一日 {_day(out['last_day'])}（当日内）"
    return f"到期时间 {_when(out.get('due'))}"


def _day(text) -> str:
    try:
        d = date.fromisoformat(str(text)[:10])
        return f"{d.year}年{d.month:02d}月{d.day:02d}日"
    except ValueError:
        return str(text)


def _looks_like_instant(text: str) -> bool:
    if len(text) < 16 or text[4:5] != "-" or "T" not in text[:11]:
        return False
    try:
        parse_instant(text)
        return True
    except ValueError:
        return False


def _hashable(value) -> bool:
    try:
        hash(value)
        return True
    except TypeError:
        return False


# --- what the process version says ------------------------------------------------------------

def _all_properties(forms: dict) -> dict:
    """Property name -> its schema, from every form of the version (the first form wins)."""
    out = {}
    for schema in forms.values():
        for name, prop in ((schema or {}).get("properties") or {}).items():
            if isinstance(prop, dict):
                out.setdefault(name, prop)
    return out


def _all_data(events) -> dict:
    """Every submitted value of the case, for finding its identity strings."""
    out = []
    for e in events:
        p = e["payload"] or {}
        if e["kind"] == "started":
            out.append(p.get("data") or {})
        elif e["kind"] == "task_completed":
            out.append(p.get("data") or {})
        elif e["kind"] == "message_received":
            out.append(p.get("payload") or {})
    return {"parts": out}


@lru_cache(maxsize=64)
def _elements(bpmn_xml: str) -> dict:
    """BPMN element id -> {"tag", "name", "attached_to", "result" (a service task's result variable)}."""
    from lxml import etree
    root = etree.fromstring(bpmn_xml.encode("utf-8"))
    out = {}
    for el in root.iter():
        if not isinstance(el.tag, str) or not el.get("id"):
            continue
        tag = etree.QName(el).localname
        info = {"tag": tag, "name": (el.get("name") or "").strip() or None}
        if el.get("attachedToRef"):
            info["attached_to"] = el.get("attachedToRef")
        if tag == "serviceTask":
            for op in el.iter():
                if isinstance(op.tag, str) and etree.QName(op).localname == "serviceTaskOperator":
                    info["result"] = op.get("resultVariable")
        out[el.get("id")] = info
    return out


@lru_cache(maxsize=16)
def _roles_file(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _roles_beside(source_path: str | None) -> dict:
    if not source_path:
        return {}
    return _roles_file(str(Path(source_path).parent / "roles.json"))
