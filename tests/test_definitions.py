"""validate and deploy: every problem reported with file, element and a clear sentence;
versions by content hash; running cases stay on their version."""

from __future__ import annotations

import json
import re

import pytest

from complaintflow.engine.errors import ValidationFailed
from conftest import PROCESSES, open_task

INTAKE = {"subject": "x", "due_at": "2026-05-07T12:00:00+08:00"}


def edit(path, old, new, count=1):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def problems(service, path):
    return [(p.element, p.message) for p in service.validate([path]).problems]


def test_the_fixture_validates_clean(service, mini_dir):
    result = service.validate([mini_dir])
    assert result.ok, [str(p) for p in result.problems]
    assert [p.process_id for p in result.packages] == ["mini"]


def test_shipped_processes_validate_clean(service):
    result = service.validate([PROCESSES])
    assert result.ok, "\n".join(str(p) for p in result.problems)
    assert "enterprise_customer" in [p.process_id for p in result.packages]


def test_unknown_handler(service, mini_dir):
    edit(mini_dir / "mini.bpmn", 'id="test.flaky"', 'id="test.flakey"')
    (found,) = problems(service, mini_dir)
    assert found[0] == "flaky"
    assert "unknown handler 'test.flakey'" in found[1] and "test.flaky" in found[1]


def test_timer_that_is_not_iso(service, mini_dir):
    edit(mini_dir / "mini.bpmn", ">due_at</bpmn:timeDate>", ">\"next week\"</bpmn:timeDate>")
    (found,) = problems(service, mini_dir)
    assert found[0] == "overdue" and "does not evaluate to an ISO 8601 date-time" in found[1]


def test_unquoted_iso_duration_is_explained(service, mini_dir):
    edit(mini_dir / "mini.bpmn", "<bpmn:timeDate xsi:type=\"bpmn:tFormalExpression\">due_at</bpmn:timeDate>",
         "<bpmn:timeDuration xsi:type=\"bpmn:tFormalExpression\">P5D</bpmn:timeDuration>")
    (found,) = problems(service, mini_dir)
    assert found[0] == "overdue" and 'needs quotes: "P5D"' in found[1]


def test_quoted_duration_is_accepted(service, mini_dir):
    edit(mini_dir / "mini.bpmn", "<bpmn:timeDate xsi:type=\"bpmn:tFormalExpression\">due_at</bpmn:timeDate>",
         "<bpmn:timeDuration xsi:type=\"bpmn:tFormalExpression\">\"P5D\"</bpmn:timeDuration>")
    assert problems(service, mini_dir) == []


@pytest.mark.parametrize("expression, words", [
    ("__import__('os').system('id')", "uses '__import__'; names starting with '_' are not allowed"),
    ("verdict.__class__", "names starting with '_' are not allowed"),
    ("open('/etc/passwd')", "'open', which is not one of the allowed functions"),
    ("[x for x in verdict]", "comprehensions"),
    ("(lambda: 1)()", "lambda"),
    ("verdict ** 99", "power operator"),
    ("verdict.upper", "reads the attribute"),
    ("verdict ==", "is not a valid expression"),
    ("verdikt == 'ok'", "'verdikt', which no form field"),
])
def test_expressions_outside_the_allowed_set(service, mini_dir, expression, words):
    edit(mini_dir / "mini.bpmn", 'value="verdict"', f'value="{expression.replace(chr(39), "&apos;")}"')
    (found,) = problems(service, mini_dir)
    assert found[0] == "flaky" and words in found[1], found


def test_user_task_without_form(service, mini_dir):
    edit(mini_dir / "mini.bpmn", '<spiffworkflow:property name="formJsonSchemaFilename" value="mini/note.json" />', "")
    (found,) = problems(service, mini_dir)
    assert found[0] == "supervise" and "user task has no form" in found[1]


def test_form_file_missing_or_broken(service, mini_dir):
    (mini_dir / "forms" / "mini" / "review.json").write_text('{"type": "object", "properties": ', encoding="utf-8")
    (mini_dir / "forms" / "mini" / "note.json").unlink()
    found = problems(service, mini_dir)
    assert ("review", ) == tuple(e for e, m in found if "not valid JSON" in m)
    assert {e for e, m in found if "form file 'mini/note.json' not found" in m} == {"supervise", "close"}


def test_lane_that_is_not_a_role(service, mini_dir):
    edit(mini_dir / "mini.bpmn", 'name="manager"', 'name="boss"')
    (found,) = problems(service, mini_dir)
    assert found[0] == "lane_manager"
    assert "lane 'boss' is not a known role" in found[1] and "manager" in found[1]


def test_unreachable_element(service, mini_dir):
    """One line for the unreachable region, at its entry; what comes after it is folded in."""
    edit(mini_dir / "mini.bpmn", '<bpmn:sequenceFlow id="f4" sourceRef="flaky" targetRef="close" />',
         '<bpmn:sequenceFlow id="f4" sourceRef="flaky" targetRef="end" />')
    (problem,) = service.validate([mini_dir]).problems
    assert (problem.element, problem.message) == (
        "close", "can never be reached from a start event: no sequence flow leads to it "
                 "(1 element after it can never be reached either: Customer replies)")
    assert problem.follow_on == ("wait_reply",)


