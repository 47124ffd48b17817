"""Draw a process as SVG from its diagram layout (BPMN DI), optionally marking a case's path.

Used by the case page (the path taken and the current position) and for the pictures in
docs/processes/. The drawing follows BPMN notation closely enough for staff to recognise it:
pool and lanes with their role names, rounded activities with a type marker, events as
circles (start thin, end thick, intermediate double; timer, signal, message markers),
gateways as diamonds (X exclusive, + parallel, O inclusive, pentagon event-based).
"""

from __future__ import annotations

from functools import lru_cache
from html import escape

from lxml import etree

from . import layout
from .layout import ACTIVITIES, EVENTS, GATEWAYS

DONE, CURRENT, PLAIN = "#2e7d32", "#c62828", "#37474f"
FILL = {"done": "#e8f5e9", "current": "#ffebee", None: "#ffffff"}


def _local(tag):
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _wrap(text: str, width: int) -> list[str]:
    """Break a (mostly Chinese) name into lines of about `width` characters."""
    text = " ".join((text or "").split())
    lines, line = [], ""
    for ch in text:
        line += ch
        if len(line) >= width and ch != " ":
            lines.append(line)
            line = ""
    if line:
        lines.append(line)
    return lines[:4]


def render(raw: bytes, *, role_names: dict | None = None, done: set | None = None,
           current: set | None = None, taken_flows: set | None = None, title: str | None = None,
           covered_flows: set | None = None) -> str:
    """SVG text for the first process of `raw`. `done`/`current` are element ids to mark;
    `taken_flows` are sequence flows the case went along. `covered_flows` (process tests'
    coverage) marks every flow: those in it as covered, the others as never taken (dashed red),
    each with `data-covered="yes"` or `"no"`.

    What does not depend on the marks is drawn once per file content, role names and title
    (`_drawn`, kept for the last few): a deployed version never changes, so the case page
    only picks each shape's and flow's drawing for the case's marks."""
    drawn = _drawn(raw, tuple(sorted((role_names or {}).items())), title)
    return drawn.svg(done or set(), current or set(), taken_flows or set(), covered_flows)


class _Drawn:
    """A drawing without marks: its fixed text, and for each shape and flow the text of every
    state it can be drawn in (shapes: None, "done", "current"; flows: "plain", "taken",
    "covered", "uncovered")."""

    def __init__(self):
        self.parts: list = []          # text, or ("shape" | "flow", element id)
        self.shapes: dict[str, dict] = {}
        self.flows: dict[str, dict] = {}

    def svg(self, done: set, current: set, taken_flows: set, covered_flows: set | None) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif part[0] == "shape":
                sid = part[1]
                out.append(self.shapes[sid]["current" if sid in current else "done" if sid in done else None])
            elif covered_flows is not None:
                out.append(self.flows[part[1]]["covered" if part[1] in covered_flows else "uncovered"])
            else:
                out.append(self.flows[part[1]]["taken" if part[1] in taken_flows else "plain"])
        return "\n".join(out)


