"""`complaintflow whatif`: a designer's candidate (a working copy, not deployed) against the recorded
history of past cases — the 医保办 reply limit cut from 10 to 5 working days, a new required form
field, and the real database left as it was."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from complaintflow.engine.clock import parse_instant
from complaintflow.web.cli import cli
from conftest import PROCESSES, open_task

PROCESS = "medical_insurance"
LIMIT = '<spiffworkflow:parameter id="amount" type="int" value="10" />'
INTAKE = {"channel": "phone", "complainant": "李先生", "contact": "13700000000",
          "insured_id": "110101195001011234", "respondent": "某定点药店",
          "content": "多收个人自付部分费用", "request": "退还多收的费用"}
REVIEW = {"remit": "within", "review_note": "涉及定点药店医保结算，属于医保办职责"}
INVESTIGATED = {"outcome": "completed", "facts": "药店将甲类药品按乙类结算", "evidence": ["结算单据"],
                "facts_clear": True}
OPINION = {"finding": "substantiated", "opinion": "责令药店退还多收费用", "policy_basis": "定点零售药店医保服务协议",
           "measures": "药店三日内退还并整改", "responsible_person": "张科长"}
REPLY = {"reply_form": "written", "reply_content": "经核实，已责令药店退还多收费用"}


def copy_of_processes(tmp_path):
    """The designer's working copy of medical_insurance (test_designer_change.py does the same)."""
    copy = tmp_path / "processes"
    copy.mkdir()
    shutil.copy(PROCESSES / "medical_insurance.bpmn", copy)
    shutil.copy(PROCESSES / "roles.json", copy)
    shutil.copytree(PROCESSES / "forms" / PROCESS, copy / "forms" / PROCESS)
    return copy


def set_reply_limit(copy, workdays):
    bpmn = copy / "medical_insurance.bpmn"
    source = bpmn.read_text(encoding="utf-8")
    assert source.count(LIMIT) == 1
    bpmn.write_text(source.replace(LIMIT, LIMIT.replace('"10"', f'"{workdays}"')), encoding="utf-8")


def answered_case(service, clock, received, answered, user="yb_wang"):
    """A real case: registered at `received`, reviewed and investigated the next hours, the opinion
    and the written reply given at `answered` (moments in Beijing time)."""
    clock.set(parse_instant(received))
    case = service.start(PROCESS, dict(INTAKE, received_at=received), user)
    clock.set(parse_instant(received.replace("09:00", "11:00")))
    service.complete_task(open_task(service, case.instance_id, "preliminary_review")["task_id"], user, REVIEW)
    clock.set(parse_instant(answered.replace("10:00", "09:00")))
    service.complete_task(open_task(service, case.instance_id, "investigate")["task_id"], user, INVESTIGATED)
    clock.set(parse_instant(answered.replace("10:00", "09:30")))
    service.complete_task(open_task(service, case.instance_id, "handling_opinion")["task_id"], user, OPINION)
    clock.set(parse_instant(answered))
    result = service.complete_task(open_task(service, case.instance_id, "reply")["task_id"], user, REPLY)
    assert result.status == "completed"
    return case


def whatif(service, env, *args):
    result = CliRunner().invoke(cli, ["--db", str(service.engine.url), "--now", "2026-06-01T09:00", "whatif",
                                      PROCESS, *args], env=env)
    return result


@pytest.fixture
def last_year(service, clock, tmp_path):
    """Four answered cases on version 1 (10 working days): two answered on the 4th working day
    after receipt, two on the 8th, both across the Labour Day holiday (05-01 to 05-05)."""
    copy = copy_of_processes(tmp_path)
    service.deploy([copy])
    # received Thu 04-30: working days 05-06 (1), 07, 08, Sat 09 (make-up, 4), 11 (5), 12, 13, 14 (8) … 18 (10)
    early_a = answered_case(service, clock, "2026-04-30T09:00:00+08:00", "2026-05-09T10:00:00+08:00")
    late_a = answered_case(service, clock, "2026-04-30T09:00:00+08:00", "2026-05-14T10:00:00+08:00")
    # received Wed 05-06: 07 (1), 08, 09, 11 (4), 12 (5), 13, 14, 15 (8) … 19 (10)
    early_b = answered_case(service, clock, "2026-05-06T09:00:00+08:00", "2026-05-11T10:00:00+08:00")
    late_b = answered_case(service, clock, "2026-05-06T09:00:00+08:00", "2026-05-15T10:00:00+08:00", user="yb_li")
    return copy, {"early_a": early_a, "late_a": late_a, "early_b": early_b, "late_b": late_b}


