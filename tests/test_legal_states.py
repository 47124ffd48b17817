"""Legal states are read by staff in Chinese: their names come from processes/legal_states.json,
which `validate` checks against every state a procedure sets, and travel with the deployed version."""

from __future__ import annotations

import json
import shutil

import pytest

from complaintflow.engine.errors import ValidationFailed
from complaintflow.engine.legal_states import possible_states
from complaintflow.web.dossier import build
from conftest import PROCESSES
from test_tourism import INTAKE as TOURISM_INTAKE, REVIEW_OK
from webapp import app, as_user, svc  # noqa: F401 (fixtures)


def tourism_copy(tmp_path, vocabulary=None, bpmn_edit=None):
    folder = tmp_path / "processes"
    (folder / "forms").mkdir(parents=True)
    for name in ("roles.json", "tourism_admissibility.dmn"):
        shutil.copy(PROCESSES / name, folder)
    for forms in ("tourism", "common"):
        shutil.copytree(PROCESSES / "forms" / forms, folder / "forms" / forms)
    names = json.loads((PROCESSES / "legal_states.json").read_text(encoding="utf-8"))
    (folder / "legal_states.json").write_text(json.dumps(vocabulary(names) if vocabulary else names,
                                                         ensure_ascii=False), encoding="utf-8")
    text = (PROCESSES / "tourism.bpmn").read_text(encoding="utf-8")
    (folder / "tourism.bpmn").write_text(bpmn_edit(text) if bpmn_edit else text, encoding="utf-8")
    return folder / "tourism.bpmn"


def refused_case(service):
    """A tourism complaint made more than 90 days after the contract ended: 不予受理."""
    case = service.start("tourism", dict(TOURISM_INTAKE, received_at=service.clock.now().isoformat(),
                                         contract_end_date="2026-01-05"), "registrar_chen")
    task = next(t for t in service.list_tasks(instance_id=case.instance_id) if t["task"] == "review_admissibility")
    service.complete_task(task["task_id"], "staff", REVIEW_OK)
    assert service.show(case.instance_id)["legal_state"] == "not_accepted"
    return case


def test_the_case_page_the_history_and_the_dossier_name_the_state_in_chinese(as_user, svc):
    svc.deploy([PROCESSES / "tourism.bpmn"])
    case = refused_case(svc)
    page = as_user("tourism_authority").get(f"/cases/{case.case_number}").get_data(as_text=True)
    assert "法律状态：不予受理" in page and "法律状态：not_accepted" not in page
    dossier = build(svc, case.instance_id, may_see_identity=True, exported_by="reviewer", verify=False)
    assert dossier["legal_state"] == "不予受理"
    assert "案件法律状态记为「不予受理」" in json.dumps(dossier["history"], ensure_ascii=False)


def test_a_state_without_a_name_is_refused_with_its_line_and_nothing_is_deployed(tmp_path, service):
    bpmn = tourism_copy(tmp_path, bpmn_edit=lambda t: t.replace('value=\'"settled"\'', 'value=\'"setled"\''))
    problems = [str(p) for p in service.validate([bpmn]).problems]
    (line,) = [p for p in problems if "legal state" in p]
    assert "tourism.bpmn:" in line and "legal state 'setled' has no name for staff: add it to legal_states.json" in line
    with pytest.raises(ValidationFailed):
        service.deploy([bpmn])
    assert service.processes() == []


def test_a_vocabulary_entry_without_a_chinese_name_is_refused(tmp_path, service):
    bpmn = tourism_copy(tmp_path, vocabulary=lambda names: {**names, "settled": {"en": "Settled"}})
    problems = [str(p) for p in service.validate([bpmn]).problems]
    assert any("state 'settled' needs a Chinese name" in p for p in problems), problems


def test_renaming_a_state_the_procedure_uses_makes_a_new_version_and_an_unused_one_does_not(tmp_path, service):
    service.deploy([tourism_copy(tmp_path / "v1")])
    unused = tourism_copy(tmp_path / "v2", vocabulary=lambda n: {**n, "case_opened": {"zh": "已立案", "en": "Opened"}})
    assert [r.created for r in service.deploy([unused])] == [False]
    renamed = tourism_copy(tmp_path / "v3", vocabulary=lambda n: {**n, "settled": {"zh": "双方和解", "en": "Settled"}})
    (result,) = service.deploy([renamed])
    assert result.created and result.version == 2


@pytest.mark.parametrize("expression, literals, prefixes, from_data", [
    ('"withdrawn"', {"withdrawn"}, set(), False),
    ('"substantiated" if finding == "yes" else "not_substantiated"', {"substantiated", "not_substantiated"}, set(), False),
    ('f"decision_{ruling_effect}"', set(), {"decision_"}, False),
    ("outcome_state", set(), set(), True),
])
def test_the_states_an_expression_can_set_are_the_values_it_returns(expression, literals, prefixes, from_data):
    # the comparison's "yes" is not a state; a variable's value is known only when the case runs
    assert possible_states(expression) == (literals, prefixes, from_data)
