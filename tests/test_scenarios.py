"""`complaintflow test`: designers' scenario files, run through the CLI as a designer would.

Scenario files are written into a copy of the shipped processes directory (tmp_path), so
each test controls exactly which scenarios run; the shipped scenario files are run in place.
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from click.testing import CliRunner
from lxml import etree

from complaintflow.web.cli import cli
from conftest import PROCESSES

INTAKE = """\
intake:
  at: 2026-09-28T10:00
  user: nurse_zhang
  data:
    channel: visit
    complainant: 李建国
    patient: 王秀英
    relationship: family
    contact: "13900000001"
    content: 母亲术后换药时护士操作粗暴
    department_complained: 普外科病区
    category: nursing
    first_receiver: 普外科护士站 张护士
    settled_on_spot: false
"""

# the department's investigation runs to Sat 10-10 (National Day in between): the reminder fires
# at 10-10 00:00, the limit at 10-11 00:00; the first reply's one week (000:369) ends 10-05, a
# holiday, rolled forward to Fri 10-09, so its supervision opens at 10-10 00:00 too
OVERDUE = "process: hospital_patient\nname: 调查超时\n" + INTAKE + """\
steps:
  - complete: accept_decision
    user: office_liu
    data: {decision: accept, severity: general, handling: standard, coordination: none}
    expect:
      tasks: {investigate: department}
  - tick: 2026-10-10T00:00
    expect:
      tasks: [investigate, overrun_explanation, supervise_first_reply]
  - tick: 2026-10-11T00:00
    expect:
      tasks: [investigate, supervise_investigation, supervise_first_reply]
