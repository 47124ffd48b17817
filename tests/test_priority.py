"""The case's priority (issue 14: direct and widespread complaints first): case data
`priority` (1 急, 2 优先, 3 normal) is kept on the case's open tasks; the inbox page, the
JSON API and the CLI list P1 before everything else whatever the due time, and mark it; a
form may not submit another value (a Chinese field error, nothing stored)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from complaintflow.engine.errors import InvalidInput
from complaintflow.engine.tokens import create_token
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES, open_task
from webapp import INTAKE, sign_in

PRIORITY_FIELD = {"type": "integer", "title": "优先级",
                  "oneOf": [{"const": 1, "title": "急（直接投诉、涉及面广）"}, {"const": 2, "title": "优先"},
                            {"const": 3, "title": "一般"}]}


@pytest.fixture
def designed(tmp_path):
    """enterprise_customer as a designer changed it: the preliminary check sets the priority."""
    target = tmp_path / "processes"
    (target / "forms").mkdir(parents=True)
    shutil.copy(PROCESSES / "enterprise_customer.bpmn", target)
    shutil.copy(PROCESSES / "roles.json", target)
    shutil.copytree(PROCESSES / "forms" / "enterprise_customer", target / "forms" / "enterprise_customer")
    form = target / "forms" / "enterprise_customer" / "preliminary_check.json"
    schema = json.loads(form.read_text(encoding="utf-8"))
    schema["properties"]["priority"] = PRIORITY_FIELD
    form.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    return target


@pytest.fixture
def ec(service, designed):
    service.deploy([designed / "enterprise_customer.bpmn"])
    return service


def accepted(ec, promised, **check):
    case = ec.start("enterprise_customer", dict(INTAKE, promised_resolution_at=promised), "li")
    task = open_task(ec, case.instance_id, "preliminary_check")
    ec.complete_task(task["task_id"], "li", {"outcome": "accepted", "severity": "general", "department": "品质部",
                                             **check})
    return case


@pytest.fixture
def three(ec):
    """Three department tasks: a normal one due soonest, a P2 due later, a P1 due latest."""
    soon = accepted(ec, "2026-05-07T12:00:00+08:00")
    p2 = accepted(ec, "2026-05-11T12:00:00+08:00", priority=2)
    p1 = accepted(ec, "2026-05-12T17:00:00+08:00", priority=1)
    return p1, p2, soon


def test_a_p1_task_due_later_comes_before_a_p3_task_due_sooner(ec, three):
    p1, p2, soon = three
    order = [p1.case_number, p2.case_number, soon.case_number]
    page = ec.inbox(roles={"department"})
    assert [t["case_number"] for t in page.tasks] == order
    assert [t["priority"] for t in page.tasks] == [1, 2, 3]
    assert [t["case_number"] for t in ec.list_tasks(role="department")] == order
    assert [t["case_number"] for t in ec.list_tasks(roles={"department", "reception"})] == order
    assert open_task(ec, p1.instance_id, "investigate")["priority"] == 1     # the case page's open tasks too
    # a page of one: the P1 task is page 1 even though two tasks are due before it
    assert [t["case_number"] for t in ec.inbox(roles={"department"}, limit=1).tasks] == [p1.case_number]


def test_the_priority_follows_the_case_data_to_the_next_tasks(ec, three):
    p1, _, _ = three
    task = open_task(ec, p1.instance_id, "investigate")
    done = ec.complete_task(task["task_id"], "zhao", {"findings": "密封圈老化", "responsible_party": "company"})
    assert [(t["task"], t["priority"]) for t in done.open_tasks] == [("agree_solution", 1)]
    case = ec.start("enterprise_customer", INTAKE, "li")             # not yet judged: normal
    assert open_task(ec, case.instance_id, "preliminary_check")["priority"] == 3


@pytest.mark.parametrize("bad, said", [
    (5, "「优先级」只能从所列选项中选择（急（直接投诉、涉及面广）、优先、一般）"),     # the form's own choices
    ("1", "「优先级」应为整数"), (True, "「优先级」应为整数"), (None, "「优先级」应为整数")])
def test_a_priority_other_than_1_2_3_is_a_form_error_and_nothing_is_stored(ec, bad, said):
    case = ec.start("enterprise_customer", INTAKE, "li")
    task = open_task(ec, case.instance_id, "preliminary_check")
    before = (ec.show(case.instance_id), len(ec.history(case.instance_id)))
    with pytest.raises(InvalidInput) as err:
        ec.complete_task(task["task_id"], "li", {"outcome": "accepted", "severity": "general",
                                                 "department": "品质部", "priority": bad})
    assert said in err.value.field_texts("zh")["priority"]
    assert (ec.show(case.instance_id), len(ec.history(case.instance_id))) == before


def test_a_form_declaring_a_looser_priority_field_is_still_held_to_1_2_3(service, designed):
    """A designer declared a plain whole number: the engine's own rule still holds."""
    form = designed / "forms" / "enterprise_customer" / "preliminary_check.json"
    schema = json.loads(form.read_text(encoding="utf-8"))
    schema["properties"]["priority"] = {"type": "integer", "title": "优先级", "minimum": 1}
    form.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    service.deploy([designed / "enterprise_customer.bpmn"])
    case = service.start("enterprise_customer", INTAKE, "li")
    task = open_task(service, case.instance_id, "preliminary_check")
    with pytest.raises(InvalidInput) as err:
        service.complete_task(task["task_id"], "li", {"outcome": "accepted", "severity": "general",
                                                      "department": "品质部", "priority": 4})
    assert err.value.field_texts("zh")["priority"] == ["「优先级」只能为 1（急）、2（优先）或 3（一般），现为 4"]
    assert open_task(service, case.instance_id, "preliminary_check")["task_id"] == task["task_id"]


