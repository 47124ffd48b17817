"""Messages from outside, recorded by staff (issue 13): a withdrawal (撤回), a supplement (补正),
an outside body's ruling. The fixture process tests/fixtures/messages waits for a withdrawal
(interrupting boundary event in no lane: the registering role records it) and a supplement
(non-interrupting, reception lane) while the case is handled, then for a ruling (intermediate
catch event, manager lane); its forms are the shared ones of processes/forms/common/."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from complaintflow.engine.errors import Conflict, InvalidInput, NotAllowed
from complaintflow.engine.models import Event, Instance
from complaintflow.engine.review.history import readable_history
from complaintflow.engine.tokens import create_token
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.cli import cli
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import FIXTURES, PROCESSES, open_task
from webapp import sign_in, token

WITHDRAWAL = {"withdrawn_at": "2026-05-06T08:30:00+08:00", "withdrawal_way": "phone",
              "withdrawal_reason": "已与商家协商解决"}
SUPPLEMENT = {"supplemented_at": "2026-05-06T08:45:00+08:00", "supplement_materials": "购物小票照片"}
RULING = {"ruling_body": "县市场监督管理局", "ruling_received_at": "2026-05-06T08:50:00+08:00",
          "ruling_outcome": "责令商家退款"}


def message_process(tmp_path):
    """The fixture process with the shared message forms beside it, as a procedure has them."""
    target = tmp_path / "messages"
    shutil.copytree(FIXTURES / "messages", target)
    shutil.copytree(PROCESSES / "forms" / "common", target / "forms" / "common")
    return target


@pytest.fixture
def msvc(service, tmp_path, switch):
    switch.fail = False                      # the withdrawal's closing step (test.flaky) answers
    service.deploy([message_process(tmp_path)])
    return service


def start(svc):
    return svc.start("msgcase", {"subject": "发票开错"}, "reception")


def stored(svc, instance_id):
    """What a refused action must leave as it was: the case row's version and its events."""
    with svc.sessions() as s:
        version = s.get(Instance, instance_id).row_version
        events = s.execute(select(func.count()).select_from(Event).where(Event.instance_id == instance_id)).scalar()
    return version, events


# --- the engine --------------------------------------------------------------------------------

def test_a_case_lists_the_messages_it_waits_for_with_their_forms_and_who_may_record_them(msvc, clock):
    case = start(msvc)
    assert msvc.awaited_messages(case.case_number) == [
        {"message": "withdrawal", "element": "withdrawn", "name": "投诉人撤回投诉", "form": "common/withdrawal.json",
         "roles": ["reception"], "interrupting": True},       # in no lane: the registering role
        {"message": "supplement", "element": "supplemented", "name": "投诉人补正材料",
         "form": "common/supplement.json", "roles": ["reception"], "interrupting": False}]

    msvc.send_message(case.instance_id, "supplement", SUPPLEMENT, "reception", roles={"reception"})
    assert [m["message"] for m in msvc.awaited_messages(case.instance_id)] == ["withdrawal"]
    assert [t["task"] for t in msvc.list_tasks(instance_id=case.instance_id)] == ["handle"]   # not interrupted

    msvc.complete_task(open_task(msvc, case.instance_id, "handle")["task_id"], "reception",
                       {"handling_note": "已转市场监管局"})
    (ruling,) = msvc.awaited_messages(case.instance_id)
    assert (ruling["message"], ruling["name"], ruling["roles"]) == ("outside_ruling", "收到外部机构决定", ["manager"])