"""


def run(args, db=None):
    runner = CliRunner()
    base = ["--db", db] if db else []
    return runner.invoke(cli, base + ["test", *args], catch_exceptions=False)


@pytest.fixture
def procs(tmp_path):
    """A copy of the shipped hospital_patient process (its BPMN, DMN, forms — its own and the shared
    message forms it uses —, roles) with an empty tests/ folder: one process deploys quicker than six."""
    target = tmp_path / "processes"
    for forms in ("hospital_patient", "common"):
        shutil.copytree(PROCESSES / "forms" / forms, target / "forms" / forms)
    for name in ("hospital_patient.bpmn", "hospital_patient_routing.dmn", "roles.json"):
        shutil.copy(PROCESSES / name, target / name)
    (target / "tests" / "hospital_patient").mkdir(parents=True)
    return target


def write(procs, name, text):
    path = procs / "tests" / "hospital_patient" / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_the_shipped_scenarios_pass_and_cover_every_shipped_process_whole():
    result = run([str(PROCESSES / "tests"), "--json"])
    report = json.loads(result.output)
    failed = [(s["file"], s["failure"]) for s in report["scenarios"] if not s["passed"]]
    assert failed == [] and report["errors"] == [] and result.exit_code == 0
    coverage = {c["process_id"]: c for c in report["coverage"]}
    assert set(coverage) == {bpmn.stem for bpmn in PROCESSES.glob("*.bpmn")}     # each process has scenarios
    not_whole = {pid: (c["flows_never_taken"], c["tasks_never_reached"]) for pid, c in coverage.items()
                 if c["flows_never_taken"] or c["tasks_never_reached"]}
    assert not_whole == {}
    assert {(c["flows"]["percent"], c["tasks"]["percent"]) for c in coverage.values()} == {(100.0, 100.0)}


def test_a_scenario_that_passes_says_so(procs):
    path = write(procs, "overdue.yaml", OVERDUE)
    result = run([str(path)])
    assert result.exit_code == 0, result.output
    assert f"PASS {path}: 调查超时 (3 step(s))" in result.output
    assert "1 scenario(s): 1 passed, 0 failed" in result.output


def test_a_wrong_expectation_fails_with_the_first_unmet_expectation_in_plain_words(procs):
    # the scenario expects the supervision a day early, at the reminder
    wrong = OVERDUE.replace("tasks: [investigate, overrun_explanation, supervise_first_reply]",
                            "tasks: [investigate, supervise_investigation]")
    path = write(procs, "wrong.yaml", wrong)
    result = run([str(path)])
    assert result.exit_code == 1
    line = wrong.splitlines().index("      tasks: [investigate, supervise_investigation]") + 1
    assert (f"{path}:{line}: step 2 (tick 2026-10-10 00:00): expected open task 'supervise_investigation' "
            "(督促科室完成调查), open tasks are: 'investigate' (科室调查核实并提出科室意见), "
            "'overrun_explanation' (说明能否按时完成调查), 'supervise_first_reply' (督办：首次答复超时)") in result.output
    assert "FAIL" in result.output and "0 passed, 1 failed" in result.output


def test_other_unmet_expectations_in_plain_words(procs):
    cases = {
        "role": ("tasks: {investigate: department}", "tasks: {investigate: nursing}",
                 "step 1 (complete 'accept_decision' at 2026-09-28 10:00): expected task 'investigate' "
                 "(科室调查核实并提出科室意见) for role 'nursing', it is for 'department'"),
        "limit": ("tasks: {investigate: department}", "deadlines: {investigation: {last_day: 2026-10-09}}",
                  "step 1 (complete 'accept_decision' at 2026-09-28 10:00): expected limit 'investigation' "
                  "last day '2026-10-09', it is '2026-10-10'"),
        "notice": ("tasks: {investigate: department}", "notices: [{kind: refusal}]",
                   "expected a notice of kind 'refusal'; this step sent: staff to role:nursing"),
        "fired": ("tasks: [investigate, overrun_explanation, supervise_first_reply]", "timers_fired: 1",
                  "step 2 (tick 2026-10-10 00:00): expected 1 timer(s) to fire, 2 fired"),
    }
    for name, (old, new, _) in cases.items():
        write(procs, f"{name}.yaml", OVERDUE.replace(old, new, 1))
    result = run([str(procs / "tests")])             # one run, one deploy
    assert result.exit_code == 1, result.output
    for name, (_, _, message) in cases.items():
        assert f"FAIL {procs / 'tests' / 'hospital_patient' / name}.yaml" in result.output, name
        assert message in result.output, (name, result.output)
    assert "4 scenario(s): 0 passed, 4 failed" in result.output


def test_a_refused_action_fails_the_scenario_with_the_service_message_unless_expected(procs):
    text = OVERDUE.replace("data: {decision: accept, severity: general, handling: standard, coordination: none}",
                           "data: {decision: accept}")
    result = run([str(write(procs, "refused.yaml", text))])
    assert result.exit_code == 1
    assert "step 1 (complete 'accept_decision' at 2026-09-28 10:00): the action was refused:" in result.output
    assert "severity" in result.output
    expected = text.replace("    expect:\n      tasks: {investigate: department}",
                            "    expect:\n      refused: severity", 1)
    expected = expected[:expected.index("  - tick:")]
    result = run([str(write(procs, "refused.yaml", expected))])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("text, line, message", [
    ("process: hospital_patient\nintake: [\n", 3, "not valid YAML"),
    ("process: hospital_patient\n" + INTAKE + "steps:\n  - complete: nonesuch\n", 17,
     "process 'hospital_patient' has no user task 'nonesuch'; its user tasks: supervise_first_reply"),
    ("process: hospital_patient\n" + INTAKE + "steps:\n  - wait: 2026-09-29T10:00\n", 17,
     "step 1 has no step kind; unknown key 'wait'; a step is one of: complete, claim, tick, message"),
    ("process: hospital_patient\n" + INTAKE + "  expect: {tasks: [archive], colour: red}\n", 16,
     "unknown key 'colour' in 'expect'; it may have: tasks, deadlines"),
    ("process: hospital_patient\n" + INTAKE + "steps:\n  - complete: archive\n    role: janitor\n", 18,
     "'janitor' is not a role in roles.json"),
    ("process: no_such_process\n" + INTAKE, 1, "there is no process 'no_such_process' in the processes directory"),
    ("process: hospital_patient\n" + INTAKE + "steps:\n  - tick: next monday\n", 17,
     "step 1 (tick): 'next monday' is not a moment; write it like 2026-05-06T09:30"),
])
def test_a_mistake_in_a_scenario_file_gives_file_and_line_and_exit_2_without_traceback(procs, text, line, message):
    good = write(procs, "good.yaml", OVERDUE)
    bad = write(procs, "bad.yaml", text)
    result = run([str(procs / "tests")])
    assert result.exit_code == 2, result.output
    assert f"ERROR {bad}:{line}: {message}" in result.output
    assert "Traceback" not in result.output
    assert f"PASS {good}" in result.output            # the other files still run


def test_coverage_of_one_path_lists_the_other_branches_as_never_taken(procs):
    write(procs, "settled.yaml", "process: hospital_patient\n" + INTAKE.replace(
        "settled_on_spot: false", "settled_on_spot: true\n    on_spot_resolution: 当场道歉") + """\
steps:
  - complete: archive
    data: {summary: 当场处理}
    expect: {status: completed}
