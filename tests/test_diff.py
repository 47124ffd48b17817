"""`complaintflow diff`: what changed between deployed versions of a process, or between a deployed
version and the working copy — limits, elements, flows, conditions, forms, roles, timers."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from complaintflow.web.cli import cli
from test_whatif import PROCESS, copy_of_processes, set_reply_limit

RECHECK = ('    <bpmn:userTask id="recheck" name="复核">\n'
           '      <bpmn:extensionElements>\n'
           '        <spiffworkflow:properties>\n'
           '          <spiffworkflow:property name="formJsonSchemaFilename" value="medical_insurance/supervise.json" />\n'
           '        </spiffworkflow:properties>\n'
           '      </bpmn:extensionElements>\n'
           '      <bpmn:incoming>flow_opinion_given</bpmn:incoming>\n'
           '      <bpmn:outgoing>flow_rechecked</bpmn:outgoing>\n'
           '    </bpmn:userTask>\n')


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def redesign(copy):
    """A designer's working copy: a shorter limit, a recheck by the leadership group before the
    reply, a changed condition, a new required field and a new choice in the forms."""
    set_reply_limit(copy, 5)
    bpmn = copy / "medical_insurance.bpmn"
    edit(bpmn, '<bpmn:flowNodeRef>approve_extension</bpmn:flowNodeRef>',
         '<bpmn:flowNodeRef>approve_extension</bpmn:flowNodeRef>\n        <bpmn:flowNodeRef>recheck</bpmn:flowNodeRef>')
    edit(bpmn, '    <bpmn:userTask id="reply" name="答复投诉人">', RECHECK + '    <bpmn:userTask id="reply" name="答复投诉人">')
    edit(bpmn, '<bpmn:sequenceFlow id="flow_opinion_given" sourceRef="handling_opinion" targetRef="reply" />',
         '<bpmn:sequenceFlow id="flow_opinion_given" sourceRef="handling_opinion" targetRef="recheck" />\n'
         '    <bpmn:sequenceFlow id="flow_rechecked" sourceRef="recheck" targetRef="reply" />')
    edit(bpmn, '<bpmn:incoming>flow_opinion_given</bpmn:incoming>\n      <bpmn:outgoing>flow_replied',
         '<bpmn:incoming>flow_rechecked</bpmn:incoming>\n      <bpmn:outgoing>flow_replied')
    edit(bpmn, '>remit == "outside"<', '>remit != "within"<')
    form = copy / "forms" / PROCESS / "handling_opinion.json"
    schema = json.loads(form.read_text(encoding="utf-8"))
    schema["properties"]["approved_by"] = {"type": "string", "title": "审核人", "minLength": 1}
    schema["required"].append("approved_by")
    form.write_text(json.dumps(schema, ensure_ascii=False, indent=2), encoding="utf-8")
    reply = copy / "forms" / PROCESS / "reply.json"
    schema = json.loads(reply.read_text(encoding="utf-8"))
    schema["properties"]["reply_form"]["oneOf"].append({"const": "sms", "title": "短信答复"})
    reply.write_text(json.dumps(schema, ensure_ascii=False, indent=2), encoding="utf-8")


EXPECTED = [
    "limits:",
    "  ~ limit 'reply': 10 workdays → 5 workdays",
    "elements:",
    "  + task 'recheck' (复核) in lane 'leadership_group'",
    "sequence flows:",
    "  ~ flow 'flow_opinion_given': target 'reply' → 'recheck'",
    "  + flow 'flow_rechecked' from 'recheck' to 'reply'",
    "conditions:",
    "  ~ condition of flow 'flow_outside_remit': remit == \"outside\" → remit != \"within\"",
    "forms:",
    "  ~ form 'medical_insurance/handling_opinion.json': + field 'approved_by' (审核人, string, required)",
    "  ~ form 'medical_insurance/reply.json': ~ field 'reply_form': choices +'sms'",
]


def run(service, env, *args):
    return CliRunner().invoke(cli, ["--db", str(service.engine.url), "diff", PROCESS, *args], env=env)


@pytest.fixture
def copy(service, tmp_path):
    copy = copy_of_processes(tmp_path)
    service.deploy([copy])
    return copy


def test_the_working_copy_against_the_deployed_version(service, copy, chain_key_env):
    same = run(service, chain_key_env, str(copy))
    assert same.exit_code == 0, same.output
    assert same.output.splitlines() == [f"{PROCESS}: version 1 → working copy {copy / 'medical_insurance.bpmn'}",
                                        "no differences"]
    redesign(copy)
    result = run(service, chain_key_env, str(copy))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{PROCESS}: version 1 → working copy {copy / 'medical_insurance.bpmn'}",
                                          *EXPECTED]


def test_two_deployed_versions_and_json(service, copy, chain_key_env):
    redesign(copy)
    (v2,) = service.deploy([copy])
    assert v2.version == 2
    result = run(service, chain_key_env, "1", "2")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{PROCESS}: version 1 → version 2", *EXPECTED]
    # the other way round, everything is undone
    back = run(service, chain_key_env, "2", "1", "--json")
    report = json.loads(back.output)
    assert report["from"] == {"version": 2, "path": None, "label": "version 2"}
    assert report["to"]["version"] == 1 and report["equal"] is False
    assert {(c["kind"], c["change"], c["id"]) for c in report["changes"]} == {
        ("limit", "~", "reply"), ("element", "-", "recheck"), ("flow", "~", "flow_opinion_given"),
        ("flow", "-", "flow_rechecked"), ("condition", "~", "flow_outside_remit"),
        ("form", "~", "medical_insurance/handling_opinion.json"), ("form", "~", "medical_insurance/reply.json")}
    assert {c["text"] for c in report["changes"] if c["kind"] == "form"} == {
        "~ form 'medical_insurance/handling_opinion.json': - field 'approved_by'",
        "~ form 'medical_insurance/reply.json': ~ field 'reply_form': choices -'sms'"}
    # latest deployed (2) against the working copy it came from: equal; version 1 against it: the changes
    assert json.loads(run(service, chain_key_env, str(copy), "--json").output)["equal"] is True
    assert run(service, chain_key_env, "1", str(copy)).output.splitlines()[1:] == EXPECTED


def test_timers_lanes_and_limit_escalation(service, copy, chain_key_env):
    bpmn = copy / "medical_insurance.bpmn"
    # the limit passing no longer goes to the leadership group's report but straight to supervision
    edit(bpmn, '<bpmn:sequenceFlow id="flow_limit_passed" sourceRef="reply_limit_passed" targetRef="report_breach" />',
         '<bpmn:sequenceFlow id="flow_limit_passed" sourceRef="reply_limit_passed" targetRef="supervise" />')
    edit(bpmn, '<bpmn:timeDate xsi:type="bpmn:tFormalExpression">deadlines["reply"]</bpmn:timeDate>',
         '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P5D"</bpmn:timeDuration>')
    edit(bpmn, '<bpmn:lane id="lane_leadership_group" name="leadership_group">',
         '<bpmn:lane id="lane_leadership_group" name="manager">')
    lines = run(service, chain_key_env, str(copy)).output.splitlines()
    assert lines[1:3] == [
        "limits:",
        "  ~ limit 'reply': escalation timer 'reply_limit_passed' → 'report_breach' (报告领导小组超时未答复) → none"]
    assert "  ~ timer of intermediate catch event 'reply_limit_passed' (超过答复时限): timeDate deadlines[\"reply\"] → " \
           "timeDuration \"P5D\"" in lines
    assert "  ~ flow 'flow_limit_passed': target 'report_breach' → 'supervise'" in lines
    assert "  ~ task 'supervise' (领导小组督办): lane 'leadership_group' → 'manager'" in lines
    assert lines[-3:] == ["roles (lanes):", "  - role 'leadership_group' (its lane is gone)",
                          "  + role 'manager' (a new lane, 12 element(s))"]


def test_unknown_versions_and_arguments_are_told(service, copy, chain_key_env):
    result = run(service, chain_key_env, "7")
    assert result.exit_code == 3 and "version 7 of process 'medical_insurance' is not deployed" in result.output
    result = run(service, chain_key_env, "1", "2", "3")
    assert result.exit_code == 2 and "at most two versions" in result.output
    result = run(service, chain_key_env, str(copy), "1")
    assert result.exit_code == 2 and "V1 must be a deployed version number" in result.output
    result = CliRunner().invoke(cli, ["--db", str(service.engine.url), "diff", "nothing_here"], env=chain_key_env)
    assert result.exit_code == 3 and "process 'nothing_here' is not deployed" in result.output