def test_a_withdrawal_merges_its_form_into_the_case_ends_the_handling_and_replays(msvc, clock):
    case = start(msvc)
    done = msvc.send_message(case.instance_id, "withdrawal", WITHDRAWAL, "reception", roles={"reception"})
    assert done.status == "completed" and done.open_tasks == []
    detail = msvc.case_detail(case.instance_id)
    assert detail["data"]["withdrawal_reason"] == "已与商家协商解决"
    assert detail["data"]["withdrawal_closed"] == {"verdict_seen": "phone"}   # the next step read the form
    assert detail["awaited"] == [] and msvc.awaited_messages(case.instance_id) == []
    (driver,) = [e for e in msvc.history(case.instance_id) if e["kind"] == "message_received"]
    assert driver["actor"] == "reception" and driver["at"] == "2026-05-06T01:00:00+00:00"
    assert driver["payload"] == {"message": "withdrawal", "payload": WITHDRAWAL, "element": "withdrawn",
                                 "name": "投诉人撤回投诉", "form": "common/withdrawal.json", "role": "reception"}
    assert msvc.replay(case.instance_id).consistent is True


def test_the_history_reads_who_recorded_what(msvc):
    case = start(msvc)
    msvc.send_message(case.instance_id, "withdrawal", WITHDRAWAL, "reception", roles={"reception"})
    rows = readable_history(msvc, case.instance_id, may_see_identity=True,
                            names=lambda login: ("李客服", "reception") if login == "reception" else None,
                            roles={"reception": {"zh": "客服接待"}})
    (row,) = [r for r in rows if r["kind"] == "message_received"]
    assert row["sentence"] == "李客服（客服接待）登记：投诉人撤回投诉"
    assert {"title": "撤回方式", "value": "电话"} in row["fields"]
    assert {"title": "撤回理由", "value": "已与商家协商解决"} in row["fields"]


def test_a_payload_that_does_not_fit_the_form_is_refused_field_by_field_and_nothing_is_stored(msvc):
    case = start(msvc)
    before = stored(msvc, case.instance_id)
    with pytest.raises(InvalidInput) as err:
        msvc.send_message(case.instance_id, "withdrawal", {"withdrawal_way": "fax", "withdrawal_reason": ""},
                          "reception", roles={"reception"})
    assert err.value.field_texts("zh") == {
        "withdrawn_at": ["「撤回时间」必填"], "withdrawal_reason": ["「撤回理由」不能为空"],
        "withdrawal_way": ["「撤回方式」只能从所列选项中选择（书面申请、电话、当面、网上）"]}
    assert err.value.field_errors["withdrawn_at"] == ["撤回时间 is required"]
    with pytest.raises(InvalidInput):
        msvc.send_message(case.instance_id, "withdrawal", ["not", "an", "object"], "reception")
    assert stored(msvc, case.instance_id) == before
    assert [m["message"] for m in msvc.awaited_messages(case.instance_id)] == ["withdrawal", "supplement"]


def test_a_user_without_the_role_is_refused_and_an_operator_without_roles_is_not(msvc):
    case = start(msvc)
    before = stored(msvc, case.instance_id)
    with pytest.raises(NotAllowed) as err:
        msvc.send_message(case.instance_id, "withdrawal", WITHDRAWAL, "manager", roles={"manager"})
    assert err.value.text("zh", role=lambda r: {"reception": "客服接待"}.get(r)) == \
        "登记「投诉人撤回投诉」需要客服接待角色，manager不具有该角色。"
    assert stored(msvc, case.instance_id) == before
    assert msvc.send_message(case.instance_id, "withdrawal", WITHDRAWAL, "cli").status == "completed"   # roles=None


def test_a_message_nothing_waits_for_is_a_conflict_that_says_what_the_case_waits_for(msvc):
    case = start(msvc)
    before = stored(msvc, case.instance_id)
    with pytest.raises(Conflict) as err:
        msvc.send_message(case.instance_id, "outside_ruling", RULING, "manager", roles={"manager"})
    assert err.value.message.code == "no_message_wait"
    assert str(err.value) == (f"case {case.case_number} is not waiting for message 'outside_ruling' (it waits for: "
                              "'withdrawal' (投诉人撤回投诉); 'supplement' (投诉人补正材料)); nothing was changed")
    assert err.value.text("zh") == (f"案件 {case.case_number} 目前不在等待「收到外部机构决定」"
                                    "（目前等待：「投诉人撤回投诉」；「投诉人补正材料」）；未作任何更改。")
    assert stored(msvc, case.instance_id) == before
    assert msvc.awaited_messages(case.instance_id)[0]["roles"] == ["reception"]   # looking the name up changed nothing


