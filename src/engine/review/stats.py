"""The office's figures (统计): 受理量, 办结量, 办结率, 按时办结率, 超期, 满意率, 调解成功率, average
handling time — each defined once in docs/statistics.md.

Computed with SQL aggregates (COUNT/SUM grouped by the chosen dimension) over the query-side
rows only — `instances`' summary columns, `deadlines`, `case_facts` — never by loading engine
state. Every figure is kept as numerator and denominator per group, so the total row is the
sum of the groups and a rate is computed once, from the sums.

Dates are days in Asia/Shanghai: `date_from`..`date_to` (both included) is the range of local
days; a month is a local calendar month (China keeps no daylight saving time: UTC+8).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, case, func, literal_column, or_, select

from ..clock import SHANGHAI, iso
from ..errors import InvalidInput
from ..forms import choice_titles
from ..models import CaseFact, Deadline, Instance, ProcessVersion

DIMENSIONS = ("month", "procedure", "category", "department")

# The table's columns (CSV, XLSX, pages): key, Chinese header, English header. Per-limit
# on-time rates follow `ontime_rate` as `ontime_rate:<limit name>`.
COLUMNS = [
    ("received", "受理量", "Received"),
    ("closed", "办结量", "Closed"),
    ("closure_rate", "办结率", "Closure rate"),
    ("ontime_rate", "按时办结率", "On-time rate"),
    ("ontime_met", "按时时限数", "Limits met"),
    ("ontime_breached", "超时时限数", "Limits breached"),
    ("open_now", "在办", "Open now"),
    ("overdue_now", "超期", "Overdue now"),
    ("satisfaction_rate", "满意率", "Satisfaction rate"),
    ("satisfaction_total", "满意度评价数", "Satisfaction answers"),
    ("mediation_rate", "调解成功率", "Mediation success rate"),
    ("mediation_total", "调解结案数", "Mediations ended"),
    ("avg_workdays", "平均办理工作日", "Average working days"),
]
DIMENSION_TITLES = {"month": ("月份", "Month"), "procedure": ("流程", "Procedure"),
                    "category": ("类别", "Category"), "department": ("部门", "Department")}
NONE_LABEL = ("（未填）", "(none)")
TOTAL_LABEL = ("合计", "Total")

_COUNTERS = ("received", "closed_of_received", "open_now", "overdue_now", "closed", "workdays_sum",
             "workdays_count", "ontime_met", "ontime_breached", "satisfaction_positive", "satisfaction_total",
             "mediation_success", "mediation_total")


def statistics(service, *, process_id: str | None = None, date_from: date | None = None,
               date_to: date | None = None, by: str = "month", now: datetime | None = None) -> dict:
    """The figures of docs/statistics.md by `by` (month | procedure | category | department),
    one row per group and a total row."""
    if by not in DIMENSIONS:
        raise InvalidInput(f"statistics are grouped by one of {', '.join(DIMENSIONS)}, not '{by}'")
    if date_from and date_to and date_from > date_to:
        raise InvalidInput(f"the range starts ({date_from}) after it ends ({date_to})")
    now = now or service.clock.now()
    start = _local_midnight(date_from) if date_from else None
    end = _local_midnight(date_to + timedelta(days=1)) if date_to else None
    dialect = service.engine.dialect.name
    groups: dict = {}

    def add(key, name, value):
        row = groups.setdefault(key, {"counts": dict.fromkeys(_COUNTERS, 0), "limits": {}})
        row["counts"][name] += int(value or 0)

    def add_limit(key, limit, status, n):
        add(key, "ontime_" + status, n)
        per = groups[key]["limits"].setdefault(limit, {"met": 0, "breached": 0})
        per[status] += int(n)

    def in_range(column):
        out = []
        if start is not None:
            out.append(column >= start)
        if end is not None:
            out.append(column < end)
        return out

    def key_of(when):
        """The group key: the month of `when`, or a column of the case."""
        if by == "month":
            return _month(when, dialect)
        return {"procedure": Instance.process_id, "category": Instance.category,
                "department": Instance.department}[by]

    proc = [Instance.process_id == process_id] if process_id else []
    with service.sessions() as s:
        # cases received in the range: how many, how many of them closed by `now`, how many open now
        closed_by_now = and_(Instance.closed_at.is_not(None), Instance.closed_at <= now)
        k = key_of(Instance.received_at).label("k")
        q = (select(k, func.count(), func.sum(case((closed_by_now, 1), else_=0)),
                    func.sum(case((closed_by_now, 0), else_=1)))
             .where(Instance.received_at <= now, *proc, *in_range(Instance.received_at)).group_by(k))
        for key, received, closed, still_open in s.execute(q):
            add(key, "received", received)
            add(key, "closed_of_received", closed)
            add(key, "open_now", still_open)

        # limits overdue now, of the cases received in the range that are still open
        q = (select(k, func.count()).select_from(Deadline).join(Instance, Instance.id == Deadline.instance_id)
             .where(Deadline.status.in_(("open", "breached")), Deadline.completed_at.is_(None),
                    Deadline.due_at < now, Instance.received_at <= now,
                    or_(Instance.closed_at.is_(None), Instance.closed_at > now),
                    *proc, *in_range(Instance.received_at)).group_by(k))
        for key, n in s.execute(q):
            add(key, "overdue_now", n)

        # cases closed in the range, with their handling time in working days
        k = key_of(Instance.closed_at).label("k")
        q = (select(k, func.count(), func.sum(Instance.handling_workdays), func.count(Instance.handling_workdays))
             .where(Instance.closed_at.is_not(None), Instance.closed_at <= now, *proc,
                    *in_range(Instance.closed_at)).group_by(k))
        for key, n, days, counted in s.execute(q):
            add(key, "closed", n)
            add(key, "workdays_sum", days)
            add(key, "workdays_count", counted)

        # limits that ended in the range: met (done before due, when done), or breached (once, at
        # its due moment — also an open limit past due that no tick has noticed yet)
        past_due = and_(Deadline.status == "open", Deadline.due_at <= now)
        ended = case((Deadline.status == "met", Deadline.completed_at), else_=Deadline.due_at)
        outcome = case((Deadline.status == "met", "met"), else_="breached")
        k = key_of(ended).label("k")
        q = (select(k, Deadline.name, outcome, func.count()).select_from(Deadline)
             .where(or_(Deadline.status.in_(("met", "breached")), past_due), ended <= now,
                    *([Deadline.process_id == process_id] if process_id else []), *in_range(ended))
             .group_by(k, Deadline.name, outcome))
        if by != "month":
            q = q.join(Instance, Instance.id == Deadline.instance_id)
        for key, limit, status, n in s.execute(q):
            add_limit(key, limit, status, n)

        # facts recorded in the range (satisfaction, mediation outcome) that count either way
        k = key_of(CaseFact.recorded_at).label("k")
        q = (select(k, CaseFact.name, func.sum(case((CaseFact.positive.is_(True), 1), else_=0)), func.count())
             .select_from(CaseFact)
             .where(CaseFact.positive.is_not(None), CaseFact.recorded_at <= now,
                    *([CaseFact.process_id == process_id] if process_id else []), *in_range(CaseFact.recorded_at))
             .group_by(k, CaseFact.name))
        if by != "month":
            q = q.join(Instance, Instance.id == CaseFact.instance_id)
        for key, name, positive, n in s.execute(q):
            if name == "satisfaction":
                add(key, "satisfaction_positive", positive)
                add(key, "satisfaction_total", n)
            elif name == "mediation":
                add(key, "mediation_success", positive)
                add(key, "mediation_total", n)

        labels = _labels(s, by, process_id)

    limits = sorted({name for g in groups.values() for name in g["limits"]})
    total = {"counts": dict.fromkeys(_COUNTERS, 0), "limits": {}}
    for g in groups.values():
        for name, n in g["counts"].items():
            total["counts"][name] += n
        for limit, per in g["limits"].items():
            into = total["limits"].setdefault(limit, {"met": 0, "breached": 0})
            into["met"] += per["met"]
            into["breached"] += per["breached"]
    ordered = sorted(groups, key=lambda key: (key is None, str(key or "")))
    return {
        "by": by,
        "filters": {"process": process_id, "from": date_from.isoformat() if date_from else None,
                    "to": date_to.isoformat() if date_to else None},
        "now": iso(now),
        "limits": limits,
        "rows": [_figures(key, labels(key), groups[key], limits) for key in ordered],
        "total": _figures(None, TOTAL_LABEL, total, limits),
    }


def _figures(key, label, group, limits) -> dict:
    c = group["counts"]
    row = {"key": key, "label": label[0], "label_en": label[1],
           "received": c["received"], "closed": c["closed"],
           "closed_of_received": c["closed_of_received"],
           "closure_rate": _rate(c["closed_of_received"], c["received"]),
           "ontime_met": c["ontime_met"], "ontime_breached": c["ontime_breached"],
           "ontime_rate": _rate(c["ontime_met"], c["ontime_met"] + c["ontime_breached"]),
           "ontime": {},
           "open_now": c["open_now"], "overdue_now": c["overdue_now"],
           "satisfaction_positive": c["satisfaction_positive"], "satisfaction_total": c["satisfaction_total"],
           "satisfaction_rate": _rate(c["satisfaction_positive"], c["satisfaction_total"]),
           "mediation_success": c["mediation_success"], "mediation_total": c["mediation_total"],
           "mediation_rate": _rate(c["mediation_success"], c["mediation_total"]),
           "avg_workdays": (round(c["workdays_sum"] / c["workdays_count"], 2) if c["workdays_count"] else None)}
    for limit in limits:
        per = group["limits"].get(limit, {"met": 0, "breached": 0})
        row["ontime"][limit] = {**per, "rate": _rate(per["met"], per["met"] + per["breached"])}
    return row


def _rate(part: int, whole: int) -> float | None:
    """A share as a fraction rounded to 4 places (66.67 %), or None when nothing was counted."""
    return round(part / whole, 4) if whole else None


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def _month(column, dialect: str):
    """The Asia/Shanghai month (YYYY-MM) of a UTC column, in SQL."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m", column, "+8 hours")
    return func.to_char(column + literal_column("interval '8 hours'"), "YYYY-MM")


