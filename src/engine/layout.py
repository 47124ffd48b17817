"""Diagram layout (BPMN DI) computed from a process, so designers never place coordinates.

`complaintflow layout FILE` rewrites the file's `bpmndi:BPMNDiagram` and leaves every other
byte of the file as it was (the spiff extensions, comments, formatting). The drawing is the
one bpmn.io / Camunda Modeler show:

* the pool is the collaboration's participant; lanes are horizontal bands in laneSet order;
* columns come from the flow: each node sits one column right of its furthest predecessor
  (longest path, loops ignored), so the main path reads left to right;
* rows: within a lane, a node keeps the row of its predecessor when that cell is free, so
  straight runs stay straight; parallel branches get rows of their own;
* sequence flows are orthogonal; of a few candidate routes the first that crosses no shape is
  taken (flows back to an earlier step run through the gap below the rows);
* boundary events sit on the bottom edge of their activity.

We wrote this instead of using bpmn-auto-layout (bpmn.io's npm package) because that package
does not lay out pools and lanes, and lanes are roles here: a diagram without them hides who
does what.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache
from dataclasses import dataclass, field

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NAMESPACES = {
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
ACTIVITIES = {"task", "userTask", "manualTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
              "businessRuleTask", "callActivity", "subProcess", "transaction"}
EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
SIZES = {**{k: (100, 80) for k in ACTIVITIES}, **{k: (36, 36) for k in EVENTS}, **{k: (50, 50) for k in GATEWAYS}}

POOL_X, POOL_Y = 160, 60
POOL_LABEL, LANE_LABEL = 30, 30
MARGIN = 50           # from the lane label strip to the first column
COL = 170             # column pitch
ROW = 130             # row pitch
LANE_PAD = 10         # above the first and below the last row of a lane
GAP = 25              # how far a bend sits from a shape


class LayoutError(ValueError):
    """The file cannot be laid out (no process, lanes without a pool, ...)."""


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self):
        return self.x + self.w / 2

    @property
    def cy(self):
        return self.y + self.h / 2

    @property
    def right(self):
        return self.x + self.w

    @property
    def bottom(self):
        return self.y + self.h


@dataclass
class Diagram:
    """What a layout produces; also what the SVG renderer draws."""

    participant: str | None = None
    collaboration: str | None = None
    process: str | None = None
    pool: Box | None = None
    lanes: list[tuple[str, Box]] = field(default_factory=list)
    shapes: dict[str, Box] = field(default_factory=dict)
    edges: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    labels: dict[str, Box] = field(default_factory=dict)


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _nodes(process):
    return [n for n in process if _local(n.tag) in SIZES]


def compute(raw: bytes) -> Diagram:
    """Lay out the first executable process of a BPMN file."""
    root = etree.fromstring(raw)
    processes = root.findall(f"{{{BPMN}}}process")
    if not processes:
        raise LayoutError("the file contains no bpmn:process")
    process = next((p for p in processes if p.get("isExecutable") == "true"), processes[0])
    pid = process.get("id")
    participant = collaboration = None
    for part in root.iter(f"{{{BPMN}}}participant"):
        if part.get("processRef") == pid:
            participant, collaboration = part.get("id"), part.getparent().get("id")
    lane_order, lane_of = [], {}
    for lane in process.iter(f"{{{BPMN}}}lane"):
        lane_order.append(lane.get("id"))
        for ref in lane.findall(f"{{{BPMN}}}flowNodeRef"):
            lane_of[(ref.text or "").strip()] = lane.get("id")
    if lane_order and participant is None:
        raise LayoutError(f"process '{pid}' has lanes but no pool: add a bpmn:collaboration with a "
                          f"bpmn:participant whose processRef is '{pid}'")
    if not lane_order:
        lane_order = [None]

    nodes = {n.get("id"): n for n in _nodes(process)}
    kind = {i: _local(n.tag) for i, n in nodes.items()}
    boundary = {i: n.get("attachedToRef") for i, n in nodes.items() if kind[i] == "boundaryEvent"}
    flows = [(f.get("id"), f.get("sourceRef"), f.get("targetRef"), f.get("name"))
             for f in process if _local(f.tag) == "sequenceFlow"]
    for fid, src, tgt, _ in flows:
        if src not in nodes or tgt not in nodes:
            raise LayoutError(f"sequence flow '{fid}' connects '{src}' to '{tgt}', which are not both in the process")

    placed = [i for i in nodes if i not in boundary]
    order = {i: k for k, i in enumerate(placed)}
    succ = defaultdict(list)
    for _, src, tgt, _ in flows:
        succ[boundary.get(src, src)].append(tgt)   # a boundary event's flow leaves from its activity

    rank = _ranks(placed, succ, kind)
    rows = _rows(placed, succ, rank, lane_of, order)

    diagram = Diagram(participant=participant, collaboration=collaboration, process=pid)
    lane_rows = defaultdict(int)
    for i in placed:
        lane_rows[lane_of.get(i)] = max(lane_rows[lane_of.get(i)], rows[i] + 1)
    x_content = POOL_X + POOL_LABEL + (LANE_LABEL if participant else 0) + MARGIN
    width = (max(rank.values(), default=0) + 1) * COL + MARGIN
    y = POOL_Y
    lane_top = {}
    for lane in lane_order:
        height = max(1, lane_rows.get(lane, 0)) * ROW + 2 * LANE_PAD
        lane_top[lane] = y
        if lane is not None:
            diagram.lanes.append((lane, Box(POOL_X + POOL_LABEL, y, x_content - POOL_X - POOL_LABEL + width, height)))
        y += height
    if participant:
        diagram.pool = Box(POOL_X, POOL_Y, x_content - POOL_X + width, y - POOL_Y)

    for i in placed:
        w, h = SIZES[kind[i]]
        cx = x_content + rank[i] * COL + 50
        cy = lane_top[lane_of.get(i) if lane_of.get(i) in lane_top else lane_order[0]] + LANE_PAD + rows[i] * ROW + ROW / 2
        diagram.shapes[i] = Box(cx - w / 2, cy - h / 2, w, h)
    on_host = defaultdict(int)
    for b, host in boundary.items():
        hb = diagram.shapes.get(host)
        if hb is None:
            raise LayoutError(f"boundary event '{b}' is attached to '{host}', which is not in the process")
        k = on_host[host]
        on_host[host] += 1
        diagram.shapes[b] = Box(hb.right - 28 - k * 40, hb.bottom - 18, 36, 36)

    for i, box in diagram.shapes.items():
        name = nodes[i].get("name")
        if name and kind[i] in GATEWAYS:   # above, left of the top exit: flows leave by top and bottom
            w = min(12 * len(name) + 4, 100)
            diagram.labels[i] = Box(box.x + 20 - w, box.y - 30 if len(name) > 8 else box.y - 17, w, 28 if len(name) > 8 else 14)
        elif name and kind[i] in EVENTS:
            diagram.labels[i] = Box(box.cx - 45, box.bottom + 4, 90, 28)
    channels = sorted({lane_top[lane] + LANE_PAD + k * ROW for lane in lane_order
                       for k in range(max(1, lane_rows.get(lane, 0)) + 1)})
    for fid, src, tgt, name in flows:
        points = _route(diagram.shapes, src, tgt, kind, boundary, channels)
        diagram.edges[fid] = points
        if name:
            diagram.labels[fid] = _flow_label(points, name)
    return diagram


def _flow_label(points, name):
    """Above the first horizontal stretch of the flow, near where it starts."""
    width = 12 * len(name) + 4
    for (x1, y1), (x2, y2) in zip(points, points[1:]):
        if y1 == y2 and abs(x2 - x1) >= 20:
            return Box(min(x1, x2) + 6, y1 - 17, width, 14)
    (x1, y1), (x2, y2) = points[0], points[1]
    return Box(x1 + 6, (y1 + y2) / 2 - 7, width, 14)


def _ranks(placed, succ, kind):
    """Longest-path columns over the flow with loops (back edges of a DFS) removed."""
    indeg = defaultdict(int)
    for s in placed:
        for t in succ[s]:
            indeg[t] += 1
    starts = [i for i in placed if kind[i] == "startEvent"] + [i for i in placed if indeg[i] == 0 and kind[i] != "startEvent"]
    back, state = set(), {}
    for root in starts + placed:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    forward = defaultdict(list)
    indeg = defaultdict(int)
    for s in placed:
        for t in succ[s]:
            if (s, t) not in back and t != s:
                forward[s].append(t)
                indeg[t] += 1
    rank = {i: 0 for i in placed}
    queue = [i for i in placed if indeg[i] == 0]
    while queue:
        n = queue.pop(0)
        for t in forward[n]:
            rank[t] = max(rank[t], rank[n] + 1)
            indeg[t] -= 1
            if indeg[t] == 0:
                queue.append(t)
    return rank


def _rows(placed, succ, rank, lane_of, order):
    pred = defaultdict(list)
    for s in placed:
        for t in succ[s]:
            pred[t].append(s)
    taken = set()
    rows = {}
    for i in sorted(placed, key=lambda n: (rank[n], order[n])):
        lane = lane_of.get(i)
        wanted = 0
        same_lane = [p for p in pred[i] if p in rows and lane_of.get(p) == lane and rank[p] < rank[i]]
        if same_lane:
            wanted = rows[min(same_lane, key=lambda p: (rank[i] - rank[p], order[p]))]
        row = wanted
        while (lane, rank[i], row) in taken:
            row += 1
        taken.add((lane, rank[i], row))
        rows[i] = row
    return rows


def _route(shapes, src, tgt, kind, boundary, channels):
    s, t = shapes[src], shapes[tgt]
    obstacles = [(i, b) for i, b in shapes.items() if i not in (src, tgt)]
    candidates = []
    if src in boundary:
        sx, sy = s.cx, s.bottom
        if t.x > s.cx:
            candidates.append([(sx, sy), (sx, t.cy), (t.x, t.cy)])
        candidates.append([(sx, sy), (sx, t.bottom + GAP), (t.cx, t.bottom + GAP), (t.cx, t.bottom)])
    elif t.x >= s.right:
        branching = kind[src] in GATEWAYS or kind[src] in EVENTS
        if abs(s.cy - t.cy) < 1:
            candidates.append([(s.right, s.cy), (t.x, t.cy)])
        else:
            if branching:
                start = (s.cx, s.bottom) if t.cy > s.cy else (s.cx, s.y)
                candidates.append([start, (s.cx, t.cy), (t.x, t.cy)])
            if kind[tgt] in GATEWAYS:
                end = (t.cx, t.y) if s.cy < t.cy else (t.cx, t.bottom)
                candidates.append([(s.right, s.cy), (t.cx, s.cy), end])
            candidates.append([(s.right, s.cy), (t.x - GAP, s.cy), (t.x - GAP, t.cy), (t.x, t.cy)])
            candidates.append([(s.right, s.cy), (s.right + GAP, s.cy), (s.right + GAP, t.cy), (t.x, t.cy)])
        for chan in (t.cy - ROW / 2 + 5, t.cy + ROW / 2 - 5, s.cy + ROW / 2 - 5, s.cy - ROW / 2 + 5):
            if branching:   # leave a gateway or event by its top or bottom, not along a sibling
                exit_y = s.bottom if chan > s.cy else s.y
                candidates.append([(s.cx, exit_y), (s.cx, chan), (t.x - GAP, chan), (t.x - GAP, t.cy), (t.x, t.cy)])
            else:
                candidates.append([(s.right, s.cy), (s.right + GAP, s.cy), (s.right + GAP, chan),
                                   (t.x - GAP, chan), (t.x - GAP, t.cy), (t.x, t.cy)])
    else:  # back to an earlier column, or a column above/below
        below = max(s.cy, t.cy) + ROW / 2 - 5
        above = min(s.cy, t.cy) - ROW / 2 + 5
        candidates.append([(s.cx, s.bottom), (s.cx, below), (t.cx, below), (t.cx, t.bottom)]
                          if t.bottom <= below else [(s.cx, s.bottom), (s.cx, below), (t.cx, below), (t.cx, t.y)])
        candidates.append([(s.cx, s.y), (s.cx, above), (t.cx, above), (t.cx, t.y)])
        if t.cy > s.bottom:
            candidates.insert(0, [(s.cx, s.bottom), (s.cx, t.cy), (t.right, t.cy)])
        elif t.cy < s.y:
            candidates.insert(0, [(s.cx, s.y), (s.cx, t.cy), (t.right, t.cy)])
    # Always possible: leave sideways into the gap beside the source, run along a row boundary
    # (no shape sits on one) and come back into the gap beside the target.
    # the gaps between columns: a column is as wide as its widest shape (an activity)
    out_x = s.cx + 50 + GAP
    in_x = t.cx - 50 - GAP
    end = (t.x, t.cy)
    usable = [y for y in channels if src not in boundary or y > s.bottom]   # a boundary event leaves downwards
    for y in sorted(usable, key=lambda y: abs(y - s.cy) + abs(y - t.cy)):
        first = [(s.cx, s.bottom), (s.cx, y)] if src in boundary else [(s.right, s.cy), (out_x, s.cy), (out_x, y)]
        candidates.append(first + [(in_x, y), (in_x, t.cy), end])
    for points in candidates:
        if not any(_crosses(points, b) for _, b in obstacles):
            return _simplify(points)
    return _simplify(candidates[0])


def _simplify(points):
    """Drop repeated points and points in the middle of a straight run."""
    out = []
    for p in points:
        if out and p == out[-1]:
            continue
        if len(out) >= 2 and (out[-2][0] == out[-1][0] == p[0] or out[-2][1] == out[-1][1] == p[1]):
            out[-1] = p
            continue
        out.append(p)
    return out


def _crosses(points, box, pad=3):
    x0, y0, x1, y1 = box.x - pad, box.y - pad, box.right + pad, box.bottom + pad
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        if ax == bx:
            if x0 < ax < x1 and min(ay, by) < y1 and max(ay, by) > y0:
                return True
        elif y0 < ay < y1 and min(ax, bx) < x1 and max(ax, bx) > x0:
            return True
    return False


def crossings(diagram: Diagram) -> list[tuple[str, str]]:
    """(flow, shape) pairs where a sequence flow runs through a shape that is not its end."""
    out = []
    ends = {}
    for fid, points in diagram.edges.items():
        for sid, box in diagram.shapes.items():
            near = [p for p in (points[0], points[-1]) if box.x - 1 <= p[0] <= box.right + 1 and box.y - 1 <= p[1] <= box.bottom + 1]
            if near:
                ends.setdefault(fid, set()).add(sid)
                continue
            if _crosses(points, box, pad=-2):
                out.append((fid, sid))
    return out


# --- writing DI into the file ------------------------------------------------------------

def _fmt(v: float) -> str:
    return str(int(round(v)))


def di_xml(diagram: Diagram) -> str:
    plane = diagram.collaboration or diagram.process
    out = [f'  <bpmndi:BPMNDiagram id="diagram_{diagram.process}">',
           f'    <bpmndi:BPMNPlane id="plane_{diagram.process}" bpmnElement="{plane}">']

    def bounds(box, indent="      "):
        return (f'{indent}  <dc:Bounds x="{_fmt(box.x)}" y="{_fmt(box.y)}" '
                f'width="{_fmt(box.w)}" height="{_fmt(box.h)}" />')

    if diagram.pool:
        out.append(f'      <bpmndi:BPMNShape id="{diagram.participant}_di" bpmnElement="{diagram.participant}" isHorizontal="true">')
        out.append(bounds(diagram.pool))
        out.append("      </bpmndi:BPMNShape>")
    for lane, box in diagram.lanes:
        out.append(f'      <bpmndi:BPMNShape id="{lane}_di" bpmnElement="{lane}" isHorizontal="true">')
        out.append(bounds(box))
        out.append("      </bpmndi:BPMNShape>")
    for sid, box in diagram.shapes.items():
        out.append(f'      <bpmndi:BPMNShape id="{sid}_di" bpmnElement="{sid}">')
        out.append(bounds(box))
        if sid in diagram.labels:
            out.append("        <bpmndi:BPMNLabel>")
            out.append(bounds(diagram.labels[sid], "        "))
            out.append("        </bpmndi:BPMNLabel>")
        out.append("      </bpmndi:BPMNShape>")
    for fid, points in diagram.edges.items():
        out.append(f'      <bpmndi:BPMNEdge id="{fid}_di" bpmnElement="{fid}">')
        for x, y in points:
            out.append(f'        <di:waypoint x="{_fmt(x)}" y="{_fmt(y)}" />')
        if fid in diagram.labels:
            out.append("        <bpmndi:BPMNLabel>")
            out.append(bounds(diagram.labels[fid], "        "))
            out.append("        </bpmndi:BPMNLabel>")
        out.append("      </bpmndi:BPMNEdge>")
    out += ["    </bpmndi:BPMNPlane>", "  </bpmndi:BPMNDiagram>"]
    return "\n".join(out) + "\n"


_DIAGRAM_BLOCK = re.compile(r"[ \t]*<bpmndi:BPMNDiagram\b.*?</bpmndi:BPMNDiagram>[ \t]*\r?\n?", re.S)


def apply(raw: bytes) -> tuple[bytes, Diagram]:
    """The file with its diagram replaced by a computed one; nothing else changes."""
    diagram = compute(raw)
    text = raw.decode("utf-8")
    text = _DIAGRAM_BLOCK.sub("", text)
    match = re.search(r"<([A-Za-z_][\w.-]*:)?definitions\b[^>]*>", text)
    if match is None:
        raise LayoutError("no definitions element found")
    head = match.group(0)
    missing = [f' xmlns:{p}="{uri}"' for p, uri in NAMESPACES.items() if f"xmlns:{p}=" not in head]
    if missing:
        closing = "/>" if head.endswith("/>") else ">"
        new_head = head[: -len(closing)] + "".join(missing) + closing
        text = text[: match.start()] + new_head + text[match.end():]
    end = re.search(r"</([A-Za-z_][\w.-]*:)?definitions>\s*$", text)
    if end is None:
        raise LayoutError("no closing definitions tag found")
    text = text[: end.start()] + di_xml(diagram) + text[end.start():]
    return text.encode("utf-8"), diagram


def read(raw: bytes) -> Diagram:
    """The diagram stored in a file (for drawing it); empty when the file has none."""
    root = etree.fromstring(raw)
    diagram = Diagram()
    lanes = {lane.get("id") for lane in root.iter(f"{{{BPMN}}}lane")}
    participants = {p.get("id") for p in root.iter(f"{{{BPMN}}}participant")}
    di = NAMESPACES["bpmndi"]
    for shape in root.iter(f"{{{di}}}BPMNShape"):
        ref = shape.get("bpmnElement")
        b = shape.find(f"{{{NAMESPACES['dc']}}}Bounds")
        if b is None:
            continue
        box = Box(*(float(b.get(k)) for k in ("x", "y", "width", "height")))
        if ref in participants:
            diagram.pool, diagram.participant = box, ref
        elif ref in lanes:
            diagram.lanes.append((ref, box))
        else:
            diagram.shapes[ref] = box
        label = shape.find(f"{{{di}}}BPMNLabel/{{{NAMESPACES['dc']}}}Bounds")
        if label is not None:
            diagram.labels[ref] = Box(*(float(label.get(k)) for k in ("x", "y", "width", "height")))
    for edge in root.iter(f"{{{di}}}BPMNEdge"):
        ref = edge.get("bpmnElement")
        diagram.edges[ref] = [(float(p.get("x")), float(p.get("y")))
                              for p in edge.findall(f"{{{NAMESPACES['di']}}}waypoint")]
        label = edge.find(f"{{{di}}}BPMNLabel/{{{NAMESPACES['dc']}}}Bounds")
        if label is not None:
            diagram.labels[ref] = Box(*(float(label.get(k)) for k in ("x", "y", "width", "height")))
    return diagram


@lru_cache(maxsize=32)
def read_cached(raw: bytes) -> Diagram:
    """`read(raw)`, kept per file content for the last few files: a deployed version never
    changes, and the case page draws it on every request. Shared: callers must not change
    the Diagram they get."""
    return read(raw)
