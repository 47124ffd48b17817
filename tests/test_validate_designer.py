"""`complaintflow validate` as a process designer meets it: each mistake made in a copy of a
shipped procedure is reported once, at its cause, as the first line of the output
(`file:line: element 'id' (name): sentence`); what follows from it is folded into that line."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from complaintflow.handlers import default_registry
from complaintflow.web.cli import cli
from conftest import PROCESSES

KNOWN = ", ".join(default_registry().names())
FLOW_TO_SUMMARY = '<bpmn:sequenceFlow id="flow_to_summary" sourceRef="merge_close" targetRef="summary_archive" />'
PROMISE_STARTED = 'sourceRef="start_promise" targetRef="preliminary_check"'
ACCEPTED = '<bpmn:sequenceFlow id="flow_accepted" name="受理" sourceRef="outcome_gateway" targetRef="accepted_split" />'


def copy_of(tmp_path, process):
    """A copy of a shipped process (BPMN, its forms, roles) to break."""
    folder = tmp_path / "processes"
    folder.mkdir()
    shutil.copy(PROCESSES / f"{process}.bpmn", folder)
    shutil.copy(PROCESSES / "roles.json", folder)
    shutil.copytree(PROCESSES / "forms" / process, folder / "forms" / process)
    return folder / f"{process}.bpmn"


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {path.name} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def line_of(path, text):
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


def at(path, element):
    """path:line of the element's start tag."""
    return f"{path}:{line_of(path, 'id=%s' % json.dumps(element))}"


@pytest.fixture
def validate(service, chain_key_env):
    def run(*args):
        return CliRunner().invoke(cli, ["--db", str(service.engine.url), "validate", *map(str, args)],
                                  env=chain_key_env)
    return run


@pytest.fixture
def enterprise(tmp_path):
    return copy_of(tmp_path, "enterprise_customer")


def first_line(result):
    return result.output.splitlines()[0]


def test_a_gateway_with_no_outgoing_flow_is_refused_and_names_what_it_cuts_off(validate, enterprise):
    edit(enterprise, FLOW_TO_SUMMARY, "")
    result = validate(enterprise)
    assert result.exit_code == 4
    assert first_line(result) == (
        f"{at(enterprise, 'merge_close')}: element 'merge_close' (汇总): exclusive gateway "
        "has no outgoing sequence flow: a case that reaches it goes no further "
        "(3 elements after it can never be reached: 总结归档, 归档结案, 结案)")
    assert "can never be reached from a start event" not in result.output


def test_a_task_with_no_outgoing_flow_is_refused(validate, enterprise):
    edit(enterprise, '<bpmn:sequenceFlow id="flow_summarised" sourceRef="summary_archive" targetRef="archive" />', "")
    result = validate(enterprise)
    assert result.exit_code == 4
    assert first_line(result) == (
        f"{at(enterprise, 'summary_archive')}: element 'summary_archive' (总结归档): user task "
        "has no outgoing sequence flow: a case that reaches it would end here without reaching an end event "
        "(only end events may have none) (2 elements after it can never be reached: 归档结案, 结案)")


def test_a_dead_gateway_is_one_line_with_everything_after_it_folded_in(validate, enterprise):
    for flow in ("flow_settled", "flow_refused"):
        text = enterprise.read_text(encoding="utf-8")
        start = text.index(f'<bpmn:sequenceFlow id="{flow}"')
        end = text.index("</bpmn:sequenceFlow>", start) + len("</bpmn:sequenceFlow>")
        enterprise.write_text(text[:start] + text[end:], encoding="utf-8")
    edit(enterprise, ACCEPTED, "")
    edit(enterprise, ' default="flow_accepted"', "")
    result = validate(enterprise)
    assert result.exit_code == 4
    assert first_line(result) == (
        f"{at(enterprise, 'outcome_gateway')}: element 'outcome_gateway' (核实结论): "
        "exclusive gateway has no outgoing sequence flow: a case that reaches it goes no further "
        "(26 elements after it can never be reached: 告知不予受理, 受理, 投诉等级, 承诺时限监控, 超过承诺解决时间, …)")
    problems = json.loads(validate(enterprise, "--json").output)["problems"]
    assert len(problems) == 1 and len(problems[0]["follow_on"]) == 26
    assert problems[0]["severity"] == "error" and problems[0]["name"] == "核实结论"


def test_a_flow_to_a_missing_element_is_the_cause_not_the_engine_error(validate, enterprise):
    edit(enterprise, PROMISE_STARTED, 'sourceRef="start_promise" targetRef="preliminary_chek"')
    result = validate(enterprise)
    assert result.exit_code == 4
    assert first_line(result) == (
        f"{enterprise}:{line_of(enterprise, 'preliminary_chek')}: element 'flow_promise_started': sequence flow from "
        "'起算承诺时限' (start_promise) leads to 'preliminary_chek', which is not an element of this process "
        "(did you mean '初步核实' (preliminary_check)?) "
        "(28 elements after it can never be reached: 初步核实, 核实结论, 告知不予受理, 受理, 投诉等级, …)")
    assert len(result.output.splitlines()) == 2          # the line and the count
    assert "task spec" not in result.output and "found two" not in result.output