def _labels(s, by, process_id):
    """key -> (Chinese, English) label of a group: the procedure's name, the category's title
    from the intake form of the procedure's newest version (read from process_versions — the
    deployed definition, not any case's engine state)."""
    if by in ("month", "department"):
        return lambda key: (key, key) if key is not None else NONE_LABEL
    newest = (select(ProcessVersion.process_id, func.max(ProcessVersion.version).label("v"))
              .group_by(ProcessVersion.process_id).subquery())
    q = select(ProcessVersion.process_id, ProcessVersion.name, ProcessVersion.meta, ProcessVersion.forms).join(
        newest, and_(newest.c.process_id == ProcessVersion.process_id, newest.c.v == ProcessVersion.version))
    if by == "category" and process_id:
        q = q.where(ProcessVersion.process_id == process_id)
    names, titles = {}, {}
    for pid, name, meta, forms in s.execute(q.order_by(ProcessVersion.process_id)):
        names[pid] = name or pid
        intake = (forms or {}).get((meta or {}).get("start_form") or "") or {}
        prop = (intake.get("properties") or {}).get("category")
        if isinstance(prop, dict):
            for value, title in choice_titles(prop).items():
                titles.setdefault(value, title)
    table = names if by == "procedure" else titles

    def label(key):
        if key is None:
            return NONE_LABEL
        text = table.get(key, key)
        return (text, key if text == key else f"{text} ({key})")
    return label


