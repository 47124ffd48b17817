"""Diagram layout (`complaintflow layout`) and drawing (`complaintflow draw`): a designer who
adds a step gets a readable diagram without placing coordinates, and nothing else in the
file changes."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from complaintflow.engine import drawing, layout
from complaintflow.web.cli import cli
from click.testing import CliRunner
from conftest import PROCESSES, copy_fixture

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
DIAGRAM = re.compile(rb"\s*<bpmndi:BPMNDiagram\b.*?</bpmndi:BPMNDiagram>", re.S)


def flow_elements(raw):
    root = etree.fromstring(raw)
    process = root.find(f"{BPMN}process")
    elements = [(n, etree.QName(n).localname) for n in process if isinstance(n.tag, str)]
    nodes = [n.get("id") for n, tag in elements if tag in layout.SIZES]
    flows = [n.get("id") for n, tag in elements if tag == "sequenceFlow"]
    lane_of = {ref.text.strip(): lane.get("id") for lane in process.iter(f"{BPMN}lane")
               for ref in lane.findall(f"{BPMN}flowNodeRef")}
    return nodes, flows, lane_of


def assert_readable(raw):
    """What a person opening the file in a modeler needs: every element drawn, in its lane,
    no shapes on top of each other, flows orthogonal and not running through shapes."""
    diagram = layout.read(raw)
    nodes, flows, lane_of = flow_elements(raw)
    assert set(nodes) <= set(diagram.shapes), f"not drawn: {set(nodes) - set(diagram.shapes)}"
    assert set(flows) <= set(diagram.edges), f"flows not drawn: {set(flows) - set(diagram.edges)}"
    lanes = dict(diagram.lanes)
    for node, lane in lane_of.items():
        box, band = diagram.shapes[node], lanes[lane]
        assert band.y <= box.y and box.bottom <= band.bottom, f"{node} is drawn outside its lane {lane}"
    on_edges = {x.get("id") for x in etree.fromstring(raw).iter(f"{BPMN}boundaryEvent")}
    boxes = [(k, b) for k, b in diagram.shapes.items()]
    for n, (a, ba) in enumerate(boxes):
        for b, bb in boxes[n + 1:]:
            overlap = ba.x < bb.right and bb.x < ba.right and ba.y < bb.bottom and bb.y < ba.bottom
            assert not overlap or {a, b} & on_edges, f"{a} and {b} overlap"
    for fid in flows:
        points = diagram.edges[fid]
        assert len(points) >= 2
        assert all(p[0] == q[0] or p[1] == q[1] for p, q in zip(points, points[1:])), f"{fid} is not orthogonal"
    assert layout.crossings(diagram) == []


@pytest.fixture
def ec_copy(tmp_path):
    target = tmp_path / "enterprise_customer.bpmn"
    target.write_bytes(DIAGRAM.sub(b"", (PROCESSES / "enterprise_customer.bpmn").read_bytes()))
    return target


def test_layout_draws_every_element_readably_and_changes_nothing_else(ec_copy):
    bare = ec_copy.read_bytes()
    assert layout.read(bare).shapes == {}
    result = CliRunner().invoke(cli, ["layout", str(ec_copy)])
    assert result.exit_code == 0, result.output
    assert "laid out (32 shapes, 35 flows, 3 lanes)" in result.output
    laid_out = ec_copy.read_bytes()
    assert_readable(laid_out)
    assert DIAGRAM.sub(b"", laid_out) == bare          # every other byte as it was
    again = CliRunner().invoke(cli, ["layout", str(ec_copy)])
    assert "up to date" in again.output and ec_copy.read_bytes() == laid_out
    check = CliRunner().invoke(cli, ["layout", "--check", str(ec_copy)])
    assert check.exit_code == 0


def test_a_step_added_by_a_designer_gets_a_place_in_the_diagram(ec_copy):
    CliRunner().invoke(cli, ["layout", str(ec_copy)])
    text = ec_copy.read_text(encoding="utf-8")
    text = text.replace('<bpmn:sequenceFlow id="flow_investigated" sourceRef="investigate" targetRef="agree_solution" />',
                        '<bpmn:sequenceFlow id="flow_investigated" sourceRef="investigate" targetRef="second_opinion" />'
                        '<bpmn:sequenceFlow id="flow_second" sourceRef="second_opinion" targetRef="agree_solution" />')
    text = text.replace('<bpmn:userTask id="agree_solution"',
                        '<bpmn:userTask id="second_opinion" name="复核"><bpmn:incoming>flow_investigated</bpmn:incoming>'
                        '<bpmn:outgoing>flow_second</bpmn:outgoing></bpmn:userTask>\n    <bpmn:userTask id="agree_solution"')
    text = text.replace("<bpmn:flowNodeRef>agree_solution</bpmn:flowNodeRef>",
                        "<bpmn:flowNodeRef>agree_solution</bpmn:flowNodeRef><bpmn:flowNodeRef>second_opinion</bpmn:flowNodeRef>")
    ec_copy.write_text(text, encoding="utf-8")
    check = CliRunner().invoke(cli, ["layout", "--check", str(ec_copy)])
    assert check.exit_code == 1 and "differs from the computed layout" in check.output
    CliRunner().invoke(cli, ["layout", str(ec_copy)])
    laid_out = ec_copy.read_bytes()
    assert_readable(laid_out)
    diagram = layout.read(laid_out)
    assert diagram.shapes["investigate"].right < diagram.shapes["second_opinion"].x
    assert diagram.shapes["second_opinion"].right < diagram.shapes["agree_solution"].x


def test_lanes_without_a_pool_are_refused_with_the_fix_and_the_file_is_left_alone(tmp_path):
    mini = copy_fixture(tmp_path, "mini") / "mini.bpmn"
    before = mini.read_bytes()
    result = CliRunner().invoke(cli, ["layout", str(mini)])
    assert result.exit_code == 2
    assert "has lanes but no pool: add a bpmn:collaboration with a bpmn:participant whose processRef is 'mini'" in result.output
    assert mini.read_bytes() == before


def test_every_shipped_process_has_a_readable_diagram():
    files = sorted(PROCESSES.glob("*.bpmn"))
    assert files
    for path in files:
        assert_readable(path.read_bytes())


def test_the_drawing_marks_the_path_taken_and_the_current_step():
    raw = (PROCESSES / "enterprise_customer.bpmn").read_bytes()
    svg = drawing.render(raw, role_names={"reception": "客服接待", "department": "处理部门", "manager": "管理层"},
                         done={"receive", "assign_case_number"}, current={"preliminary_check"},
                         taken_flows={"flow_receive"})
    root = etree.fromstring(svg.encode())
    states = {g.get("data-element"): g.get("data-state") for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert states["receive"] == "done" and states["preliminary_check"] == "current" and states["investigate"] == ""
    assert len(states) == len(layout.read(raw).shapes)
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"客服接待", "处理部门", "管理层", "初步核实"} <= texts
    taken = [p for p in root.iter("{http://www.w3.org/2000/svg}polyline") if p.get("data-element") == "flow_receive"]
    assert taken[0].get("marker-end") == "url(#arrow-done)"


def test_drawing_a_file_without_layout_says_how_to_get_one(ec_copy):
    result = CliRunner().invoke(cli, ["draw", str(ec_copy)])
    assert result.exit_code == 2 and "run `complaintflow layout FILE`" in result.output
