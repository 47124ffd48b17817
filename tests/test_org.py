"""The organisation file, tasks for one person, and the identity hidden from the person
complained about (src/engine/org.py; docs/process-design.md, "Tasks for a person and the
organisation file"; docs/operations.md).

The fixture procedure tests/fixtures/org/staff.bpmn: 登记 (hr) -> 隔级上级裁决 (lane manager,
assignTo superior(complainant_id, 2)) -> 审计复核 (lane auditor, assignTo head('audit'),
revealFields complainant) -> end; hideIdentityFrom respondent_id. Its organisation
(org.toml): 赵总 p1 (boss) <- 钱组长 p2 (lead) <- 王五 p9 (no login); 孙审计 p3 (auditor) heads
审计部. Its users (users.toml): hr1 (hr), boss, lead and mgr2 (manager), auditor (auditor).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from complaintflow.engine.errors import NotAllowed, InvalidInput
from complaintflow.engine.models import AccessLog, Event, HumanTask
from complaintflow.engine.org import AssignRule, OrgFileError, Unassignable, load_org
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.cli import cli
from complaintflow.web.users import load_users
from conftest import copy_fixture
from webapp import sign_in, token

INTAKE = {"complainant": "王五", "contact": "13900000000", "complainant_id": "p9", "respondent_id": "p2",
          "content": "加班费未发"}


@pytest.fixture
def org_dir(tmp_path):
    return copy_fixture(tmp_path, "org")


@pytest.fixture
def org(org_dir):
    return load_org(org_dir / "org.toml")


@pytest.fixture
def staff(make_service, org, org_dir):
    service = make_service()
    service._org = org
    service.deploy([org_dir / "staff.bpmn"])
    return service


def events(service, instance_id):
    with service.sessions() as s:
        return s.query(Event).filter(Event.instance_id == instance_id).count()


def only_task(result):
    (task,) = result.open_tasks
    return task


# --- the organisation file --------------------------------------------------------------------

def test_superiors_heads_and_logins_from_the_file(org):
    assert org.superior("p9", 1).name == "钱组长" and org.superior("p9", 2).user == "boss"
    assert org.head("audit").label == "孙审计（p3）"
    assert org.person_of_user("lead").id == "p2" and org.person_of_user("hr1") is None
    with pytest.raises(Unassignable) as no_one:
        org.superior("p2", 2)
    assert no_one.value.reason == "钱组长（p2）的隔级上级不存在"
    assert org.counts() == "3 unit(s), 4 person(s), 3 with a login"


@pytest.mark.parametrize("change, problem", [
    ('[people.p9]\nname = "王五"\nunit = "nowhere"\n', "person 'p9': unit 'nowhere' is not a unit of the file"),
    ('[people.p9]\nname = "王五"\nunit = "team"\nreports_to = "p7"\n',
     "person 'p9': reports_to 'p7' is not a person of the file"),
    ('[units.audit]\nname = "审计部"\nhead = "p8"\n', "unit 'audit': head 'p8' is not a person of the file"),
    ('[people.p1]\nname = "赵总"\nunit = "co"\nuser = "boss"\nreports_to = "p9"\n',
     "'reports_to' goes round in a circle (p1 -> p9 -> p2 -> p1)"),
    ('[units.co]\nname = "公司"\nparent = "team"\n', "unit 'co': 'parent' goes round in a circle (co -> team -> co)"),
    ('[people.p9]\nname = "王五"\nunit = "team"\nuser = "lead"\n',
     "person 'p9': user 'lead' is also the login of person 'p2'"),
])
def test_a_wrong_file_is_refused_naming_the_file_and_the_entry(org_dir, change, problem):
    path = org_dir / "org.toml"
    table = change.split("\n", 1)[0]
    text = path.read_text(encoding="utf-8")
    start = text.index(table)
    end = text.find("\n[", start + 1)
    path.write_text(text[:start] + change + ("" if end < 0 else text[end:]), encoding="utf-8")
    with pytest.raises(OrgFileError) as refused:
        load_org(path)
    assert f"organisation file '{path}'" in str(refused.value)
    assert any(line.endswith(problem) for line in refused.value.problems), refused.value.problems


def test_a_login_the_users_file_does_not_know_is_refused(org_dir):
    with pytest.raises(OrgFileError) as refused:
        load_org(org_dir / "org.toml", known_users={"boss", "lead"})
    assert refused.value.problems == [f"organisation file '{org_dir / 'org.toml'}', person 'p3': user 'auditor' "
                                      "is not in the users file"]


def test_org_check_says_ok_with_counts_or_lists_the_errors_with_exit_1(org_dir, monkeypatch):
    monkeypatch.setenv("COMPLAINTFLOW_USERS_FILE", str(org_dir / "users.toml"))
    ok = CliRunner().invoke(cli, ["org", "check", str(org_dir / "org.toml")])
    assert ok.exit_code == 0, ok.output
    assert ok.output == f"OK: {org_dir / 'org.toml'}: 3 unit(s), 4 person(s), 3 with a login\n"
    (org_dir / "users.toml").write_text((org_dir / "users.toml").read_text(encoding="utf-8")
                                        .replace("[users.auditor]", "[users.auditor2]"), encoding="utf-8")
    bad = CliRunner().invoke(cli, ["org", "check", str(org_dir / "org.toml")])
    assert bad.exit_code == 1
    assert "person 'p3': user 'auditor' is not in the users file" in bad.output
    assert "Traceback" not in bad.output


def test_the_inbox_refuses_to_start_with_a_wrong_file(service, org_dir):
    service._org = lambda: load_org(org_dir / "missing.toml")
    roles = load_roles(org_dir)
    with pytest.raises(OrgFileError, match="missing.toml' does not exist"):
        create_app(service, users=load_users(org_dir / "users.toml", set(roles)), roles=roles, secret_key="t",
                   testing=True)


def test_the_demo_organisation_matches_the_demo_users():
    from complaintflow.engine.org import DEMO_ORG
    from complaintflow.web.users import DEMO_USERS
    demo = load_org(DEMO_ORG, known_users=set(load_users(DEMO_USERS).users))
    assert demo.superior("e020", 2).user == "sales_director" and demo.head("finance_audit").user == "finance_audit"


# --- assignTo ---------------------------------------------------------------------------------

def test_a_task_goes_to_the_superior_two_levels_up_and_to_nobody_else(staff):
    case = staff.start("staff", INTAKE, "hr1")
    task = only_task(case)
    assert (task["task"], task["role"], task["assignee"]) == ("rule", "manager", "boss")
    # in boss's inbox whatever his roles, in no other manager's
    assert [t["task_id"] for t in staff.inbox(roles={"manager"}, user="boss").tasks] == [task["task_id"]]
    assert [t["task_id"] for t in staff.inbox(roles={"hr"}, user="boss").tasks] == [task["task_id"]]
    assert staff.inbox(roles={"manager"}, user="lead").tasks == [] and staff.inbox(roles={"manager"}, user="lead").total == 0
    assert staff.inbox(roles={"manager"}, user="boss").total == 1
    # the role's count in the inbox panel leaves out a task that is one person's
    assert staff.inbox_counts({"manager"})["manager"]["open"] == 0
    assert [t["task_id"] for t in staff.list_tasks(roles={"manager"}, user="boss")] == [task["task_id"]]
    assert staff.list_tasks(roles={"manager"}, user="mgr2") == []
    # only boss may claim or complete it; a refusal changes nothing
    before = events(staff, case.instance_id)
    for act in (lambda: staff.claim_task(task["task_id"], "lead", roles={"manager"}),
                lambda: staff.complete_task(task["task_id"], "lead", {"ruling": "驳回"}, roles={"manager"}),
                lambda: staff.complete_task(task["task_id"], "cli", {"ruling": "驳回"})):
        with pytest.raises(NotAllowed) as refused:
            act()
        assert refused.value.text("zh").startswith("任务「隔级上级裁决」已指派给boss，只有boss本人可以办理；")
    assert events(staff, case.instance_id) == before and staff.get_task(task["task_id"])["claimed_by"] is None
    done = staff.complete_task(task["task_id"], "boss", {"ruling": "责令补发"}, roles={"hr"})
    audit = only_task(done)
    assert (audit["task"], audit["role"], audit["assignee"]) == ("audit", "auditor", "auditor")
    assigned = [e["payload"] for e in staff.history(case.instance_id) if e["kind"] == "task_assigned"]
    assert [(p["task"], p["assignee"], p["person"]) for p in assigned] == [("rule", "boss", "p1"),
                                                                          ("audit", "auditor", "p3")]
    assert staff.replay(case.instance_id).consistent is True


def test_without_such_a_person_the_task_stays_with_its_role_and_the_log_says_why(staff):
    case = staff.start("staff", dict(INTAKE, complainant_id="p2"), "hr1")     # 钱组长 has one superior only
    task = only_task(case)
    assert (task["role"], task["assignee"]) == ("manager", None)
    assert staff.inbox_counts({"manager"})["manager"]["open"] == 1
    for login in ("lead", "mgr2"):
        assert [t["task_id"] for t in staff.inbox(roles={"manager"}, user=login).tasks] == [task["task_id"]]
    (why,) = [e for e in staff.history(case.instance_id) if e["kind"] == "task_assigned"]
    assert why["payload"]["reason"] == "未能指派给隔级上级：钱组长（p2）的隔级上级不存在"
    staff.complete_task(task["task_id"], "mgr2", {"ruling": "调解"}, roles={"manager"})


def test_a_person_without_a_login_leaves_the_task_with_its_role(staff, org):
    org.units["audit"] = org.units["audit"].__class__("audit", "审计部", "co", "p9")     # 王五 has no login
    case = staff.start("staff", INTAKE, "hr1")
    done = staff.complete_task(only_task(case)["task_id"], "boss", {"ruling": "ok"})
    assert only_task(done)["assignee"] is None
    assert [e["payload"].get("reason") for e in staff.history(case.instance_id) if e["kind"] == "task_assigned"][-1] \
        == "未能指派给审计部负责人：王五（p9）没有系统账号"


@pytest.mark.parametrize("value, problem", [
    ("boss(complainant_id)", "property 'assignTo': 'boss(complainant_id)' is not one of superior(FIELD, LEVELS), "
                             "head('UNIT_ID') or head(FIELD), e.g. superior(complainant_id, 2)"),
    ("superior(complainant_id, 0)", "the number of levels up must be 1 to 20, not 0"),
    ("superior(manager_id, 1)", "property 'assignTo' reads 'manager_id', which no form before this task asks for "
                                "(no form, handler result, DMN output or initial data of this process provides it)"),
    ("superior(ruling, 1)", "property 'assignTo' reads 'ruling', which no form before this task asks for (it is a "
                            "field of the form of '隔级上级裁决' (rule), '审计复核' (audit), which does not come before "
                            "this task)"),
    ("head('audti')", "property 'assignTo': unit 'audti' is not a unit of the organisation file"),
])
def test_validate_finds_a_wrong_assign_to_at_its_task(staff, org_dir, value, problem):
    bpmn = org_dir / "staff.bpmn"
    bpmn.write_text(bpmn.read_text(encoding="utf-8").replace('value="superior(complainant_id, 2)"', f'value="{value}"'),
                    encoding="utf-8")
    result = staff.validate([bpmn])
    assert not result.ok
    assert [p.element for p in result.errors] == ["rule"] and problem in result.errors[0].message, result.errors


def test_assign_rules_read():
    assert AssignRule.parse(" superior( complainant_id ,2 ) ") == AssignRule("superior", "complainant_id", levels=2)
    assert AssignRule.parse('head("finance_audit")') == AssignRule("head", None, unit="finance_audit")
    assert AssignRule.parse("head(unit)") == AssignRule("head", "unit")


def test_a_scenario_names_the_assignee(org_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLAINTFLOW_ORG_FILE", str(org_dir / "org.toml"))
    (org_dir / "tests" / "staff").mkdir(parents=True)
    scenario = org_dir / "tests" / "staff" / "assign.yaml"
    intake = json.dumps(INTAKE, ensure_ascii=False)
    scenario.write_text(f"""process: staff
