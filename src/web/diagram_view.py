"""The case page's diagram opened on the case's open user tasks, not on its top-left corner.

A procedure's drawing can be 12,590 x 3,594 px (hospital_patient); the page shows a window of
it. `focus(svg, bpmn_xml, open_ids)` sets the drawing's viewBox (and pixel size) to a window
at 100% centred on the open tasks (fitting them all when they are far apart), so the page
shows them first even without script, and records for static/diagram.js:

* `data-extent`: the whole drawing (x y w h), for "fit whole" and panning;
* `data-focus`: the open tasks' box, for "back to the open task";
* `data-open` on each open task's group, which the stylesheet outlines.

The page offers the whole drawing without script too (`?diagram=all`).
"""

from __future__ import annotations

import re

from ..engine import layout

WINDOW = (1100.0, 620.0)   # the window shown at first without script, in drawing units (= px at 100%)
PAD = 80.0                 # room around the open tasks
_VIEWBOX = re.compile(r'viewBox="([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)" width="[\d.]+" height="[\d.]+"')


def focus_box(bpmn_xml: str | bytes, open_ids: set[str]) -> layout.Box | None:
    """The box around the shapes of `open_ids` in the diagram layout, or None (`bpmn_xml`: the
    text, or its UTF-8 bytes when the caller has them)."""
    raw = bpmn_xml if isinstance(bpmn_xml, bytes) else bpmn_xml.encode("utf-8")
    shapes = layout.read_cached(raw).shapes
    boxes = [shapes[i] for i in sorted(open_ids) if i in shapes]
    if not boxes:
        return None
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    return layout.Box(x0, y0, max(b.right for b in boxes) - x0, max(b.bottom for b in boxes) - y0)


def _window(extent: layout.Box, box: layout.Box) -> layout.Box:
    """A window at least WINDOW large, centred on `box` and kept inside `extent`."""
    w = min(extent.w, max(WINDOW[0], box.w + 2 * PAD))
    h = min(extent.h, max(WINDOW[1], box.h + 2 * PAD))
    x = min(max(box.cx - w / 2, extent.x), extent.right - w)
    y = min(max(box.cy - h / 2, extent.y), extent.bottom - h)
    return layout.Box(x, y, w, h)


def focus(svg: str, bpmn_xml: str | bytes, open_ids: set[str]) -> str:
    """`svg` (engine.drawing.render) opened on the open tasks; the whole drawing when none is
    drawn (a closed case)."""
    match = _VIEWBOX.search(svg)
    if match is None:
        return svg
    extent = layout.Box(*(float(v) for v in match.groups()))
    box = focus_box(bpmn_xml, open_ids)

    def nums(b):
        return f"{b.x:.0f} {b.y:.0f} {b.w:.0f} {b.h:.0f}"
    win = extent if box is None else _window(extent, box)
    head = (f'viewBox="{nums(win)}" width="{win.w:.0f}" height="{win.h:.0f}" data-extent="{nums(extent)}"'
            + (f' data-focus="{nums(box)}"' if box else ""))
    svg = svg[:match.start()] + head + svg[match.end():]
    for element in open_ids:
        svg = svg.replace(f'<g data-element="{element}" ', f'<g data-open="true" data-element="{element}" ', 1)
    return svg