@lru_cache(maxsize=32)
def _drawn(raw: bytes, role_names: tuple, title: str | None) -> _Drawn:
    root = etree.fromstring(raw)
    diagram = layout.read_cached(raw)
    if not diagram.shapes:
        raise layout.LayoutError("the file has no diagram layout (run `complaintflow layout FILE`)")
    elements = {e.get("id"): e for e in root.iter() if e.get("id")}
    role_names = dict(role_names)
    drawn = _Drawn()
    out = drawn.parts

    boxes = list(diagram.shapes.values()) + [b for _, b in diagram.lanes] + ([diagram.pool] if diagram.pool else [])
    xs = [p[0] for pts in diagram.edges.values() for p in pts] + [b.x for b in boxes] + [b.right for b in boxes]
    ys = [p[1] for pts in diagram.edges.values() for p in pts] + [b.y for b in boxes] + [b.bottom + 34 for b in boxes]
    x0, y0 = min(xs) - 10, min(ys) - (40 if title else 10)
    w, h = max(xs) - x0 + 10, max(ys) - y0 + 10
    out += [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{x0:.0f} {y0:.0f} {w:.0f} {h:.0f}" '
            f'width="{w:.0f}" height="{h:.0f}" font-family="Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif" '
            f'font-size="12" role="img">',
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{PLAIN}"/></marker>'
            '<marker id="arrow-done" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{DONE}"/></marker></defs>']
    if title:
        out.append(f'<text x="{x0 + 10:.0f}" y="{y0 + 24:.0f}" font-size="16" font-weight="bold">{escape(title)}</text>')
    if diagram.pool:
        p = diagram.pool
        name = elements.get(diagram.participant).get("name") if diagram.participant in elements else ""
        out.append(f'<rect x="{p.x}" y="{p.y}" width="{p.w}" height="{p.h}" fill="#fafafa" stroke="{PLAIN}"/>')
        out.append(_vertical_text(p.x + 15, p.y + p.h / 2, name or "", 13, bold=True))
    for lane_id, b in diagram.lanes:
        lane = elements.get(lane_id)
        role = lane.get("name") if lane is not None else lane_id
        label = role_names.get(role) or role
        out.append(f'<rect x="{b.x}" y="{b.y}" width="{b.w}" height="{b.h}" fill="none" stroke="{PLAIN}"/>')
        out.append(f'<line x1="{b.x + 30}" y1="{b.y}" x2="{b.x + 30}" y2="{b.bottom}" stroke="{PLAIN}"/>')
        out.append(_vertical_text(b.x + 15, b.y + b.h / 2, label, 12))
    for fid, points in diagram.edges.items():
        drawn.flows[fid] = {state: _flow(fid, points, state) for state in ("plain", "taken", "covered", "uncovered")}
        out.append(("flow", fid))
        flow = elements.get(fid)
        if flow is not None and flow.get("name") and fid in diagram.labels:
            lb = diagram.labels[fid]
            out.append(f'<text x="{lb.x:.0f}" y="{lb.y + 11:.0f}" font-size="11" fill="#455a64">{escape(flow.get("name"))}</text>')
    for sid, b in diagram.shapes.items():
        node = elements.get(sid)
        if node is None:
            continue
        drawn.shapes[sid] = {state: _shape(node, sid, b, state) for state in (None, "done", "current")}
        out.append(("shape", sid))
        name = node.get("name") or ""
        kind = _local(node.tag)
        if name and kind not in ACTIVITIES:
            lb = diagram.labels.get(sid) or layout.Box(b.cx - 45, b.bottom + 4, 90, 28)
            for k, line in enumerate(_wrap(name, 8)[:2]):
                out.append(f'<text x="{lb.cx:.0f}" y="{lb.y + 11 + k * 13:.0f}" text-anchor="middle" font-size="11">{escape(line)}</text>')
    out.append("</svg>")
    return drawn


def _flow(fid, points, state) -> str:
    """A sequence flow: "plain", "taken" (the case went along it), "covered" or "uncovered"
    (process tests' coverage)."""
    taken = state in ("taken", "covered")
    colour, marker = (DONE, "arrow-done") if taken else (CURRENT if state == "uncovered" else PLAIN, "arrow")
    extra = {"covered": ' data-covered="yes"', "uncovered": ' data-covered="no" stroke-dasharray="6 4"'}.get(state, "")
    path = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
    return (f'<polyline data-element="{escape(fid)}" points="{path}" fill="none" stroke="{colour}" '
            f'stroke-width="{2.5 if taken else 1.3}" marker-end="url(#{marker})"{extra}/>')


def _vertical_text(x, y, text, size, bold=False):
    weight = ' font-weight="bold"' if bold else ""
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}"{weight} text-anchor="middle" '
            f'transform="rotate(-90 {x:.0f} {y:.0f})" dominant-baseline="middle">{escape(text)}</text>')