def test_malformed_xml_names_the_line(service, mini_dir):
    edit(mini_dir / "mini.bpmn", "</bpmn:process>", "</bpmn:proces>")
    (problem,) = service.validate([mini_dir]).problems
    assert problem.line is not None and "not well-formed XML" in problem.message


def test_every_problem_is_reported_at_once(service, mini_dir):
    edit(mini_dir / "mini.bpmn", 'id="test.flaky"', 'id="nope"')
    edit(mini_dir / "mini.bpmn", 'name="manager"', 'name="boss"')
    edit(mini_dir / "mini.bpmn", ">due_at</bpmn:timeDate>", ">\"soon\"</bpmn:timeDate>")
    assert len(problems(service, mini_dir)) == 3


def test_problem_text_has_file_line_element_and_sentence(service, mini_dir):
    edit(mini_dir / "mini.bpmn", 'id="test.flaky"', 'id="nope"')
    (problem,) = service.validate([mini_dir]).problems
    assert re.match(r".*mini\.bpmn:\d+: element 'flaky' \(Call the flaky system\): service task uses unknown handler "
                    r"'nope'; known handlers: ", str(problem))


def test_deploy_refuses_everything_if_anything_fails(service, mini_dir, tmp_path):
    import shutil
    other = tmp_path / "other"
    shutil.copytree(mini_dir, other)
    edit(other / "mini.bpmn", 'id="mini"', 'id="mini2"')
    edit(other / "mini.bpmn", 'id="test.flaky"', 'id="nope"')
    with pytest.raises(ValidationFailed):
        service.deploy([mini_dir, other / "mini.bpmn"])
    assert service.processes() == []


def test_versions_by_content_hash_and_running_cases_stay_on_theirs(service, mini_dir, switch):
    switch.fail = False
    (v1,) = service.deploy([mini_dir])
    assert (v1.process_id, v1.version, v1.created) == ("mini", 1, True)
    (same,) = service.deploy([mini_dir])
    assert (same.version, same.created) == (1, False)

    old_case = service.start("mini", INTAKE, "alice")
    edit(mini_dir / "mini.bpmn", 'name="Close"', 'name="Close (v2)"')
    (v2,) = service.deploy([mini_dir])
    assert (v2.version, v2.created) == (2, True)
    new_case = service.start("mini", INTAKE, "alice")
    assert service.show(old_case.instance_id)["version"] == 1
    assert service.show(new_case.instance_id)["version"] == 2

    for case in (old_case, new_case):
        service.complete_task(open_task(service, case.instance_id, "review")["task_id"], "bob", {"verdict": "ok"})
    assert open_task(service, old_case.instance_id, "close")["name"] == "Close"
    assert open_task(service, new_case.instance_id, "close")["name"] == "Close (v2)"
    assert service.replay(old_case.instance_id).consistent is True
    assert [(p["process_id"], p["version"]) for p in service.processes()] == [("mini", 1), ("mini", 2)]


def test_a_changed_form_is_a_new_version(service, mini_dir):
    service.deploy([mini_dir])
    path = mini_dir / "forms" / "mini" / "note.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["properties"]["note"]["maxLength"] = 500
    path.write_text(json.dumps(schema), encoding="utf-8")
    (v2,) = service.deploy([mini_dir])
    assert v2.version == 2 and v2.created


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="x">
  <decision id="severity_rule" name="Severity">
    <decisionTable id="table">
      <input id="in_1" label="Minutes late"><inputExpression id="ie_1" typeRef="integer"><text>minutes_late</text></inputExpression></input>
      <output id="out_1" name="severity" typeRef="string" />
      <rule id="rule_1"><inputEntry id="e1"><text>&gt; 30</text></inputEntry><outputEntry id="o1"><text>"general"</text></outputEntry></rule>
      <rule id="rule_2"><inputEntry id="e2"><text>10 &lt; ? &lt;= 30</text></inputEntry><outputEntry id="o2"><text>OUTPUT</text></outputEntry></rule>
      <rule id="rule_3"><inputEntry id="e3"><text>-</text></inputEntry><outputEntry id="o3"><text>"none"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def test_dmn_cells_are_checked_like_expressions(service, tmp_path):
    good = tmp_path / "good.dmn"
    good.write_text(DMN.replace("OUTPUT", '"minor"'), encoding="utf-8")
    assert service.validate([good]).problems == []
    bad = tmp_path / "bad.dmn"
    bad.write_text(DMN.replace("OUTPUT", "__import__(&quot;os&quot;).getcwd()"), encoding="utf-8")
    (problem,) = service.validate([bad]).problems
    assert problem.element == "o2" and "DMN output entry refused" in problem.message
    assert "names starting with '_' are not allowed" in problem.message
