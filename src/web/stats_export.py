"""The statistics table (engine.review.stats.table) as CSV and XLSX files, Chinese headers:
the same cells for `complaintflow stats --csv/--xlsx` and the /stats page's downloads.

Rates are written as fractions (0.7143): CSV keeps the number exact for other programs; XLSX
shows it as a percentage through the cell's number format. An empty cell: nothing counted.
"""

from __future__ import annotations

import csv
import io

from ..engine.review.stats import column_keys, is_rate, table


def csv_text(result: dict, lang: str = "zh") -> str:
    """CSV with a byte-order mark, so that Excel opens the Chinese headers as UTF-8."""
    headers, rows = table(result, lang)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return "\ufeff" + out.getvalue()


def xlsx_bytes(result: dict, lang: str = "zh") -> bytes:
    # openpyxl: a well-kept, pure-Python XLSX writer (and reader, which the tests use)
    from openpyxl import Workbook
    from openpyxl.styles import Font

    headers, rows = table(result, lang)
    book = Workbook()
    sheet = book.active
    sheet.title = "统计" if lang != "en" else "Statistics"
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    rates = [i + 2 for i, key in enumerate(column_keys(result)) if is_rate(key)]   # 1-based, after the group
    for row in rows:
        sheet.append(row)
        for col in rates:
            sheet.cell(row=sheet.max_row, column=col).number_format = "0.0%"
    sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
    sheet.column_dimensions["A"].width = 24
    sheet.freeze_panes = "B2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def percent(value) -> str:
    """A rate as staff read it: 71.4%, or — when nothing was counted."""
    return "—" if value is None else f"{value * 100:.1f}%"