def _shape(node, sid, b, state) -> str:
    kind = _local(node.tag)
    stroke = CURRENT if state == "current" else DONE if state == "done" else PLAIN
    width = 3 if state else 1.5
    fill = FILL[state]
    attrs = f'data-element="{escape(sid)}" data-state="{state or ""}"'
    parts = [f'<g {attrs}><title>{escape(node.get("name") or sid)}</title>']
    if kind in ACTIVITIES:
        parts.append(f'<rect x="{b.x}" y="{b.y}" width="{b.w}" height="{b.h}" rx="10" fill="{fill}" '
                     f'stroke="{stroke}" stroke-width="{width}"/>')
        parts.append(_task_marker(kind, b.x + 6, b.y + 6, stroke))
        lines = _wrap(node.get("name") or sid, 7)
        top = b.cy - (len(lines) - 1) * 7.5 + 4
        for k, line in enumerate(lines):
            parts.append(f'<text x="{b.cx:.0f}" y="{top + k * 15:.0f}" text-anchor="middle">{escape(line)}</text>')
    elif kind in EVENTS:
        r = b.w / 2
        thick = 4 if kind == "endEvent" else width
        dash = ' stroke-dasharray="4 2"' if kind == "boundaryEvent" and node.get("cancelActivity") == "false" else ""
        parts.append(f'<circle cx="{b.cx}" cy="{b.cy}" r="{r}" fill="{fill}" stroke="{stroke}" stroke-width="{thick}"{dash}/>')
        if kind in ("intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"):
            parts.append(f'<circle cx="{b.cx}" cy="{b.cy}" r="{r - 3}" fill="none" stroke="{stroke}"{dash}/>')
        parts.append(_event_marker(node, b, stroke))
    elif kind in GATEWAYS:
        cx, cy, r = b.cx, b.cy, b.w / 2
        parts.append(f'<polygon points="{cx},{cy - r} {cx + r},{cy} {cx},{cy + r} {cx - r},{cy}" fill="{fill}" '
                     f'stroke="{stroke}" stroke-width="{width}"/>')
        if kind == "exclusiveGateway":
            parts.append(f'<path d="M{cx - 8},{cy - 8} L{cx + 8},{cy + 8} M{cx + 8},{cy - 8} L{cx - 8},{cy + 8}" '
                         f'stroke="{stroke}" stroke-width="3"/>')
        elif kind == "parallelGateway":
            parts.append(f'<path d="M{cx},{cy - 11} L{cx},{cy + 11} M{cx - 11},{cy} L{cx + 11},{cy}" stroke="{stroke}" stroke-width="3"/>')
        elif kind == "inclusiveGateway":
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="10" fill="none" stroke="{stroke}" stroke-width="2.5"/>')
        elif kind == "eventBasedGateway":
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="12" fill="none" stroke="{stroke}"/>')
            parts.append(f'<polygon points="{cx},{cy - 7} {cx + 7},{cy - 2} {cx + 4},{cy + 6} {cx - 4},{cy + 6} {cx - 7},{cy - 2}" '
                         f'fill="none" stroke="{stroke}"/>')
    parts.append("</g>")
    return "".join(parts)


def _task_marker(kind, x, y, stroke) -> str:
    if kind == "userTask":
        return (f'<circle cx="{x + 7}" cy="{y + 5}" r="4" fill="none" stroke="{stroke}"/>'
                f'<path d="M{x},{y + 16} Q{x + 7},{y + 6} {x + 14},{y + 16} Z" fill="none" stroke="{stroke}"/>')
    if kind == "serviceTask":
        return (f'<circle cx="{x + 7}" cy="{y + 7}" r="6" fill="none" stroke="{stroke}" stroke-dasharray="3 1.5" stroke-width="2.5"/>'
                f'<circle cx="{x + 7}" cy="{y + 7}" r="2.5" fill="none" stroke="{stroke}"/>')
    if kind == "scriptTask":
        return f'<path d="M{x + 3},{y} h10 q-4,5 0,9 q4,5 0,9 h-10 q-4,-5 0,-9 q4,-4 0,-9 z" fill="none" stroke="{stroke}"/>'
    if kind == "businessRuleTask":
        return (f'<rect x="{x}" y="{y}" width="16" height="12" fill="none" stroke="{stroke}"/>'
                f'<path d="M{x},{y + 4} h16 M{x + 5},{y + 4} v8" stroke="{stroke}"/>')
    return ""


def _event_marker(node, b, stroke) -> str:
    defs = {_local(c.tag) for c in node}
    cx, cy = b.cx, b.cy
    if "timerEventDefinition" in defs:
        return (f'<circle cx="{cx}" cy="{cy}" r="10" fill="#fff" stroke="{stroke}"/>'
                f'<path d="M{cx},{cy - 7} L{cx},{cy} L{cx + 5},{cy + 3}" fill="none" stroke="{stroke}"/>')
    if "signalEventDefinition" in defs:
        fill = stroke if _local(node.tag) in ("intermediateThrowEvent", "endEvent") else "none"
        return f'<polygon points="{cx},{cy - 9} {cx + 8},{cy + 6} {cx - 8},{cy + 6}" fill="{fill}" stroke="{stroke}"/>'
    if "messageEventDefinition" in defs:
        return (f'<rect x="{cx - 8}" y="{cy - 6}" width="16" height="12" fill="none" stroke="{stroke}"/>'
                f'<path d="M{cx - 8},{cy - 6} L{cx},{cy + 1} L{cx + 8},{cy - 6}" fill="none" stroke="{stroke}"/>')
    if "errorEventDefinition" in defs:
        return f'<path d="M{cx - 7},{cy + 7} L{cx - 3},{cy - 7} L{cx + 2},{cy + 2} L{cx + 7},{cy - 7} L{cx + 3},{cy + 7} L{cx - 2},{cy - 2} Z" fill="none" stroke="{stroke}"/>'
    if "terminateEventDefinition" in defs:
        return f'<circle cx="{cx}" cy="{cy}" r="9" fill="{stroke}"/>'
    return ""


