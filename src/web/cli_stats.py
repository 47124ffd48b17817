"""`complaintflow stats`: the office's figures (docs/statistics.md), as a table, JSON, CSV or XLSX."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from ..engine.review.stats import DIMENSIONS, column_keys, is_rate, statistics, table
from .cli_common import _t, emit
from .stats_export import csv_text, percent, xlsx_bytes


def _day(ctx, param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date; write it as 2026-05-01") from None


@click.command("stats")
@click.option("--process", "process_id", help="Only this procedure (process id).")
@click.option("--from", "date_from", callback=_day, help="First day (YYYY-MM-DD, Beijing time), included.")
@click.option("--to", "date_to", callback=_day, help="Last day (YYYY-MM-DD, Beijing time), included.")
@click.option("--by", type=click.Choice(DIMENSIONS), default="month", show_default=True, help="Rows by.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), help="Also write the table as CSV (UTF-8).")
@click.option("--xlsx", "xlsx_file", type=click.Path(dir_okay=False), help="Also write the table as XLSX.")
@click.pass_obj
def stats_cmd(obj, process_id, date_from, date_to, by, as_json, csv_file, xlsx_file):
    """Received, closed, closure and on-time rates, overdue, satisfaction, mediation, working days."""
    service = obj.service
    result = statistics(service, process_id=process_id, date_from=date_from, date_to=date_to, by=by,
                        now=service.clock.now())
    if csv_file:
        Path(csv_file).write_text(csv_text(result), encoding="utf-8", newline="")
    if xlsx_file:
        Path(xlsx_file).write_bytes(xlsx_bytes(result))
    emit(result, as_json, _print_table)


def _print_table(result):
    headers, rows = table(result)
    rates = [is_rate(k) for k in column_keys(result)]
    cells = [headers] + [[str(row[0])] + [_cell(v, rate) for v, rate in zip(row[1:], rates)] for row in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        click.echo("  ".join(_pad(v, w, left=i == 0) for i, (v, w) in enumerate(zip(r, widths))).rstrip())
    f = result["filters"]
    span = f"{f['from'] or '…'} – {f['to'] or '…'}"
    click.echo(f"\n{span}{'  ' + f['process'] if f['process'] else ''}; now {_t(result['now'])} (docs/statistics.md)")


def _cell(value, rate: bool) -> str:
    if rate:
        return percent(value)
    return "—" if value is None else str(value)


def _width(text: str) -> int:
    """Columns a terminal gives the text: two for each CJK character."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, width: int, left: bool) -> str:
    gap = " " * (width - _width(text))
    return text + gap if left else gap + text
