"""A user task granting sight of the identity fields its work needs (`revealFields`,
src/engine/confidentiality.py; docs/process-design.md, "Confidential fields")."""

from __future__ import annotations

import json

from complaintflow.engine.confidentiality import reveal_problems, revealed_fields, task_reveals
from conftest import PROCESSES

BPMN = (PROCESSES / "enterprise_customer.bpmn").read_text(encoding="utf-8")
FORMS = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in (PROCESSES / "forms" / "enterprise_customer").glob("*.json")}
IDENTITY = {"complainant", "contact"}


def test_the_shipped_negotiation_task_reveals_name_and_contact_and_nothing_else_does():
    assert task_reveals(BPMN, "agree_solution") == {"complainant", "contact"}
    assert task_reveals(BPMN, "investigate") == set() and task_reveals(BPMN, "feedback") == set()
    assert reveal_problems(BPMN, FORMS) == []


def test_only_while_open_and_never_an_anonymous_reporter():
    task = {"task": "agree_solution", "status": "open"}
    assert revealed_fields(BPMN, task, {}, IDENTITY) == {"complainant", "contact"}
    assert revealed_fields(BPMN, task, {}, {"complainant"}) == {"complainant"}       # only identity fields
    assert revealed_fields(BPMN, dict(task, status="completed"), {}, IDENTITY) == set()
    assert revealed_fields(BPMN, task, {"anonymous": True}, IDENTITY) == set()


def test_mistakes_a_designer_can_make_are_found():
    wrong = (BPMN.replace('value="complainant,contact"', 'value="complainant,contcat"')
             .replace('<spiffworkflow:property name="initialData"',
                      '<spiffworkflow:property name="revealFields" value="" />'
                      '<spiffworkflow:property name="initialData"'))
    problems = reveal_problems(wrong, FORMS)
    assert ("agree_solution", "property 'revealFields' names 'contcat', which no form of this process marks "
            "\"x-identity\": true; identity fields: complainant, contact") in problems
    assert [m for e, m in problems if e == "receive"] == [
        "property 'revealFields' is only read on a user task, not on a startEvent"]
    empty = BPMN.replace('value="complainant,contact"', 'value=" , "')
    assert reveal_problems(empty, FORMS) == [
        ("agree_solution", "property 'revealFields' names no field; list identity fields, e.g. \"complainant,contact\"")]
    assert revealed_fields(wrong, {"task": "agree_solution", "status": "open"}, {}, IDENTITY) == {"complainant"}


def test_validate_refuses_a_misspelt_reveal_field_at_the_task_and_its_line(tmp_path, chain_key_env):
    import shutil

    from click.testing import CliRunner

    from complaintflow.web.cli import cli
    copy = tmp_path / "processes"
    copy.mkdir()
    shutil.copy(PROCESSES / "roles.json", copy)
    shutil.copytree(PROCESSES / "forms" / "enterprise_customer", copy / "forms" / "enterprise_customer")
    bpmn = copy / "enterprise_customer.bpmn"
    bpmn.write_text(BPMN.replace('value="complainant,contact"', 'value="complainant,contcat"'), encoding="utf-8")
    line = next(n for n, text in enumerate(BPMN.splitlines(), 1) if 'value="complainant,contact"' in text)
    task_line = max(n for n, text in enumerate(BPMN.splitlines()[:line], 1) if 'id="agree_solution"' in text)
    # the tests' chain key: the command's service would otherwise make var/chain_key in the working directory
    result = CliRunner(env=chain_key_env).invoke(cli, ["--db", f"sqlite:///{tmp_path / 'x.sqlite3'}", "validate",
                                                       str(copy)])
    assert result.exit_code == 4, result.output
    assert result.output.splitlines()[0] == (
        f"{bpmn}:{task_line}: element 'agree_solution' (协商解决方案): property 'revealFields' names 'contcat', "
        "which no form of this process marks \"x-identity\": true; identity fields: complainant, contact")


def test_a_task_a_colleague_has_claimed_reveals_nothing_to_the_others(service, tmp_path):
    """The identity goes to the person holding the task: once 赵处理 has claimed 协商解决方案,
    a second department user opening it sees （保密） and nothing is logged for them."""
    from werkzeug.security import generate_password_hash

    from complaintflow.engine.definitions import load_roles
    from complaintflow.web.app import create_app
    from complaintflow.web.users import load_users
    from conftest import open_task
    from webapp import sign_in
    service.deploy([PROCESSES / "enterprise_customer.bpmn"])
    secret = generate_password_hash("demo")
    users = tmp_path / "users.toml"
    users.write_text("".join(f'[users.{login}]\nname = "{name}"\nroles = ["{role}"]\npassword_hash = "{secret}"\n\n'
                             for login, name, role in [("reception", "李接待", "reception"),
                                                       ("zhao", "赵处理", "department"),
                                                       ("qian", "钱处理", "department")]), encoding="utf-8")
    roles = load_roles(PROCESSES)
    app = create_app(service, users=load_users(users, set(roles)), roles=roles, secret_key="test", testing=True)
    case = service.start("enterprise_customer", {"channel": "hotline", "complainant": "王女士", "contact": "13800000000",
                                                 "category": "product_quality", "content": "新买的电水壶漏水",
                                                 "promised_resolution_at": "2026-05-08T17:00:00+08:00"}, "reception")
    service.complete_task(open_task(service, case.instance_id, "preliminary_check")["task_id"], "reception",
                          {"outcome": "accepted", "severity": "general", "department": "品质部"})
    service.complete_task(open_task(service, case.instance_id, "investigate")["task_id"], "zhao",
                          {"findings": "密封圈缺陷", "responsible_party": "company"})
    task_id = open_task(service, case.instance_id, "agree_solution")["task_id"]
    service.claim_task(task_id, "zhao")

    other = sign_in(app.test_client(), "qian").get(f"/tasks/{task_id}").get_data(as_text=True)
    holder = sign_in(app.test_client(), "zhao").get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "王女士" not in other and "13800000000" not in other and "（保密）" in other
    assert "王女士" in holder and "13800000000" in holder
    assert [e["user"] for e in service.access_log() if e["action"] == "reveal_identity"] == ["zhao"]
