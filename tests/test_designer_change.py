"""A process designer changes a time limit in a shipped procedure by editing its BPMN only:
`validate`, then `deploy` makes a new version; new cases follow the new limit, running cases
keep the limit they started with (and their tasks and timers stay as they were)."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from complaintflow.web.cli import cli
from conftest import PROCESSES, open_task

INTAKE = {"channel": "phone", "received_at": "2026-04-30T09:00:00+08:00", "complainant": "李先生",
          "contact": "13700000000", "insured_id": "110101195001011234", "respondent": "某定点药店",
          "content": "多收个人自付部分费用", "request": "退还多收的费用"}
LIMIT = '<spiffworkflow:parameter id="amount" type="int" value="10" />'


def reply_limit(service, case):
    return next(d for d in service.show(case.instance_id)["deadlines"] if d["name"] == "reply")


def test_a_limit_changed_in_the_xml_only_applies_to_new_cases_and_running_ones_keep_theirs(service, tmp_path,
                                                                                                chain_key_env):
    copy = tmp_path / "processes"
    copy.mkdir()
    shutil.copy(PROCESSES / "medical_insurance.bpmn", copy)
    shutil.copy(PROCESSES / "roles.json", copy)
    shutil.copytree(PROCESSES / "forms" / "medical_insurance", copy / "forms" / "medical_insurance")
    (v1,) = service.deploy([copy])
    running = service.start("medical_insurance", INTAKE, "yb_wang")
    # received Thu 04-30; 10 working days: 05-06, 07, 08, 09 (make-up Saturday), 11, 12, 13, 14, 15, 18
    assert reply_limit(service, running)["last_day"] == "2026-05-18"

    bpmn = copy / "medical_insurance.bpmn"
    text = bpmn.read_text(encoding="utf-8")
    assert text.count(LIMIT) == 1
    bpmn.write_text(text.replace(LIMIT, LIMIT.replace('"10"', '"15"')), encoding="utf-8")
    checked = CliRunner().invoke(cli, ["--db", str(service.engine.url), "validate", str(copy)], env=chain_key_env)
    assert checked.exit_code == 0, checked.output
    (v2,) = service.deploy([copy])
    assert (v1.version, v2.version, v2.created) == (1, 2, True)

    new = service.start("medical_insurance", INTAKE, "yb_wang")
    # 15 working days: ... 05-18, then 19, 20, 21, 22, 25
    assert reply_limit(service, new)["last_day"] == "2026-05-25"
    assert (service.show(new.instance_id)["version"], service.show(running.instance_id)["version"]) == (2, 1)
    assert reply_limit(service, running)["last_day"] == "2026-05-18"        # unchanged
    # the running case goes on under version 1: its review task is still due on the old day
    assert open_task(service, running.instance_id, "preliminary_review")["due"] == "2026-05-18T16:00:00+00:00"
    assert open_task(service, new.instance_id, "preliminary_review")["due"] == "2026-05-25T16:00:00+00:00"