# --- validate ----------------------------------------------------------------------------------

def _validate_with(service, tmp_path, old, new):
    directory = message_process(tmp_path)
    path = directory / "messages.bpmn"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = service.validate([directory])
    return [str(p) for p in result.errors]


def _line(directory_text, needle):
    return next(i for i, line in enumerate(directory_text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old, new, element, says", [
    ('<bpmn:messageEventDefinition id="withdrawn_def" messageRef="msg_withdrawal" />',
     '<bpmn:messageEventDefinition id="withdrawn_def" />', "withdrawn", "waits for a message but names none"),
    ('messageRef="msg_outside_ruling"', 'messageRef="msg_ruling"', "wait_ruling",
     "waits for message 'msg_ruling', which is never declared"),
    ('<bpmn:message id="msg_supplement" name="supplement" />', '<bpmn:message id="msg_supplement" />',
     "supplemented", "waits for message 'msg_supplement', which has no name"),
    ('value="common/withdrawal.json"', 'value="common/withdraw.json"', "withdrawn",
     "form file 'common/withdraw.json' not found"),
])
def test_validate_finds_a_message_event_that_cannot_be_recorded(service, tmp_path, old, new, element, says):
    errors = _validate_with(service, tmp_path, old, new)
    text = (tmp_path / "messages" / "messages.bpmn").read_text(encoding="utf-8")
    line = _line(text, f'id="{element}"')
    assert any(e.startswith(f"{tmp_path / 'messages' / 'messages.bpmn'}:{line}: element '{element}'") and says in e
               for e in errors), errors


def test_validate_finds_an_invalid_message_form(service, tmp_path):
    directory = message_process(tmp_path)
    (directory / "forms" / "common" / "supplement.json").write_text('{"type": "object", "properties": []}')
    errors = [str(p) for p in service.validate([directory]).errors]
    line = _line((directory / "messages.bpmn").read_text(encoding="utf-8"), 'id="supplemented"')
    assert any(f"messages.bpmn:{line}: element 'supplemented'" in e and "form 'common/supplement.json'" in e
               for e in errors), errors


def test_the_fixture_and_the_shipped_processes_pass_the_message_checks(service, tmp_path):
    assert service.validate([message_process(tmp_path)]).errors == []
    assert not [p for p in service.validate([PROCESSES]).errors if "message" in p.message]


# --- the case page -----------------------------------------------------------------------------

@pytest.fixture
def web(msvc):
    roles = load_roles(PROCESSES)
    app = create_app(msvc, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="test", testing=True)
    return lambda login: sign_in(app.test_client(), login)


def panel(page: str) -> str:
    found = re.search(r'<section class="card" id="awaited-messages">.*?</section>', page, re.S)
    return found.group(0) if found else ""


def test_the_case_page_offers_each_awaited_message_to_the_roles_that_may_record_it(msvc, web):
    case = start(msvc)
    reception = web("reception")
    page = reception.get(f"/cases/{case.case_number}").get_data(as_text=True)
    assert "待登记的外部消息" in panel(page)
    assert re.findall(r'data-message="(\w+)"[^>]*>([^<]+)<', panel(page)) == [
        ("withdrawal", "登记：投诉人撤回投诉"), ("supplement", "登记：投诉人补正材料")]
    assert web("manager").get(f"/cases/{case.case_number}").status_code == 404    # nothing for the manager yet

    msvc.complete_task(open_task(msvc, case.instance_id, "handle")["task_id"], "reception", {"handling_note": "已转"})
    assert panel(reception.get(f"/cases/{case.case_number}").get_data(as_text=True)) == ""
    manager_page = web("manager").get(f"/cases/{case.case_number}").get_data(as_text=True)
    assert re.findall(r'data-message="(\w+)"', panel(manager_page)) == ["outside_ruling"]


