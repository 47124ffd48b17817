"""Time limits as people read them — the one place every page and every notice takes them from.

A limit counted in days (workdays, days, months, same_day) ends with its last day: staff read
`12月02日（周三）当日内`, complainants `最迟于2026年12月02日`. Its due moment (00:00 of the next
day, the first moment at which it has passed) is how the engine keeps it, never how it is
shown. A limit counted in hours or minutes, or a promised moment (`at`), is shown as the moment:
`05月08日（周五）17:00`. How much is left is counted in the limit's unit on the business
calendar at the page's "now": `还剩 2 个工作日`, `今日到期`, `已超期 1 天`, `还剩 3 小时 20 分钟`.

A limit is named by its BPMN: the `label` parameter of the `deadline.start` service task that
starts it, else that task's name without 起算/重新起算 in front and an explanation in brackets
behind (`起算受理决定时限` -> `受理决定时限`; docs/process-design.md, "Timers and due times").

No Flask here: notices (handlers/notify.py) use it as well as the pages.
"""

from __future__ import annotations

import ast
import re
from datetime import date, datetime
from functools import lru_cache

from .clock import SHANGHAI, ensure_aware, local_day, parse_instant

DAY_UNITS = ("same_day", "workdays", "days", "days_strict", "months")
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# unit -> (Chinese, English) after the amount
UNIT_WORDS = {"workdays": ("个工作日", "workday(s)"), "days": ("日", "day(s)"), "days_strict": ("日", "day(s)"),
              "months": ("个月", "month(s)"), "hours": ("小时", "hour(s)"), "minutes": ("分钟", "minute(s)")}
_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
_SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
_PREFIX = re.compile(r"^(重新)?起算")
_BRACKETS = re.compile(r"\s*[（(][^（）()]*[）)]\s*$")


def _en(lang: str) -> bool:
    return lang == "en"


def _instant(value) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return ensure_aware(value).astimezone(SHANGHAI)
    try:
        return parse_instant(str(value)).astimezone(SHANGHAI)
    except ValueError:
        return None


def _last_day(limit: dict) -> date | None:
    """The limit's last day when it is counted in days (None for moments)."""
    if limit.get("unit") not in DAY_UNITS and limit.get("unit") is not None:
        return None
    text = limit.get("last_day")
    if not text:
        return None
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


# --- the size of a limit ----------------------------------------------------------------------

def size_text(unit: str | None, amount, lang: str = "zh", extended_by: int = 0) -> str:
    """`1 个工作日`, `5 日`, `2 小时`, `当日`, `约定时刻` (`+ 延长 3 个工作日` when extended)."""
    if unit == "at":
        return "agreed moment" if _en(lang) else "约定时刻"
    if unit == "same_day":
        return "the same day" if _en(lang) else "当日"
    words = UNIT_WORDS.get(unit or "")
    if words is None:
        return f"{amount} {unit}"
    word = words[1 if _en(lang) else 0]
    text = f"{amount} {word}"
    if extended_by:
        text += f" (+{extended_by} extended)" if _en(lang) else f"（延长 {extended_by} {word}）"
    return text


# --- a day and a moment ---------------------------------------------------------------------

def day_text(d: date, lang: str = "zh", *, year: int | None = None) -> str:
    """`12月02日（周三）`; with the year (`2027年01月04日（周一）`) when it is not `year`."""
    if _en(lang):
        return d.strftime("%-d %b") + (f" {d.year}" if d.year != year else "") + f" ({WEEKDAYS_EN[d.weekday()]})"
    lead = f"{d.year}年" if d.year != year else ""
    return f"{lead}{d.month:02d}月{d.day:02d}日（{WEEKDAYS[d.weekday()]}）"


def moment_text(at, lang: str = "zh", *, year: int | None = None) -> str:
    """`05月08日（周五）17:00`, Beijing time."""
    moment = _instant(at)
    if moment is None:
        return ""
    return f"{day_text(moment.date(), lang, year=year)}{' ' if _en(lang) else ''}{moment:%H:%M}"


def due_text(limit: dict, lang: str = "zh", now: datetime | None = None) -> str:
    """When the limit ends as staff read it: `12月02日（周三）当日内` (last day) for a limit
    counted in days, else the moment `05月08日（周五）17:00`. `limit`: a deadline as `show`
    gives it (unit, due, last_day) or an inbox row (the same keys)."""
    year = local_day(now).year if now is not None else None
    last = _last_day(limit)
    if last is not None:
        return f"by the end of {day_text(last, lang, year=year)}" if _en(lang) else \
            f"{day_text(last, lang, year=year)}当日内"
    return moment_text(limit.get("due"), lang, year=year)