def test_a_missing_target_ref_is_listed_first(validate, enterprise):
    edit(enterprise, 'id="notify.refusal"', 'id="notify.refusel"')       # a problem earlier in the file
    edit(enterprise, PROMISE_STARTED, 'sourceRef="start_promise"')
    result = validate(enterprise)
    assert result.exit_code == 4
    assert first_line(result) == (
        f"{at(enterprise, 'flow_promise_started')}: element 'flow_promise_started': "
        "sequence flow from '起算承诺时限' (start_promise) has no targetRef: it leads nowhere; connect it to the "
        "element it should lead to "
        "(28 elements after it can never be reached: 初步核实, 核实结论, 告知不予受理, 受理, 投诉等级, …)")
    assert "notify.refusel" in result.output.splitlines()[1]


def test_a_handler_typo_is_one_line_at_the_service_task(validate, enterprise):
    edit(enterprise, 'id="deadline.start"', 'id="deadline.strat"')
    result = validate(enterprise)
    assert result.exit_code == 4
    assert result.output.splitlines() == [
        f"{at(enterprise, 'start_promise')}: element 'start_promise' (起算承诺时限): service "
        f"task uses unknown handler 'deadline.strat' (did you mean 'deadline.start'?); known handlers: {KNOWN} "
        "(so the timer '超过承诺解决时间' (promised_time_passed) waiting for deadline 'promised' would never fire)",
        "1 problem(s) in 1 file(s)"]


def _outcome_gateway_without_default(enterprise, settled_condition):
    edit(enterprise, ' default="flow_accepted"', "")
    edit(enterprise, ACCEPTED, ACCEPTED.replace(
        " />", '><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">outcome == "accepted"'
               "</bpmn:conditionExpression></bpmn:sequenceFlow>"))
    edit(enterprise, 'outcome == "settled"', settled_condition)


def test_conditions_that_miss_a_choice_need_a_default(validate, enterprise):
    _outcome_gateway_without_default(enterprise, 'outcome == "resolved"')
    result = validate(enterprise)
    assert result.exit_code == 4
    assert first_line(result) == (
        f"{at(enterprise, 'outcome_gateway')}: element 'outcome_gateway' (核实结论): "
        "exclusive gateway has conditions but no default flow, and its conditions do not cover "
        'outcome = "settled"; a case that matches none of them stops here with an incident: mark one outgoing '
        "flow as the default (or add the missing conditions)")


def test_conditions_that_cover_every_choice_need_no_default(validate, enterprise):
    _outcome_gateway_without_default(enterprise, 'outcome == "settled"')
    result = validate(enterprise)
    assert result.exit_code == 0, result.output
    assert "outcome_gateway" not in result.output
    assert first_line(result) == "OK: 1 file(s), processes: enterprise_customer"


def test_a_condition_on_a_field_no_form_before_it_asks_for(validate, enterprise):
    edit(enterprise, 'outcome == "settled"', 'satisfied == "yes"')
    result = validate(enterprise)
    assert result.exit_code == 4
    assert first_line(result) == (
        f"{at(enterprise, 'flow_settled')}: element 'flow_settled' (当场解决): condition "
        "'satisfied == \"yes\"' reads 'satisfied', which no form before it asks for (it is a field of the form of "
        "'满意度调查' (satisfaction_survey), which does not come before this flow)")


def test_an_end_reached_with_a_limit_still_running_is_a_warning_and_deploys(validate, tmp_path):
    bpmn = copy_of(tmp_path, "medical_insurance")
    assert validate(bpmn).output.splitlines()[0].startswith("OK: 1 file(s)")
    stop = ('<bpmn:serviceTask id="stop_reply_limit_outside" name="答复时限已告知">\n'
            '      <bpmn:extensionElements>\n'
            '        <spiffworkflow:serviceTaskOperator id="deadline.stop" resultVariable="reply_done">\n'
            '          <spiffworkflow:parameters>\n'
            '            <spiffworkflow:parameter id="name" type="str" value="&quot;reply&quot;" />')
    # the designer pauses the limit where the procedure stops it
    edit(bpmn, stop, stop.replace("deadline.stop", "deadline.pause").replace('id="name"', 'id="names"'))
    result = validate(bpmn)
    assert result.exit_code == 0, result.output
    assert first_line(result) == (
        f"{at(bpmn, 'closed_outside')}: warning: element 'closed_outside' (引导后结案): can be reached while limit 'reply' "
        "(started by '起算答复时限（10个工作日）' (start_reply_limit)) is still running: no deadline.stop for "
        "'reply' (nor a timer on deadlines[\"reply\"]) on the way, so the case would end with the limit open")
    assert result.output.splitlines()[-1] == "OK: 1 file(s), processes: medical_insurance, 1 warning(s)"
    as_json = json.loads(validate(bpmn, "--json").output)
    assert as_json["ok"] is True and [p["severity"] for p in as_json["problems"]] == ["warning"]
