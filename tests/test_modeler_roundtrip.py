"""The shipped processes open cleanly in bpmn-js (the modeler inside bpmn.io and Camunda
Modeler), and what the modeler saves still validates and deploys with every spiff extension
(forms, handlers, parameters, due times, decisions) intact: a designer can edit them there."""

from __future__ import annotations

import shutil

import pytest
from lxml import etree

from browser import missing
from complaintflow.engine.definitions import check_paths
from complaintflow.handlers import default_registry
from conftest import PROCESSES, ROOT

MODELER_JS = ROOT / "tests" / "modeler" / "node_modules" / "bpmn-js" / "dist" / "bpmn-modeler.development.js"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
SHIPPED = sorted(p.name for p in PROCESSES.glob("*.bpmn"))

ROUND_TRIP = """async (xml) => {
  const modeler = new BpmnJS({ container: '#canvas' });
  const imported = await modeler.importXML(xml);
  const saved = await modeler.saveXML({ format: true });
  const registry = modeler.get('elementRegistry');
  return { warnings: imported.warnings.map(w => w.message), xml: saved.xml,
           drawn: registry.getAll().map(e => e.id) };
}"""


@pytest.fixture(scope="module")
def modeler_page(browser):
    if not MODELER_JS.is_file():
        missing("bpmn-js (cd tests/modeler && npm ci)")
    page = browser.new_page()
    page.set_content('<html><body><div id="canvas" style="width:1600px;height:900px"></div></body></html>')
    page.add_script_tag(path=str(MODELER_JS))
    yield page
    page.close()


def spiff_elements(raw: bytes):
    root = etree.fromstring(raw)
    return [(etree.QName(e).localname, dict(e.attrib), (e.text or "").strip())
            for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).namespace == SPIFF]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_modeler_opens_the_process_without_warnings_and_keeps_the_spiff_extensions(modeler_page, tmp_path, name):
    original = (PROCESSES / name).read_bytes()
    result = modeler_page.evaluate(ROUND_TRIP, original.decode("utf-8"))
    assert result["warnings"] == []
    root = etree.fromstring(original)
    ids = {e.get("id") for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname in (
        "userTask", "serviceTask", "scriptTask", "businessRuleTask", "exclusiveGateway", "parallelGateway",
        "eventBasedGateway", "startEvent", "endEvent", "intermediateCatchEvent", "boundaryEvent", "lane")}
    assert ids <= set(result["drawn"]), f"not drawn by the modeler: {ids - set(result['drawn'])}"

    saved = result["xml"].encode("utf-8")
    assert spiff_elements(saved) == spiff_elements(original)

    # the saved file, beside the same forms, roles and decision tables, validates and deploys the same
    copy = tmp_path / "processes"
    shutil.copytree(PROCESSES, copy)
    for other in copy.glob("*.bpmn"):
        if other.name != name:
            other.unlink()
    (copy / name).write_bytes(saved)
    before = check_paths([PROCESSES / name], default_registry())
    after = check_paths([copy / name], default_registry())
    # no errors; the same warnings (a limit left running) as the original, at the same elements
    assert [p for p in after.problems if p.severity != "warning"] == []
    assert {(p.element, p.message) for p in after.problems} == {(p.element, p.message) for p in before.problems}
    (a,), (b,) = before.packages, after.packages
    assert (b.process_id, b.meta, b.forms) == (a.process_id, a.meta, a.forms)