name: 隔级上级
intake:
  at: 2026-05-06T09:00
  user: hr1
  data: {intake}
  expect:
    tasks: {{rule: {{role: manager, assignee: boss}}}}
steps:
  - complete: rule
    user: boss
    data: {{ruling: 补发}}
    expect:
      tasks: {{audit: {{assignee: auditor}}}}
""", encoding="utf-8")
    ok = CliRunner().invoke(cli, ["test", str(org_dir / "tests")], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    scenario.write_text(scenario.read_text(encoding="utf-8").replace("assignee: auditor", "assignee: boss"),
                        encoding="utf-8")
    bad = CliRunner().invoke(cli, ["test", str(org_dir / "tests")], catch_exceptions=False)
    assert bad.exit_code != 0
    assert "expected task 'audit' (审计复核) assigned to 'boss', it is assigned to 'auditor'" in bad.output


def test_the_cli_lists_and_refuses_as_the_inbox_does(staff, org_dir, tmp_path, monkeypatch, chain_key_env):
    case = staff.start("staff", INTAKE, "hr1")
    task_id = only_task(case)["task_id"]
    monkeypatch.setenv("COMPLAINTFLOW_USERS_FILE", str(org_dir / "users.toml"))
    monkeypatch.setenv("COMPLAINTFLOW_ORG_FILE", str(org_dir / "org.toml"))
    base = ["--db", str(staff.engine.url), "--now", "2026-05-06T10:00"]
    runner = CliRunner(env=chain_key_env)
    mine = runner.invoke(cli, base + ["tasks", "--user", "boss"])
    assert mine.exit_code == 0 and task_id in mine.output and "for boss" in mine.output, mine.output
    assert task_id not in runner.invoke(cli, base + ["tasks", "--user", "lead"]).output
    refused = runner.invoke(cli, base + ["complete", task_id, "--user", "lead", "--data", '{"ruling": "x"}'])
    assert refused.exit_code == 6
    assert refused.output == "error: task '隔级上级裁决' is assigned to boss; only they can claim or complete it, not lead\n"
    done = runner.invoke(cli, base + ["complete", task_id, "--user", "boss", "--data", '{"ruling": "x"}'])
    assert done.exit_code == 0, done.output


# --- x-org-person -----------------------------------------------------------------------------

def test_a_person_field_takes_only_people_of_the_file(staff):
    with pytest.raises(InvalidInput) as refused:
        staff.start("staff", dict(INTAKE, respondent_id="e999"), "hr1")
    assert refused.value.field_texts("zh") == {"respondent_id": ["「被投诉人工号」不是组织架构中的人员：e999"]}
    assert staff.list_cases() == []


# --- the web inbox ------------------------------------------------------------------------------

@pytest.fixture
def app(staff, org_dir):
    roles = load_roles(org_dir)
    return create_app(staff, users=load_users(org_dir / "users.toml", set(roles)), roles=roles, secret_key="test",
                      testing=True)


def test_the_inbox_marks_the_task_and_only_the_assignee_may_open_or_complete_it(app, staff):
    case = staff.start("staff", INTAKE, "hr1")
    task_id = only_task(case)["task_id"]
    boss = sign_in(app.test_client(), "boss")
    page = boss.get("/").get_data(as_text=True)
    assert task_id in page and "指派给我" in page
    lead = sign_in(app.test_client(), "lead")
    assert task_id not in lead.get("/").get_data(as_text=True)
    refused = lead.get(f"/tasks/{task_id}")
    assert refused.status_code == 403
    assert "任务「隔级上级裁决」已指派给赵总，只有赵总本人可以办理；钱组长不能认领或办理。" in refused.get_data(as_text=True)
    posted = lead.post(f"/tasks/{task_id}", data={"ruling": "驳回", "csrf_token": token(lead, "/")})
    assert posted.status_code == 403 and staff.get_task(task_id)["status"] == "open"
    claimed = lead.post(f"/tasks/{task_id}/claim", data={"csrf_token": token(lead, "/")})
    assert claimed.status_code == 403 and staff.get_task(task_id)["claimed_by"] is None
    with staff.sessions() as s:
        refusals = s.query(AccessLog).filter(AccessLog.user == "lead", AccessLog.allowed.is_(False)).all()
    assert {r.action for r in refusals} == {"view_task", "complete_task", "claim_task"}
    hr = sign_in(app.test_client(), "hr1")               # neither role nor person: as if it did not exist
    assert hr.get(f"/tasks/{task_id}").status_code == 404
    form = boss.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "指派给：赵总" in form
    done = boss.post(f"/tasks/{task_id}", data={"ruling": "补发", "csrf_token": token(boss, f"/tasks/{task_id}")})
    assert done.status_code == 303
    with staff.sessions() as s:
        assert s.get(HumanTask, task_id).completed_by == "boss"


def test_the_task_and_case_pages_say_why_a_task_was_not_assigned(app, staff):
    case = staff.start("staff", dict(INTAKE, complainant_id="p2"), "hr1")
    task_id = only_task(case)["task_id"]
    mgr2 = sign_in(app.test_client(), "mgr2")
    reason = "未能指派给隔级上级：钱组长（p2）的隔级上级不存在"
    assert reason in mgr2.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert reason in mgr2.get(f"/cases/{case.instance_id}").get_data(as_text=True)


def test_the_api_gives_a_person_task_to_no_token(app, staff):
    from complaintflow.engine.tokens import create_token
    case = staff.start("staff", INTAKE, "hr1")
    task_id = only_task(case)["task_id"]
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {create_token(staff, 'managers', ['manager'])}"
    assert client.get("/api/v1/tasks").get_json()["tasks"] == []
    for path, body in ((f"/api/v1/tasks/{task_id}", None), (f"/api/v1/tasks/{task_id}/claim", {}),
                       (f"/api/v1/tasks/{task_id}/complete", {"data": {"ruling": "x"}})):
        response = client.get(path) if body is None else client.post(path, json=body)
        assert response.status_code == 403, (path, response.get_data(as_text=True))
        assert response.get_json()["error"]["code"] == "task_assigned"
        # why, and what to do instead: not a generic refusal
        assert response.get_json()["error"]["message"] == (
            "task '隔级上级裁决' is assigned to 赵总 in person. An API token acts in its roles, never for a person, "
            "so it may not read, claim or complete a task given to one person; 赵总 completes it in the inbox")
    zh = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {"ruling": "x"}},
                     headers={"Accept-Language": "zh"}).get_json()["error"]["message"]
    assert zh.startswith("任务「隔级上级裁决」已指派给赵总本人。API 令牌按角色办理、不代表任何个人") and "请赵总在收件箱中办理" in zh
    assert staff.get_task(task_id)["status"] == "open" and staff.get_task(task_id)["claimed_by"] is None
    with staff.sessions() as s:          # each refusal is in the access log under the token's actor
        refused = s.query(AccessLog).filter(AccessLog.user == "api:managers", AccessLog.allowed.is_(False)).all()
    assert {r.action for r in refused} >= {"view_task", "claim_task", "complete_task"}
    # the same task is the person's own in the inbox: the API never stood in the way
    boss = sign_in(app.test_client(), "boss")
    assert boss.post(f"/tasks/{task_id}", data={"ruling": "补发", "csrf_token": token(boss, f"/tasks/{task_id}")}
                     ).status_code == 303


# --- the identity hidden from the person complained about ---------------------------------------

def read(response) -> str:
    """A page's text, or a JSON answer's with its Chinese unescaped."""
    if response.is_json:
        return json.dumps(response.get_json(), ensure_ascii=False)
    return response.get_data(as_text=True)


def test_the_person_complained_about_never_sees_who_complained(app, staff):
    """钱组长 (lead) is complained about; his role (manager) sees identities, yet every page he
    can read (the case with its history, the dossier, the inbox's JSON) masks 王五 and the
    contact; 赵总 (boss), same role, sees them."""
    case = staff.start("staff", INTAKE, "hr1")
    ref = case.instance_id
    lead, boss = sign_in(app.test_client(), "lead"), sign_in(app.test_client(), "boss")
    for path in (f"/cases/{ref}", f"/cases/{ref}/dossier.html", f"/api/cases/{ref}", f"/api/cases/{ref}/history"):
        hidden, shown = lead.get(path), boss.get(path)
        assert hidden.status_code == 200 and shown.status_code == 200, path
        assert "王五" not in read(hidden) and "13900000000" not in read(hidden), path
        assert "王五" in read(shown) and "13900000000" in read(shown), path


def test_a_task_revealing_the_identity_reveals_nothing_to_the_person_complained_about(app, staff):
    """审计复核 reveals 投诉人 to the auditor doing it — unless the auditor is the one complained about."""
    for respondent, visible in (("p9", True), ("p3", False)):
        case = staff.start("staff", dict(INTAKE, respondent_id=respondent), "hr1")
        audit = only_task(staff.complete_task(only_task(case)["task_id"], "boss", {"ruling": "复核"}))
        page = sign_in(app.test_client(), "auditor").get(f"/tasks/{audit['task_id']}").get_data(as_text=True)
        assert ("王五" in page) is visible, respondent


def test_the_cli_dossier_shows_the_identity_to_anyone_but_the_person_complained_about(staff, org_dir, tmp_path,
                                                                                       monkeypatch, chain_key_env):
    case = staff.start("staff", INTAKE, "hr1")
    monkeypatch.setenv("COMPLAINTFLOW_USERS_FILE", str(org_dir / "users.toml"))
    monkeypatch.setenv("COMPLAINTFLOW_ORG_FILE", str(org_dir / "org.toml"))
    runner = CliRunner(env=chain_key_env)
    base = ["--db", str(staff.engine.url), "export", case.instance_id, "--no-verify", "--show-identity"]
    refused = runner.invoke(cli, base + ["--html", str(tmp_path / "lead.html"), "--user", "lead"])
    assert refused.exit_code == 6, refused.output
    assert "is hidden from lead, the person complained about" in refused.output
    assert not (tmp_path / "lead.html").exists()
    shown = runner.invoke(cli, base + ["--html", str(tmp_path / "boss.html"), "--user", "boss"])
    assert shown.exit_code == 0, shown.output
    assert "王五" in (tmp_path / "boss.html").read_text(encoding="utf-8")


def test_serve_refuses_to_start_with_a_wrong_organisation_file(org_dir, tmp_path, chain_key_env):
    (org_dir / "org.toml").write_text('[units.co]\nname = "公司"\nhead = "p404"\n\n[people.p1]\nname = "赵总"\nunit = "co"\n',
                                      encoding="utf-8")
    env = dict(chain_key_env, COMPLAINTFLOW_ORG_FILE=str(org_dir / "org.toml"))
    result = CliRunner(env=env).invoke(cli, ["--db", f"sqlite:///{tmp_path / 'serve.sqlite3'}", "serve", "--no-deploy"])
    assert result.exit_code == 2, result.output
    assert result.output == (f"error: organisation file '{org_dir / 'org.toml'}', unit 'co': head 'p404' is not a "
                             "person of the file\n")


def test_the_intake_form_offers_the_people_of_the_file(app, staff):
    hr = sign_in(app.test_client(), "hr1")
    page = hr.get("/new/staff").get_data(as_text=True)
    assert "钱组长（p2） · 一组" in page and "孙审计（p3） · 审计部" in page
    form = dict(INTAKE, csrf_token=token(hr, "/new/staff"))
    refused = hr.post("/new/staff", data=dict(form, respondent_id="e999"))
    assert refused.status_code == 400 and staff.list_cases() == []
    done = hr.post("/new/staff", data=form)
    assert done.status_code == 303, done.get_data(as_text=True)
    (case,) = staff.list_cases()
    assert staff.case_detail(case["instance_id"])["data"]["respondent_id"] == "p2"