def test_a_limit_cut_from_10_to_5_working_days_shows_exactly_the_cases_answered_later_as_breaches(
        service, last_year, chain_key_env):
    copy, cases = last_year
    set_reply_limit(copy, 5)
    result = whatif(service, chain_key_env, "--candidate", str(copy), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    by_number = {c["case_number"]: c for c in report["cases"]}
    number = {k: c.case_number for k, c in cases.items()}
    assert len(report["cases"]) == 4

    breaching = {n for n, c in by_number.items() if c["would_breach"]}
    assert breaching == {number["late_a"], number["late_b"]}

    def reply(key):
        (limit,) = by_number[number[key]]["deadlines"]
        assert limit["name"] == "reply"
        return limit

    # answered on the 4th working day: same path, the limit moves, met under both
    for key, old_day, new_day in (("early_a", "2026-05-18", "2026-05-11"), ("early_b", "2026-05-19", "2026-05-12")):
        case, limit = by_number[number[key]], reply(key)
        assert case["path"] == "same" and case["divergence"] is None and case["does_not_fit"] is None
        assert (limit["old"]["last_day"], limit["new"]["last_day"]) == (old_day, new_day)
        assert (limit["old"]["amount"], limit["new"]["amount"]) == (10, 5)
        assert (limit["old"]["status"], limit["new"]["status"]) == ("met", "met")
        assert limit["moved"] and not limit["would_breach"]

    # answered on the 8th working day: breached at the end of the new last day
    for key, old_day, new_day, breached, answered, user in (
            ("late_a", "2026-05-18", "2026-05-11", "2026-05-11T16:00:00+00:00", "2026-05-14", "yb_wang"),
            ("late_b", "2026-05-19", "2026-05-12", "2026-05-12T16:00:00+00:00", "2026-05-15", "yb_li")):
        case, limit = by_number[number[key]], reply(key)
        assert (limit["old"]["last_day"], limit["new"]["last_day"]) == (old_day, new_day)
        assert (limit["old"]["status"], limit["new"]["status"]) == ("met", "breached")
        assert limit["new"]["breached_at"] == breached and limit["would_breach"]
        # the path changes there: the timer fires before the investigation is finished
        div = case["divergence"]
        assert div["when"] == "before" and div["at"] == breached
        assert div["old"] == (f"nothing until event 6 at {answered} 09:00 (task 'investigate' (调查核实) completed "
                              f"by {user})")
        assert div["new"] == ("timer 'reply_limit_passed' (超过答复时限) fired — limit 'reply' breached → "
                              "'report_breach' (notify.staff) — open are 'investigate' (调查核实), 'supervise' (领导小组督办)")

    assert report["summary"] == {"replayed": 4, "same_path": 2, "diverge": 2, "moved_deadlines": 4,
                                 "would_breach": 2, "do_not_fit": 0, "failed": 0}
    assert report["candidate"]["path"] == str(copy / "medical_insurance.bpmn")
    assert report["candidate"]["same_as_version"] is None


def test_text_report_names_the_breaching_cases_with_old_and_new_last_day(service, last_year, chain_key_env):
    copy, cases = last_year
    set_reply_limit(copy, 5)
    result = whatif(service, chain_key_env, "--candidate", str(copy / "medical_insurance.bpmn"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    late = cases["late_a"].case_number
    at = next(i for i, line in enumerate(lines) if line.startswith(late))
    assert "diverges — before event" in lines[at]
    assert lines[at + 1] == ("  limit 'reply': last day 2026-05-18 → 2026-05-11 (10 workdays → 5 workdays); "
                             "would be breached at 2026-05-12T00:00:00+08:00 (old: met)")
    early = cases["early_a"].case_number
    at = next(i for i, line in enumerate(lines) if line.startswith(early))
    assert lines[at].endswith(": same path")
    assert lines[at + 1] == "  limit 'reply': last day 2026-05-18 → 2026-05-11 (10 workdays → 5 workdays); met in both"
    assert lines[-1] == ("4 case(s) replayed: 2 keep their path, 2 diverge, 4 have moved deadlines, "
                         "2 would breach a limit, 0 do not fit the candidate's forms")


def test_the_unchanged_working_copy_keeps_every_case_as_it_was(service, last_year, chain_key_env):
    copy, _ = last_year
    result = whatif(service, chain_key_env, "--candidate", str(copy), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["candidate"]["same_as_version"] == 1
    assert report["summary"] == {"replayed": 4, "same_path": 4, "diverge": 0, "moved_deadlines": 0,
                                 "would_breach": 0, "do_not_fit": 0, "failed": 0}


def test_a_new_required_field_makes_old_submissions_not_fit(service, last_year, chain_key_env):
    copy, cases = last_year
    form = copy / "forms" / PROCESS / "handling_opinion.json"
    schema = json.loads(form.read_text(encoding="utf-8"))
    schema["properties"]["approved_by"] = {"type": "string", "title": "审核人", "minLength": 1}
    schema["required"].append("approved_by")
    form.write_text(json.dumps(schema, ensure_ascii=False, indent=2), encoding="utf-8")

    result = whatif(service, chain_key_env, "--candidate", str(copy), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for case in report["cases"]:
        misfit = case["does_not_fit"]
        # events: 1 started (+3 handler calls), 5 review, 6 investigate, 7 the opinion
        assert misfit["event"] == 7 and misfit["task"] == "handling_opinion"
        assert misfit["form"] == "medical_insurance/handling_opinion.json"
        assert "审核人" in misfit["reason"] and "required" in misfit["reason"]
        assert list(misfit["field_errors"]) == ["approved_by"]
        assert misfit["text"] == ("event 7: the submission of task 'handling_opinion' no longer fits form "
                                  f"medical_insurance/handling_opinion.json: {misfit['reason']}")
        assert case["path"] == "does_not_fit" and case["replayed_events"] == 6
        assert case["deadlines"][0]["new"]["status"] == "open"       # the replay stopped before the reply
    assert report["summary"]["do_not_fit"] == 4 and report["summary"]["same_path"] == 0

    text_run = whatif(service, chain_key_env, "--candidate", str(copy), "--cases", "1")
    assert text_run.exit_code == 0, text_run.output
    assert (f"  {report['cases'][0]['does_not_fit']['text']}") in text_run.output.splitlines()
    assert cases["late_b"].case_number in text_run.output            # the newest case only
    assert text_run.output.splitlines()[-1].startswith("1 case(s) replayed")


def _fingerprint(service):
    """Row counts and a hash of every row of every table of the real database."""
    out = {}
    with service.engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
        for table in sorted(tables):
            rows = conn.execute(text(f'SELECT * FROM "{table}" ORDER BY 1')).all()
            out[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


def test_the_real_database_is_left_unchanged(service, last_year, chain_key_env):
    copy, _ = last_year
    set_reply_limit(copy, 5)
    before = _fingerprint(service)
    assert before["events"][0] > 0 and before["deadlines"][0] == 4
    result = whatif(service, chain_key_env, "--candidate", str(copy))
    assert result.exit_code == 0, result.output
    assert _fingerprint(service) == before


def test_since_and_cases_pick_the_cases(service, last_year, chain_key_env):
    copy, cases = last_year
    result = whatif(service, chain_key_env, "--candidate", str(copy), "--since", "2026-05-01", "--json")
    picked = {c["case_number"] for c in json.loads(result.output)["cases"]}
    assert picked == {cases["early_b"].case_number, cases["late_b"].case_number}
    result = whatif(service, chain_key_env, "--candidate", str(copy), "--cases", "3", "--json")
    picked = [c["case_number"] for c in json.loads(result.output)["cases"]]
    assert picked == [cases[k].case_number for k in ("late_a", "early_b", "late_b")]     # oldest first


def test_json_shape(service, last_year, chain_key_env):
    copy, _ = last_year
    set_reply_limit(copy, 5)
    report = json.loads(whatif(service, chain_key_env, "--candidate", str(copy), "--cases", "1", "--json").output)
    assert set(report) == {"process_id", "now", "candidate", "cases", "summary"}
    assert report["now"] == "2026-06-01T01:00:00+00:00"
    assert set(report["candidate"]) == {"path", "content_hash", "same_as_version"}
    (case,) = report["cases"]
    assert set(case) == {"instance_id", "case_number", "version", "received", "status", "events", "replayed_events",
                         "path", "divergence", "does_not_fit", "deadlines", "moved", "would_breach", "notes", "error"}
    assert set(case["divergence"]) == {"event", "when", "at", "old", "new", "text"}
    (limit,) = case["deadlines"]
    assert set(limit) == {"name", "old", "new", "moved", "would_breach", "no_longer_breached"}
    assert set(limit["new"]) == {"unit", "amount", "extended_by", "due", "last_day", "status", "breached_at"}
    assert set(report["summary"]) == {"replayed", "same_path", "diverge", "moved_deadlines", "would_breach",
                                      "do_not_fit", "failed"}


def test_a_candidate_with_problems_is_refused_with_them_and_nothing_is_replayed(service, last_year, chain_key_env):
    copy, _ = last_year
    bpmn = copy / "medical_insurance.bpmn"
    bpmn.write_text(bpmn.read_text(encoding="utf-8").replace('name="insurance_office"', 'name="no_such_role"'),
                    encoding="utf-8")
    result = whatif(service, chain_key_env, "--candidate", str(copy))
    assert result.exit_code == 4
    assert "lane 'no_such_role' is not a known role" in result.output
    assert "case(s) replayed" not in result.output


def test_unknown_process_and_missing_candidate_are_told(service, last_year, chain_key_env):
    copy, _ = last_year
    result = CliRunner().invoke(cli, ["--db", str(service.engine.url), "whatif", "no_such_process",
                                      "--candidate", str(copy)], env=chain_key_env)
    assert result.exit_code == 2
    assert "no BPMN file in" in result.output and "defines process 'no_such_process'" in result.output
    result = whatif(service, chain_key_env, "--candidate", str(copy / "nothing.bpmn"))
    assert result.exit_code == 2 and "is not a BPMN file or a directory of them" in result.output
    result = whatif(service, chain_key_env, "--candidate", str(copy), "--since", "May")
    assert result.exit_code == 2 and "--since must be a day" in result.output


def test_a_changed_condition_diverges_at_the_step_that_takes_the_other_branch(service, last_year, chain_key_env):
    copy, cases = last_year
    bpmn = copy / "medical_insurance.bpmn"
    condition = '>remit == "outside"<'
    source = bpmn.read_text(encoding="utf-8")
    assert source.count(condition) == 1
    bpmn.write_text(source.replace(condition, '>remit in ("outside", "within")<'), encoding="utf-8")
    report = json.loads(whatif(service, chain_key_env, "--candidate", str(copy), "--cases", "1", "--json").output)
    (case,) = report["cases"]
    div = case["divergence"]
    # event 5 is the review: the old version went on to the investigation, the candidate explains and closes
    assert (div["event"], div["when"]) == (5, "at")
    assert div["old"] == "task 'preliminary_review' (初步审查) completed by yb_li"
    # the explanation step reads fields a review within the remit does not give: it fails
    assert div["new"] == ("task 'preliminary_review' (初步审查) completed by yb_li → 'explain_and_direct' "
                          "(notify.complainant) (failed) — no task is open; the case has an incident "
                          "(explain_and_direct failed) and waits for a retry")
    # the next recorded step cannot be taken: the replay stops there and says so
    assert case["replayed_events"] == 5
    assert case["notes"] == [
        "the replay stops at event 6: old: task 'investigate' (调查核实) completed by yb_li; new: task 'investigate' "
        "is not open — no task is open; the case has an incident (explain_and_direct failed) and waits for a retry",
        f"replayed up to event 5 of {case['events']}; what the candidate would do after that is not known"]
    assert report["summary"]["diverge"] == 1 and report["summary"]["same_path"] == 0


def test_progress_is_shown_on_stderr_when_many_cases_are_replayed(service, clock, tmp_path, chain_key_env):
    copy = copy_of_processes(tmp_path)
    service.deploy([copy])
    for n in range(10):
        clock.set(parse_instant(f"2026-05-{11 + n % 5:02d}T09:00:00+08:00"))
        service.start(PROCESS, dict(INTAKE, received_at=clock.now().isoformat()), "yb_wang")
    result = whatif(service, chain_key_env, "--candidate", str(copy), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == ["  10/10 cases replayed"]
    assert json.loads(result.stdout)["summary"]["same_path"] == 10


def test_intake_values_equal_to_the_initial_data_are_given_back_only_where_the_form_needs_them(
        service, clock, chain_key_env):
    """The log records the intake merged over the process's initial data. tourism's intake form
    requires `same_cause` for a joint complaint, and its initial data holds `same_cause: false`;
    property_management's initial data holds empty texts its intake form would refuse."""
    import test_property_management as pm
    import test_tourism as ly
    service.deploy([PROCESSES / "tourism.bpmn", PROCESSES / "property_management.bpmn"])
    joint = ly.start(service, clock, complainant_count=5, same_cause=False)
    plain = pm.start(service, clock)
    for process, case in (("tourism", joint), ("property_management", plain)):
        result = CliRunner().invoke(cli, ["--db", str(service.engine.url), "--now", "2026-05-06T09:00", "whatif",
                                          process, "--candidate", str(PROCESSES), "--json"], env=chain_key_env)
        assert result.exit_code == 0, result.output
        (report,) = json.loads(result.output)["cases"]
        assert (report["case_number"], report["path"], report["does_not_fit"]) == (case.case_number, "same", None)