""")
    result = run([str(procs / "tests"), "--json"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.output)["coverage"]
    root = etree.parse(str(procs / "hospital_patient.bpmn")).getroot()
    ns = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
    flows = {f.get("id"): (f.get("sourceRef"), f.get("targetRef")) for f in root.iter(f"{ns}sequenceFlow")}
    # the settled path: start → number → settled? → archive → superior? → close → end
    taken = set(entry["flows_taken"])
    assert "flow_settled_gateway__start_accept" not in taken            # the branch not settled on the spot
    assert "flow_superior_gateway__reply_superior" not in taken         # not referred by a superior
    never = {f["id"]: f for f in entry["flows_never_taken"]}
    assert set(never) == set(flows) - taken
    assert never["flow_settled_gateway__start_accept"]["text"] == "是否已当场协调解决 → 起算受理决定时限"
    assert entry["flows"] == {"covered": len(taken), "total": len(flows),
                              "percent": int(1000 * len(taken) / len(flows)) / 10}
    assert entry["tasks"]["covered"] < entry["tasks"]["total"]
    assert {"id": "accept_decision", "name": "受理审查与分类"} in entry["tasks_never_reached"]
    text = run([str(procs / "tests")]).output
    assert "flow never taken: flow_settled_gateway__start_accept  是否已当场协调解决 → 起算受理决定时限" in text


def test_svg_marks_exactly_the_covered_flows(procs, tmp_path):
    write(procs, "overdue.yaml", OVERDUE)
    out = tmp_path / "hp.svg"
    report = json.loads(run([str(procs / "tests"), "--json", "--svg", str(out)]).output)
    covered = set(report["coverage"][0]["flows_taken"])
    svg = etree.parse(str(out)).getroot()
    lines = {p.get("data-element"): p.get("data-covered") for p in svg.iter("{http://www.w3.org/2000/svg}polyline")}
    assert covered and {f for f, c in lines.items() if c == "yes"} == covered
    assert {f for f, c in lines.items() if c == "no"} == set(lines) - covered
    assert report["svg"] == [str(out)]
    # a directory: one file per process
    result = run([str(procs / "tests"), "--svg", str(tmp_path / "svgs")])
    assert result.exit_code == 0 and (tmp_path / "svgs" / "hospital_patient.svg").is_file()


def test_drawing_without_coverage_is_unchanged():
    from complaintflow.engine import drawing
    raw = (PROCESSES / "hospital_patient.bpmn").read_bytes()
    plain = drawing.render(raw, taken_flows={"flow_settled_gateway__start_accept"})
    assert "data-covered" not in plain
    assert plain == drawing.render(raw, taken_flows={"flow_settled_gateway__start_accept"}, covered_flows=None)


def test_the_run_never_touches_the_database_of_db(procs, tmp_path):
    write(procs, "overdue.yaml", OVERDUE)
    db_file = tmp_path / "user.sqlite3"
    conn = sqlite3.connect(db_file)
    conn.execute("create table mine (x)")
    conn.execute("insert into mine values (1)")
    conn.commit()
    conn.close()
    before = db_file.read_bytes()
    result = run([str(procs / "tests")], db=f"sqlite:///{db_file}")
    assert result.exit_code == 0, result.output
    assert db_file.read_bytes() == before
    # the run deploys into a temporary file of its own: nothing is added beside the user's database
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("user")) == ["user.sqlite3"]


def test_a_refused_step_checks_its_other_expectations_on_the_case_as_the_refusal_left_it(procs):
    # expectations beside `refused` are checked (they were once skipped): the refusal changed
    # nothing, so the acceptance is still open and nothing was sent
    refused = OVERDUE.replace(
        "    data: {decision: accept, severity: general, handling: standard, coordination: none}\n"
        "    expect:\n      tasks: {investigate: department}\n",
        "    data: {decision: accept}\n    expect:\n      refused: severity\n      tasks: {investigate: department}\n", 1)
    refused = refused[:refused.index("  - tick:")]
    path = write(procs, "refused.yaml", refused)
    result = run([str(path)])
    assert result.exit_code == 1, result.output
    line = refused.splitlines().index("      tasks: {investigate: department}") + 1
    assert (f"{path}:{line}: step 1 (complete 'accept_decision' at 2026-09-28 10:00): expected open task "
            "'investigate' (科室调查核实并提出科室意见), open tasks are: 'accept_decision' (受理审查与分类)") in result.output
    held = refused.replace("tasks: {investigate: department}", "tasks: {accept_decision: complaint_office}\n      notices: []")
    result = run([str(write(procs, "refused.yaml", held))])
    assert result.exit_code == 0, result.output


def test_time_going_back_and_expectations_beside_a_refused_intake_are_mistakes_in_the_file(procs):
    # a tick typed before the step it follows would fire nothing and pass unnoticed
    back = OVERDUE.replace("  - tick: 2026-10-10T00:00", "  - tick: 2026-10-12T00:00", 1)
    back_file = write(procs, "back.yaml", back)
    back_line = back.splitlines().index("  - tick: 2026-10-11T00:00") + 1
    # a refused intake registers no case: there is nothing else to expect of it
    intake_file = write(procs, "intake.yaml", "process: hospital_patient\n" + INTAKE
                        + "  expect: {refused: contact, tasks: []}\n")
    good = write(procs, "good.yaml", OVERDUE)
    result = run([str(procs / "tests")])
    assert result.exit_code == 2, result.output
    assert (f"ERROR {back_file}:{back_line}: step 3 (tick): 2026-10-11 00:00 is before the step before it "
            "(2026-10-12 00:00); time only moves forward") in result.output
    assert (f"ERROR {intake_file}:16: a refused intake registers no case: 'tasks' cannot be expected beside "
            "'refused'") in result.output
    assert f"PASS {good}" in result.output