def notice_text(limit) -> str:
    """A limit as the complainant is told it: `2026年12月02日` (the last day) or
    `2026年05月08日 17:00` (a moment), `（暂定）` when provisional. `limit`: a deadline.start
    record (due, last_day, provisional) or an ISO moment."""
    if isinstance(limit, dict):
        last = _last_day(limit)
        if last is not None:
            return f"{last.year}年{last.month:02d}月{last.day:02d}日" + ("（暂定）" if limit.get("provisional") else "")
        limit = limit.get("due")
    moment = _instant(limit)
    return moment.strftime("%Y年%m月%d日 %H:%M") if moment else str(limit)


# --- how much is left -------------------------------------------------------------------------

def _span(seconds: int, lang: str) -> str:
    minutes = seconds // 60
    d, h, m = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if _en(lang):
        parts = [f"{d} d" if d else "", f"{h} h" if h else "", f"{m} min" if m and not d else ""]
        return " ".join(p for p in parts if p) or "under 1 min"
    parts = [f"{d} 天" if d else "", f"{h} 小时" if h else "", f"{m} 分钟" if m and not d else ""]
    return " ".join(p for p in parts if p) or "不足 1 分钟"


def left_text(limit: dict, now: datetime, calendar, lang: str = "zh") -> str | None:
    """How much is left of a running limit at `now`, or how long it is overdue; None for a
    limit that is no longer running (met, paused, or stopped late)."""
    status = limit.get("status") or "open"
    if status in ("met", "paused") or limit.get("completed"):
        return None
    last = _last_day(limit)
    if last is not None:
        today = local_day(now)
        if today == last:
            return "due today" if _en(lang) else "今日到期"
        workdays = limit.get("unit") == "workdays"
        if today < last:
            n = calendar.working_days_between(today, last) if workdays else (last - today).days
            word = "workday(s)" if workdays and _en(lang) else "个工作日" if workdays else \
                "day(s)" if _en(lang) else "天"
            return f"{n} {word} left" if _en(lang) else f"还剩 {n} {word}"
        n = calendar.working_days_between(last, today) if workdays else 0
        if n:
            return f"{n} workday(s) overdue" if _en(lang) else f"已超期 {n} 个工作日"
        n = (today - last).days
        return f"{n} day(s) overdue" if _en(lang) else f"已超期 {n} 天"
    due = _instant(limit.get("due"))
    if due is None:
        return None
    seconds = int((due - ensure_aware(now)).total_seconds())
    if seconds > 0:
        return f"{_span(seconds + 59, lang)} left" if _en(lang) else f"还剩 {_span(seconds + 59, lang)}"
    return f"{_span(-seconds, lang)} overdue" if _en(lang) else f"已超期 {_span(-seconds, lang)}"


# --- names of limits --------------------------------------------------------------------------

@lru_cache(maxsize=64)
def limit_names(bpmn_xml: str) -> tuple:
    """((name, unit, amount, label), ...) of every `deadline.start` in the BPMN."""
    from lxml import etree
    root = etree.fromstring(bpmn_xml.encode("utf-8"))
    found = []
    for task in root.iter(f"{_BPMN}serviceTask"):
        op = task.find(f".//{_SPIFF}serviceTaskOperator")
        if op is None or op.get("id") != "deadline.start":
            continue
        params = {p.get("id"): _constant(p.get("value")) for p in op.iter(f"{_SPIFF}parameter")}
        label = params.get("label") if isinstance(params.get("label"), str) else None
        if not label:
            label = _BRACKETS.sub("", _PREFIX.sub("", (task.get("name") or "").strip())).strip()
        if isinstance(params.get("name"), str) and label:
            found.append((params["name"], params.get("unit"), params.get("amount"), label))
    return tuple(found)


def _constant(text):
    try:
        return ast.literal_eval((text or "").strip())
    except (ValueError, SyntaxError):
        return None


def limit_label(name: str, bpmn_xml: str | None, unit=None, amount=None) -> str:
    """The Chinese name of limit `name`: of the `deadline.start` with the same unit and
    amount when several start it (a procedure may start one limit in different ways), else
    of the first; the name itself when the BPMN gives none."""
    if not bpmn_xml:
        return name
    starts = [s for s in limit_names(bpmn_xml) if s[0] == name]
    exact = [s for s in starts if s[1] == unit and s[2] == amount]
    return (exact or starts or [(name, None, None, name)])[0][3]