def test_a_form_without_the_field_cannot_smuggle_a_priority_in(service, designed):
    """An intake form that does not declare the field but allows other fields: refused by name."""
    form = designed / "forms" / "enterprise_customer" / "intake.json"
    schema = json.loads(form.read_text(encoding="utf-8"))
    schema.pop("additionalProperties", None)
    form.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    service.deploy([designed / "enterprise_customer.bpmn"])
    with pytest.raises(InvalidInput) as err:
        service.start("enterprise_customer", dict(INTAKE, priority=9), "li")
    assert err.value.field_texts("zh")["priority"] == ["「priority」只能为 1（急）、2（优先）或 3（一般），现为 9"]
    assert service.list_cases() == []
    case = service.start("enterprise_customer", dict(INTAKE, priority=2), "li")     # 1, 2, 3 are fine
    assert open_task(service, case.instance_id, "preliminary_check")["priority"] == 2


def test_the_inbox_page_and_the_api_put_p1_first_and_mark_it(service, designed, ec, three):
    p1, p2, soon = three
    roles = load_roles(designed)
    app = create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="test", testing=True)
    html = sign_in(app.test_client(), "department").get("/").get_data(as_text=True)
    rows = re.findall(r'<tr class="[^"]*" data-task="[^"]+">(.*?)</tr>', html, re.S)
    shown = [re.search(r">([A-Z]+-\d{4}-\d+)</a>", row).group(1) for row in rows]
    assert shown == [p1.case_number, p2.case_number, soon.case_number]
    assert re.search(r'<span class="badge badge-p1" title="[^"]*直接投诉[^"]*">急</span>', rows[0])
    assert '<span class="badge badge-p2"' in rows[1] and ">优先</span>" in rows[1]
    assert "badge-p" not in rows[2]                                      # a normal task carries no mark
    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {create_token(service, 'hotline', ['department'])}"
    listed = api.get("/api/v1/tasks").get_json()["tasks"]
    assert [(t["case_number"], t["priority"]) for t in listed] == [(p1.case_number, 1), (p2.case_number, 2),
                                                                    (soon.case_number, 3)]


def test_the_cli_lists_p1_first_and_marks_it(ec, three, db_url, chain_key_env):
    from click.testing import CliRunner
    from complaintflow.web.cli import cli
    p1, p2, soon = three
    runner = CliRunner(env=chain_key_env)
    out = runner.invoke(cli, ["--db", db_url, "--now", "2026-05-06T10:00", "tasks", "--role", "department"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert [next(n for n in (p1, p2, soon) if n.case_number in line).case_number for line in lines] == [
        p1.case_number, p2.case_number, soon.case_number]
    assert "  P1  " in lines[0] and "  P2  " in lines[1] and "  P3" not in lines[2]
    as_json = runner.invoke(cli, ["--db", db_url, "--now", "2026-05-06T10:00", "tasks", "--role", "department",
                                  "--json"])
    assert [t["priority"] for t in json.loads(as_json.output)] == [1, 2, 3]
