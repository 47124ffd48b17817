"""The /stats page's charts, drawn on the server as inline SVG.

Hand-written rather than a charting library: two small bar charts (received and closed by
month; received by category) are some sixty lines of SVG, work offline and without scripts,
print, and follow the page's fonts — a library (pygal) would bring its own styles and a
dependency for no more than that. Every text is escaped; sizes are fixed, so a long label is
cut, never widening the page.
"""

from __future__ import annotations

from markupsafe import Markup, escape

BLUE, GREEN, INK, MUTED, LINE = "#1565c0", "#2e7d32", "#1f2933", "#66788a", "#d9e2ec"


def _nice_max(value: int) -> int:
    """The axis' top: the smallest of 1, 2, 5 × 10^n that holds `value` (at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if value <= m * step:
                return m * step
        step *= 10


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def month_bars(rows: list[dict], title: str, legend: tuple[str, str]) -> Markup:
    """Received and closed per month, side by side: rows are statistics()['rows'] by month."""
    width, height, left, top, bottom = 720, 260, 44, 34, 40
    plot_h = height - top - bottom
    top_value = _nice_max(max([r["received"] for r in rows] + [r["closed"] for r in rows] + [1]))
    n = max(len(rows), 1)
    slot = (width - left - 10) / n
    bar = max(min(slot / 3, 36), 2)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-month" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-label="{escape(title)}">',
             f'<title>{escape(title)}</title>',
             f'<text x="{left}" y="16" font-size="13" font-weight="600" fill="{INK}">{escape(title)}</text>']
    for i, (name, colour) in enumerate(zip(legend, (BLUE, GREEN))):
        x = width - 190 + i * 95
        parts.append(f'<rect x="{x}" y="7" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="16" font-size="12" fill="{INK}">{escape(name)}</text>')
    for frac in ((0, 0.5, 1) if top_value % 2 == 0 else (0, 1)):      # whole numbers on the axis
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="{LINE}"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="{MUTED}">'
                     f'{top_value * frac:g}</text>')
    for i, row in enumerate(rows):
        x0 = left + i * slot + (slot - 2 * bar) / 2
        for j, (key, colour) in enumerate((("received", BLUE), ("closed", GREEN))):
            value = row[key]
            h = plot_h * value / top_value
            x = x0 + j * bar
            parts.append(f'<rect class="bar bar-{key}" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar - 2:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{escape(row["label"])} {escape(legend[j])} '
                         f'{value}</title></rect>')
            if value:
                parts.append(f'<text x="{x + (bar - 2) / 2:.1f}" y="{top + plot_h - h - 3:.1f}" font-size="10" '
                             f'text-anchor="middle" fill="{INK}">{value}</text>')
        parts.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - bottom + 16}" font-size="11" '
                     f'text-anchor="middle" fill="{MUTED}">{escape(_cut(str(row["label"]), 10))}</text>')
    if not rows:
        parts.append(f'<text x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle" fill="{MUTED}">—</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def breakdown_bars(rows: list[dict], title: str, key: str = "received") -> Markup:
    """One horizontal bar per group (e.g. category) with its count and share of the total."""
    rows = sorted(rows, key=lambda r: -r[key])
    line, left, width, top = 26, 170, 720, 30
    height = top + line * max(len(rows), 1) + 10
    total = sum(r[key] for r in rows) or 1
    top_value = max([r[key] for r in rows] + [1])
    span = width - left - 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-breakdown" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-label="{escape(title)}">',
             f'<title>{escape(title)}</title>',
             f'<text x="8" y="16" font-size="13" font-weight="600" fill="{INK}">{escape(title)}</text>']
    for i, row in enumerate(rows):
        y = top + i * line
        w = span * row[key] / top_value
        share = row[key] / total * 100
        parts.append(f'<text x="{left - 8}" y="{y + 15}" font-size="12" text-anchor="end" fill="{INK}">'
                     f'{escape(_cut(str(row["label"]), 12))}</text>'
                     f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{line - 8}" fill="{BLUE}">'
                     f'<title>{escape(row["label"])} {row[key]}</title></rect>'
                     f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="11" fill="{MUTED}">'
                     f'{row[key]}（{share:.1f}%）</text>')
    if not rows:
        parts.append(f'<text x="{width / 2}" y="{top + 14}" text-anchor="middle" fill="{MUTED}">—</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