def test_recording_a_withdrawal_from_the_case_page(msvc, web):
    case = start(msvc)
    client = web("reception")
    path = f"/cases/{case.case_number}/messages/withdrawal"
    form = client.get(path).get_data(as_text=True)
    assert "登记：投诉人撤回投诉" in form and "撤回方式" in form and "电话" in form
    before = stored(msvc, case.instance_id)

    bad = client.post(path, data={"csrf_token": token(client, path), "withdrawal_reason": "不想投诉了",
                                  "withdrawal_way": "phone"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "提交内容有误" in page and "「撤回时间」必填" in page and "不想投诉了" in page    # what was typed stays
    assert stored(msvc, case.instance_id) == before

    done = client.post(path, data={"csrf_token": token(client, path), "withdrawal_reason": "不想投诉了",
                                   "withdrawal_way": "phone", "withdrawn_at": "2026-05-06T08:30"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/cases/{case.case_number}")
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert f"已登记「投诉人撤回投诉」 {case.case_number}" in page
    assert "李客服（客服接待）登记：投诉人撤回投诉" in page and panel(page) == ""
    assert msvc.show(case.instance_id)["status"] == "completed"
    late = client.post(path, data={"csrf_token": token(client, f"/cases/{case.case_number}"),
                                   "withdrawal_reason": "再次登记", "withdrawal_way": "phone",
                                   "withdrawn_at": "2026-05-06T08:30"})       # a second tab, still open
    assert late.status_code == 409 and "李客服 已于 2026-05-06 09:00 先行处理" in late.get_data(as_text=True)
    assert len([e for e in msvc.history(case.instance_id) if e["kind"] == "message_received"]) == 1


def test_a_message_page_outside_ones_roles_or_no_longer_awaited(msvc, web):
    case = start(msvc)
    msvc.complete_task(open_task(msvc, case.instance_id, "handle")["task_id"], "reception", {"handling_note": "已转"})
    reception = web("reception")
    path = f"/cases/{case.case_number}/messages/outside_ruling"
    refused = reception.get(path)
    assert refused.status_code == 403 and "登记「收到外部机构决定」需要管理层角色" in refused.get_data(as_text=True)
    assert msvc.access_log(refused_only=True)[0]["action"] == "view_message"

    gone = reception.get(f"/cases/{case.case_number}/messages/withdrawal")      # the handling is over
    assert gone.status_code == 409
    assert "目前不在等待「投诉人撤回投诉」（目前等待：「收到外部机构决定」）；未作任何更改。" in gone.get_data(as_text=True)

    manager = web("manager")
    before = stored(msvc, case.instance_id)
    manager.post(path, data={"csrf_token": token(manager, path), **RULING,
                             "ruling_received_at": "2026-05-06T08:50"})
    assert stored(msvc, case.instance_id) != before and msvc.show(case.instance_id)["status"] == "completed"
    english_free = manager.get(f"/cases/{case.case_number}").get_data(as_text=True)
    assert "吴经理（管理层）登记：收到外部机构决定" in english_free


# --- the command line and the API ----------------------------------------------------------

def test_cli_show_lists_awaited_messages_and_message_checks_a_named_user(msvc, db_url, tmp_path, monkeypatch,
                                                                         chain_key_env):
    case = start(msvc)
    for key, value in chain_key_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COMPLAINTFLOW_HANDLERS", "support_handlers")
    monkeypatch.delenv("COMPLAINTFLOW_USERS_FILE", raising=False)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli, ["--db", db_url, "--now", "2026-05-06T10:00:00", *args], catch_exceptions=False)

    shown = run("show", case.case_number)
    assert shown.exit_code == 0, shown.output
    assert "awaited messages" in shown.output
    assert re.search(r"withdrawal\s+投诉人撤回投诉 \(withdrawn\)  roles reception  form common/withdrawal.json",
                     shown.output), shown.output
    as_json = json.loads(run("show", case.case_number, "--json").output)
    assert [m["message"] for m in as_json["awaited_messages"]] == ["withdrawal", "supplement"]

    refused = run("message", case.case_number, "withdrawal", "--user", "manager", "--data", json.dumps(WITHDRAWAL))
    assert refused.exit_code == 6 and "needs role reception, which manager does not hold" in refused.output
    unknown = run("message", case.case_number, "withdrawal", "--user", "nobody", "--data", json.dumps(WITHDRAWAL))
    assert unknown.exit_code == 6 and "'nobody' is not in the users file" in unknown.output
    invalid = run("message", case.case_number, "supplement", "--data", "{}")
    assert invalid.exit_code == 2 and "补正时间 is required" in invalid.output
    recorded = run("message", case.case_number, "supplement", "--data", json.dumps(SUPPLEMENT))
    assert recorded.exit_code == 0, recorded.output
    assert msvc.history(case.instance_id)[-1]["actor"] == "cli"
    assert run("message", case.case_number, "withdrawal", "--user", "reception",
               "--data", json.dumps(WITHDRAWAL)).exit_code == 0
    assert [e["actor"] for e in msvc.history(case.instance_id) if e["kind"] == "message_received"] == \
        ["cli", "reception"]


def test_api_case_resource_lists_awaited_messages_and_delivery_checks_role_and_form(msvc):
    roles = load_roles(PROCESSES)
    app = create_app(msvc, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="test", testing=True)

    def client(*token_roles):
        c = app.test_client()
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {create_token(msvc, '-'.join(token_roles), token_roles)}"
        return c
    case = start(msvc)
    desk, boss = client("reception"), client("reception", "manager")
    body = desk.get(f"/api/v1/cases/{case.case_number}").get_json()
    assert [(m["message"], m["name"], m["roles"]) for m in body["awaited_messages"]] == [
        ("withdrawal", "投诉人撤回投诉", ["reception"]), ("supplement", "投诉人补正材料", ["reception"])]

    msvc.complete_task(open_task(msvc, case.instance_id, "handle")["task_id"], "reception", {"handling_note": "已转"})
    url = f"/api/v1/cases/{case.case_number}/messages"
    refused = desk.post(url, json={"name": "outside_ruling", "payload": RULING})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "message_role"
    invalid = boss.post(url, json={"name": "outside_ruling", "payload": {"ruling_body": "县局"}})
    assert invalid.status_code == 422 and set(invalid.get_json()["error"]["fields"]) == {
        "ruling_received_at", "ruling_outcome"}
    ok = boss.post(url, json={"name": "outside_ruling", "payload": RULING})
    assert ok.status_code == 200 and ok.get_json()["status"] == "completed"
    again = boss.post(url, json={"name": "outside_ruling", "payload": RULING})
    assert again.status_code == 409


# --- what-if -----------------------------------------------------------------------------------

def test_whatif_says_when_a_recorded_message_no_longer_fits_the_candidates_form(msvc, tmp_path, chain_key_env):
    case = start(msvc)
    msvc.send_message(case.instance_id, "withdrawal", WITHDRAWAL, "reception", roles={"reception"})
    candidate = message_process(tmp_path / "candidate")
    form = candidate / "forms" / "common" / "withdrawal.json"
    schema = json.loads(form.read_text(encoding="utf-8"))
    schema["properties"]["signed_by"] = {"type": "string", "title": "签收人", "minLength": 1}
    schema["required"].append("signed_by")
    form.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")

    result = CliRunner().invoke(cli, ["--db", str(msvc.engine.url), "--now", "2026-06-01T09:00", "whatif", "msgcase",
                                      "--candidate", str(candidate), "--json"],
                                env={**chain_key_env, "COMPLAINTFLOW_HANDLERS": "support_handlers"})
    assert result.exit_code == 0, result.output
    (misfit,) = [c["does_not_fit"] for c in json.loads(result.output)["cases"]]
    assert (misfit["task"], misfit["form"], list(misfit["field_errors"])) == (
        "withdrawn", "common/withdrawal.json", ["signed_by"])
    # events: 1 started, 2 its case number, 3 the withdrawal
    assert misfit["text"] == "event 3: message 'withdrawal' no longer fits form common/withdrawal.json: 签收人 is required"