def table(result: dict, lang: str = "zh") -> tuple[list[str], list[list]]:
    """The figures as a table: headers (Chinese by default) and rows, the total last — the same
    for the page, CSV and XLSX. Rates are fractions (0.6667); None where nothing was counted."""
    i = 1 if lang == "en" else 0
    titles = {key: (zh, en) for key, zh, en in COLUMNS}
    keys = column_keys(result)
    headers = [DIMENSION_TITLES[result["by"]][i]]
    for key in keys:
        if key.startswith("ontime_rate:"):
            limit = key.split(":", 1)[1]
            headers.append(f"On-time rate ({limit})" if i else f"按时办结率（{limit}）")
        else:
            headers.append(titles[key][i])
    rows = []
    for row in [*result["rows"], result["total"]]:
        cells = [row["label_en"] if i else row["label"]]
        for key in keys:
            cells.append(row["ontime"][key.split(":", 1)[1]]["rate"] if key.startswith("ontime_rate:") else row[key])
        rows.append(cells)
    return headers, rows


RATE_COLUMNS = {"closure_rate", "ontime_rate", "satisfaction_rate", "mediation_rate"}


def is_rate(header_key: str) -> bool:
    return header_key in RATE_COLUMNS or header_key.startswith("ontime_rate:")


def column_keys(result: dict) -> list[str]:
    """The keys of table()'s columns after the first (the group), in order."""
    keys = []
    for key, _, _ in COLUMNS:
        keys.append(key)
        if key == "ontime_rate":
            keys.extend("ontime_rate:" + limit for limit in result["limits"])
    return keys
