"""The /stats page (统计): the office's figures (docs/statistics.md) for reviewers and managers,
with the same filters as `complaintflow stats`, the table, two charts drawn on the server
(stats_charts.py) and the table as CSV and XLSX downloads.

Who: a role marked `"reviews": true` in roles.json (the reviewer) or `manager`; anyone else is
refused (403) and the attempt logged, like every page outside a user's roles (pages.refuse).
Each view and download is logged in access_log.
"""

from __future__ import annotations


from flask import Blueprint, Response, g, render_template, request

from ..engine.review.stats import DIMENSIONS, column_keys, is_rate, statistics, table
from .app import BadParameter, date_param
from .i18n import TEXT
from .pages import refuse, svc, t
from .stats_charts import breakdown_bars, month_bars
from .stats_export import csv_text, percent, xlsx_bytes

stats = Blueprint("stats", __name__)
STATS_ROLES = {"reviewer", "manager"}

# The page's own words, added to the inbox's dictionary (i18n.py) rather than edited into it.
TEXT.update({
    "stats": ("统计", "Statistics"),
    "stats_from": ("起始日期", "From"),
    "stats_to": ("截止日期", "To"),
    "stats_by": ("分组", "Rows by"),
    "stats_by_month": ("按月份", "Month"),
    "stats_by_procedure": ("按流程", "Procedure"),
    "stats_by_category": ("按类别", "Category"),
    "stats_by_department": ("按部门", "Department"),
    "stats_show": ("统计", "Show"),
    "stats_download_csv": ("下载 CSV", "Download CSV"),
    "stats_download_xlsx": ("下载 Excel（XLSX）", "Download XLSX"),
    "stats_chart_month": ("按月受理量与办结量", "Received and closed by month"),
    "stats_chart_category": ("按类别受理量", "Received by category"),
    "stats_received": ("受理量", "Received"),
    "stats_closed": ("办结量", "Closed"),
    "stats_note": ("各项指标的定义见 docs/statistics.md；比率中“—”表示没有可计数的记录。统计时点：{now}。",
                   "Each figure is defined in docs/statistics.md; a rate shown — had nothing to count. As of {now}."),
    "stats_bad_date": ("参数 {name} 应为日期，格式 YYYY-MM-DD。", "must be a date written YYYY-MM-DD"),
    "stats_bad_choice": ("参数 {name} 的取值不在可选范围内。", "is not one of the choices"),
    "stats_bad_range": ("起始日期晚于截止日期。", "the start date is after the end date"),
})


def may_see_stats() -> bool:
    roles = g.ctx.roles
    return any(r in STATS_ROLES or (roles.get(r) or {}).get("reviews") is True for r in g.user.roles)


@stats.app_context_processor
def stats_link():
    return {"may_see_stats": bool(g.get("user")) and may_see_stats()}



def _query(action: str) -> dict:
    """The filters, checked; refuses (403, logged) a user who may not see statistics."""
    if not may_see_stats():
        refuse(action, "stats", f"{g.user.login} holds neither a reviewing role nor manager")
    by = request.args.get("by") or "month"
    if by not in DIMENSIONS:
        raise BadParameter("by", "stats_bad_choice")
    procedures = _procedures()
    process_id = request.args.get("process") or None
    if process_id is not None and process_id not in procedures:
        raise BadParameter("process", "stats_bad_choice")
    date_from = date_param(request.args, "from", "stats_bad_date")
    date_to = date_param(request.args, "to", "stats_bad_date")
    if date_from and date_to and date_from > date_to:
        raise BadParameter("to", "stats_bad_range")
    svc().log_access(g.user.login, action, request.query_string.decode("utf-8", "replace")[:100] or None, True)
    return {"process_id": process_id, "date_from": date_from, "date_to": date_to, "by": by,
            "procedures": procedures}


def _procedures() -> dict:
    """process id -> name of its newest version."""
    return {p["process_id"]: p["name"] for p in svc().processes()}


def _figures(q: dict, by: str | None = None) -> dict:
    return statistics(svc(), process_id=q["process_id"], date_from=q["date_from"], date_to=q["date_to"],
                      by=by or q["by"], now=svc().clock.now())


@stats.get("/stats")
def stats_page():
    q = _query("view_stats")
    result = _figures(q)
    by_month = result if q["by"] == "month" else _figures(q, "month")
    by_category = result if q["by"] == "category" else _figures(q, "category")
    headers, rows = table(result, g.lang)
    rates = [is_rate(k) for k in column_keys(result)]
    shown = [[row[0]] + [percent(v) if rate else ("—" if v is None else v) for v, rate in zip(row[1:], rates)]
             for row in rows]
    lang_en = g.lang == "en"
    label = (lambda r: {**r, "label": r["label_en"]}) if lang_en else (lambda r: r)
    charts = [
        month_bars([label(r) for r in by_month["rows"]], t("stats_chart_month"),
                   (t("stats_received"), t("stats_closed"))),
        breakdown_bars([label(r) for r in by_category["rows"] if r["received"]], t("stats_chart_category")),
    ]
    args = {k: v for k, v in request.args.items() if k in ("process", "from", "to", "by") and v}
    return render_template("stats.html", q=q, dimensions=DIMENSIONS, headers=headers, rows=shown,
                           charts=charts, args=args, now=result["now"])


@stats.get("/stats.csv")
def stats_csv():
    q = _query("download_stats")
    body = csv_text(_figures(q))                   # downloads: Chinese headers, whatever the page's language
    return Response(body.encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{_filename(q, "csv")}"'})


@stats.get("/stats.xlsx")
def stats_xlsx():
    q = _query("download_stats")
    return Response(xlsx_bytes(_figures(q)),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{_filename(q, "xlsx")}"'})


def _filename(q: dict, ext: str) -> str:
    parts = ["complaintflow-stats", q["process_id"] or "all", f"by-{q['by']}"]
    if q["date_from"]:
        parts.append(f"from-{q['date_from']}")
    if q["date_to"]:
        parts.append(f"to-{q['date_to']}")
    return "-".join(parts) + "." + ext
