"""The engine side of the compliance review (issue 10): readable history, search, a case as
it was after event N, verification in bulk and its CLI — with real enterprise_customer cases
and a controlled clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import update

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput
from complaintflow.engine.models import Event, Instance, Verification
from complaintflow.engine.review.at_event import case_at
from complaintflow.engine.review.history import readable_history
from complaintflow.engine.review.search import search_cases
from complaintflow.engine.review.verify import last_verification, verify_all, verify_case
from complaintflow.web.cli import cli
from conftest import PROCESSES, TEST_CHAIN_KEY, open_task

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}
NAMES = {"reception_li": ("李客服", "reception"), "dept_zhao": ("赵主管", "department")}


@pytest.fixture
def ec(service):
    service.deploy([PROCESSES])
    return service


def at(clock, text):
    clock.set(parse_instant(text))


def do(ec, case, task, user, data):
    return ec.complete_task(open_task(ec, case.instance_id, task)["task_id"], user, data)


def accepted_and_late(ec, clock):
    """Registered 05-06 09:00, accepted 10:00, past its promised time (05-08 17:00), then
    investigated and a solution agreed at 18:00: eight events."""
    at(clock, "2026-05-06T09:00:00+08:00")
    case = ec.start("enterprise_customer", INTAKE, "reception_li")
    at(clock, "2026-05-06T10:00:00+08:00")
    do(ec, case, "preliminary_check", "reception_li", {"outcome": "accepted", "severity": "general",
                                                       "department": "品质部"})
    at(clock, "2026-05-08T17:00:00+08:00")
    assert ec.tick()["timers_fired"] == 1
    at(clock, "2026-05-08T18:00:00+08:00")
    do(ec, case, "investigate", "dept_zhao", {"findings": "密封圈缺陷", "responsible_party": "company"})
    do(ec, case, "agree_solution", "dept_zhao", {"solution_type": "replacement", "solution": "换新",
                                                 "customer_agreed": True})
    return case


def fields(event):
    return {f["title"]: f["value"] for f in event["fields"]}


# --- readable history -------------------------------------------------------------------------

def test_readable_history_says_who_did_what_when_with_form_labels(ec, clock):
    case = accepted_and_late(ec, clock)
    h = readable_history(ec, case.case_number, may_see_identity=True, names=NAMES.get)
    assert [e["seq"] for e in h] == list(range(1, 9))
    assert [e["sentence"] for e in h] == [
        "李客服（客服接待）登记了投诉，按「企业客户投诉处理」（第 1 版）办理",
        "系统分配受理编号 KH-2026-000001",
        "系统向13800000000发送受理回执（「发送受理回执」）",
        "系统起算时限「promised」（约定时刻）：到期时间 2026年05月08日 17:00",
        "李客服（客服接待）完成了「初步核实」",
        "计时器「超过承诺解决时间」触发：「promised」已到期（到期时间 2026年05月08日 17:00）",
        "赵主管（处理部门）完成了「调查核实」",
        "赵主管（处理部门）完成了「协商解决方案」",
    ]
    assert [h[i]["at_local"] for i in (0, 4, 5, 7)] == ["2026年05月06日 09:00", "2026年05月06日 10:00",
                                                      "2026年05月08日 17:00", "2026年05月08日 18:00"]
    assert (h[0]["actor"], h[0]["actor_name"], h[0]["actor_role"]) == ("reception_li", "李客服", "客服接待")
    assert (h[1]["actor"], h[1]["actor_name"], h[1]["actor_role"]) == ("system", "系统", None)
    intake = fields(h[0])
    assert intake["投诉渠道"] == "热线电话" and intake["投诉类别"] == "产品质量"         # choices by title
    assert intake["投诉人"] == "王女士" and intake["承诺解决时间"] == "2026年05月08日 17:00"
    assert "重新处理次数" not in intake                     # initial data, not registered by anyone
    assert {"title": "重新处理次数", "before": "—", "after": "0"} in h[0]["changes"]
    assert fields(h[4]) == {"核实结论": "受理", "投诉等级": "一般投诉", "处理部门": "品质部"}
    assert fields(h[7]) == {"解决方式": "换货", "方案内容": "换新", "客户是否同意": "是"}   # booleans 是/否
    assert fields(h[2]) == {"内容": "您的投诉已受理，受理编号 KH-2026-000001。我们承诺在 2026年05月08日 17:00 前给您答复。"}
    assert fields(h[3])["依据"] == "向客户承诺的解决时间，到时必须答复"
    # what changed in the case data at each step, from the events alone
    assert h[1]["changes"] == [{"title": "受理编号", "before": "—", "after": "KH-2026-000001"}]
    assert {"title": "时限", "before": "—", "after": "promised：2026年05月08日 17:00"} in h[3]["changes"]
    assert h[4]["changes"] == []        # what the submission set is shown once, among its fields
    assert h[0]["changes"] == [{"title": "重新处理次数", "before": "—", "after": "0"}]
    assert h[5]["changes"] == []
    # the raw event stays available, as stored
    assert h[4]["raw"]["payload"]["data"]["outcome"] == "accepted"
    # no raw JSON, English codes or escapes in what a reviewer reads
    text = "\n".join([e["sentence"] for e in h] + [str(v) for e in h for f in e["fields"] + e["changes"]
                                                     for v in f.values()])
    for code in ("accepted", "product_quality", "hotline", "true", "\\u", "{"):
        assert code not in text


def test_readable_history_masks_identity_for_a_viewer_who_may_not_see_it(ec, clock):
    case = accepted_and_late(ec, clock)
    h = readable_history(ec, case.instance_id, may_see_identity=False, names=NAMES.get)
    assert fields(h[0])["投诉人"] == "（保密）" and fields(h[0])["联系方式"] == "（保密）"
    assert h[2]["sentence"] == "系统向（保密）发送受理回执（「发送受理回执」）"
    assert all("王女士" not in str(c) for e in h for c in e["changes"])
    everything = json.dumps(h, ensure_ascii=False)          # raw data included
    assert "王女士" not in everything and "13800000000" not in everything
    # without a directory of names, the login is shown
    plain = readable_history(ec, case.instance_id, may_see_identity=True)
    assert plain[4]["sentence"] == "reception_li（客服接待）完成了「初步核实」"


def test_readable_history_from_what_the_case_page_has_read_is_the_same_and_reads_only_the_events(ec, clock):
    """The case page passes the case_detail it has read: the same history, for a viewer who may
    see the complainant and one who may not, with one query (the events) instead of re-reading
    the case row and the version's BPMN."""
    case = accepted_and_late(ec, clock)
    roles = json.loads((PROCESSES / "roles.json").read_text(encoding="utf-8"))
    detail = ec.case_detail(case.instance_id)
    statements = []
    sqlalchemy_event.listen(ec.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for may_see in (True, False):
        statements.clear()
        given = readable_history(ec, case.instance_id, may_see_identity=may_see, names=NAMES.get, roles=roles,
                                 detail=detail)
        assert len(statements) == 1 and "FROM events" in statements[0]
        assert given == readable_history(ec, case.case_number, may_see_identity=may_see, names=NAMES.get, roles=roles)
        assert len(given) == 8 and ("王女士" in json.dumps(given, ensure_ascii=False)) == may_see


# --- search ----------------------------------------------------------------------------------

def test_search_filters_each_return_the_right_cases(ec, clock):
    late = accepted_and_late(ec, clock)                                          # 05-06, breached
    at(clock, "2026-05-08T19:00:00+08:00")
    settled = ec.start("enterprise_customer", dict(INTAKE, category="service_attitude",
                                                   promised_resolution_at="2026-05-20T17:00:00+08:00"), "reception_li")
    do(ec, settled, "preliminary_check", "reception_li",
       {"outcome": "settled", "severity": "general", "on_spot_resolution": "当场更换"})
    do(ec, settled, "summary_archive", "reception_li", {"summary": "已处理"})   # completed
    at(clock, "2026-05-09T09:00:00+08:00")
    fresh = ec.start("enterprise_customer", dict(INTAKE, category="returns",
                                                 promised_resolution_at="2026-05-20T17:00:00+08:00"), "reception_li")
    do(ec, fresh, "preliminary_check", "reception_li", {"outcome": "accepted", "severity": "general",
                                                        "department": "售后部"})
    with ec.engine.begin() as conn:      # no enterprise step sets a legal state: as case.set_state would
        conn.execute(update(Instance).where(Instance.id == settled.instance_id).values(legal_state="deemed_accepted"))
    verify_case(ec, late.instance_id, actor="reviewer")

    def numbers(**filters):
        return [c["case_number"] for c in search_cases(ec, **filters)["cases"]]

    A, B, C = late.case_number, settled.case_number, fresh.case_number
    assert numbers() == [C, B, A]                                # newest received first
    assert numbers(case_number=A) == [A]
    assert numbers(process_id="enterprise_customer") == [C, B, A] and numbers(process_id="tourism") == []
    assert numbers(status="running") == [C, A] and numbers(status="completed") == [B]
    assert numbers(status="incident") == []
    assert numbers(breached=True) == [A] and numbers(breached=False) == [C, B]
    assert numbers(breached="true") == [A] and numbers(breached="false") == [C, B]   # as a query string gives it
    assert numbers(category="returns") == [C]
    assert numbers(department="品质部") == [A] and numbers(department="售后部") == [C]
    assert numbers(legal_state="deemed_accepted") == [B]
    assert numbers(legal_state="deemed_accepted", category="service_attitude") == [B]
    assert numbers(legal_state="deemed_accepted", category="returns") == []
    assert numbers(received_from=date(2026, 5, 8), received_to=date(2026, 5, 8)) == [B]   # both days included
    assert numbers(received_from="2026-05-07") == [C, B] and numbers(received_to="2026-05-07") == [A]
    assert numbers(process_id="enterprise_customer", status="running", category="product_quality") == [A]
    first = search_cases(ec, limit=2)
    assert first["more"] is True and (first["limit"], first["offset"]) == (2, 0)
    rest = search_cases(ec, limit=2, offset=2)
    assert [c["case_number"] for c in rest["cases"]] == [A] and rest["more"] is False
    row = search_cases(ec, case_number=A)["cases"][0]
    assert (row["process_name"], row["status"], row["category"], row["department"], row["breached"]) == (
        "企业客户投诉处理", "running", "product_quality", "品质部", True)
    assert row["received"] == "2026-05-06T01:00:00+00:00" and row["closed"] is None
    assert row["last_verification"]["consistent"] is True and row["last_verification"]["checked_by"] == "reviewer"
    assert search_cases(ec, case_number=C)["cases"][0]["last_verification"] is None
    with pytest.raises(InvalidInput, match="status"):
        search_cases(ec, status="open")
    with pytest.raises(InvalidInput, match="received_from"):
        search_cases(ec, received_from="last week")


# --- a case after event N ------------------------------------------------------------------------

def test_case_at_event_n_shows_tasks_timers_deadlines_and_path_as_they_were(ec, clock):
    case = accepted_and_late(ec, clock)
    first = case_at(ec, case.case_number, 1)             # registration: its step ends at event 4
    assert (first["until"], first["events"], first["step_end"], first["kind"]) == (1, 8, 4, "started")
    assert [(t["task"], t["name"], t["role"]) for t in first["open_tasks"]] == [("preliminary_check", "初步核实", "reception")]
    assert first["waiting_timers"] == []
    assert first["path"]["current"] == ["preliminary_check"] and "send_receipt" in first["path"]["done"]
    assert "flow_receive" in first["path"]["flows"] and "investigate" not in first["path"]["done"]
    (promised,) = first["deadlines"]
    assert (promised["name"], promised["status"], promised["due"]) == ("promised", "open", "2026-05-08T09:00:00+00:00")
    assert first["data"]["complainant"] == "王女士" and "outcome" not in first["data"]
    masked = case_at(ec, case.case_number, 1, may_see_identity=False)["data"]
    assert masked["complainant"] == "（保密）" and masked["contact"] == "（保密）"

    accepted = case_at(ec, case.instance_id, 5)
    assert [(t["task"], t["due"]) for t in accepted["open_tasks"]] == [("investigate", "2026-05-08T09:00:00+00:00")]
    assert accepted["waiting_timers"] == [{"task": "promised_time_passed", "name": "超过承诺解决时间",
                                           "due": "2026-05-08T09:00:00+00:00", "deadline": "promised"}]
    assert accepted["deadlines"][0]["status"] == "open"            # not yet due at 05-06 10:00
    assert accepted["data"]["outcome"] == "accepted"
    assert "preliminary_check" in accepted["path"]["done"] and "investigate" in accepted["path"]["current"]

    fired = case_at(ec, case.instance_id, 6)
    assert sorted(t["task"] for t in fired["open_tasks"]) == ["investigate", "supervise"]
    assert fired["waiting_timers"] == []
    assert fired["deadlines"][0]["status"] == "breached"
    assert fired["deadlines"][0]["breached_at"] == "2026-05-08T09:00:00+00:00"
    assert "promised_time_passed" in fired["path"]["done"] and "supervise" in fired["path"]["current"]

    last = case_at(ec, case.instance_id, 8)
    assert sorted(t["task"] for t in last["open_tasks"]) == ["feedback", "supervise"]
    assert {"investigate", "agree_solution"} <= set(last["path"]["done"]) and last["problem"] is None
    for bad in (0, 9):
        with pytest.raises(InvalidInput, match="events 1 to 8; there is no event"):
            case_at(ec, case.instance_id, bad)


# --- verification -------------------------------------------------------------------------------------

@pytest.fixture
def tampered(ec, clock):
    """Two cases; the first with the actor of its event 5 changed in the database."""
    bad = accepted_and_late(ec, clock)
    at(clock, "2026-05-09T09:00:00+08:00")
    good = ec.start("enterprise_customer", dict(INTAKE, promised_resolution_at="2026-05-20T17:00:00+08:00"),
                    "reception_li")
    with ec.engine.begin() as conn:
        conn.execute(update(Event).where(Event.instance_id == bad.instance_id, Event.seq == 5)
                     .values(actor="mallory"))
    return bad, good


def test_verify_all_finds_the_tampered_case_and_keeps_each_result(ec, tampered):
    bad, good = tampered
    seen = []
    result = verify_all(ec, actor="reviewer", progress=lambda n, total: seen.append((n, total)))
    assert seen == [(1, 2), (2, 2)]
    assert (result["checked"], result["consistent"]) == (2, 1)
    (found,) = result["inconsistent"]
    assert found["case_number"] == bad.case_number
    assert found["summary"].startswith("第 5 条事件：") and "changed after it was written" in found["summary"]
    mine = last_verification(ec, bad.case_number)
    assert mine["consistent"] is False and mine["checked_by"] == "reviewer" and mine["events"] == 8
    assert last_verification(ec, good.instance_id)["consistent"] is True
    assert "changed after it was written" in case_at(ec, bad.instance_id, 6)["chain_problem"]
    assert case_at(ec, good.instance_id, 1)["chain_problem"] is None
    assert verify_all(ec, actor="reviewer", process_id="tourism")["checked"] == 0
    assert verify_all(ec, actor="reviewer", since=date(2026, 5, 9))["checked"] == 1
    with ec.sessions() as s:
        assert s.query(Verification).count() == 3


def test_cli_verify_all_exits_7_and_history_reads_in_chinese(ec, tampered, db_url, tmp_path, monkeypatch):
    bad, good = tampered
    key = tmp_path / "chain_key"
    key.write_text(TEST_CHAIN_KEY.hex())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPLAINTFLOW_CHAIN_KEY_FILE", str(key))
    monkeypatch.delenv("COMPLAINTFLOW_NOW", raising=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", db_url, "replay", "--verify", "--all"], catch_exceptions=False)
    assert out.exit_code == 7, out.output
    assert "checked 2 case(s): 1 consistent, 1 inconsistent" in out.output
    assert f"INCONSISTENT {bad.case_number}: 第 5 条事件" in out.output
    out = runner.invoke(cli, ["--db", db_url, "replay", "--verify", "--all", "--json", "--since", "2026-05-09"],
                        catch_exceptions=False)
    assert out.exit_code == 0 and json.loads(out.output) == {"checked": 1, "consistent": 1, "inconsistent": []}
    out = runner.invoke(cli, ["--db", db_url, "replay", "--all"])
    assert out.exit_code == 2 and "--all needs --verify" in out.output
    out = runner.invoke(cli, ["--db", db_url, "history", good.case_number, "--readable", "--masked"],
                        catch_exceptions=False)
    assert out.exit_code == 0
    assert "reception_li（客服接待）登记了投诉" in out.output and "投诉类别：产品质量" in out.output
    assert "王女士" not in out.output and "（保密）" in out.output


# --- a paused limit (fixture process `limits`: appraisal time is not counted) ----------------------

def test_a_paused_and_resumed_limit_at_each_moment_and_in_words(service, clock, tmp_path):
    from conftest import copy_fixture
    service.deploy([copy_fixture(tmp_path, "limits")])
    at(clock, "2026-03-02T09:00:00+08:00")
    case = service.start("limits", {"subject": "奶粉中有异物", "contact": "13900000000"}, "reception")
    do(service, case, "decide", "handler_wang", {"decision": "accept"})
    at(clock, "2026-03-10T10:00:00+08:00")
    do(service, case, "handle", "handler_wang", {"outcome": "appraisal"})
    paused_at = service.show(case.instance_id)["events"]
    at(clock, "2026-05-20T15:00:00+08:00")
    do(service, case, "appraisal", "handler_wang", {"note": "检测报告已出"})
    resumed_at = service.show(case.instance_id)["events"]
    at(clock, "2026-07-14T00:00:00+08:00")
    service.tick()
    final = {d["name"]: d for d in service.show(case.instance_id)["deadlines"]}

    def reply(n):
        return {d["name"]: d for d in case_at(service, case.instance_id, n)["deadlines"]}["reply"]

    assert reply(paused_at)["status"] == "paused" and reply(paused_at)["paused_since"] == "2026-03-10T02:00:00+00:00"
    after = reply(resumed_at)
    assert after["status"] == "open" and after["due"] == final["reply"]["due"]     # moved by the paused days
    assert reply(service.show(case.instance_id)["events"])["status"] == "breached" == final["reply"]["status"]
    sentences = [e["sentence"] for e in readable_history(service, case.instance_id, may_see_identity=True)]
    assert any(s.startswith("系统暂停计时：「reply」") for s in sentences)
    assert "系统恢复计时：「reply」" in sentences


def test_a_limit_counted_in_days_reads_by_its_last_day_in_the_history(ec, clock):
    """Staff and reviewers read a working-day limit by its last day, not by the engine's due
    moment (00:00 of the day after): received Thu 04-30, 10 working days over Labour Day end
    on Mon 05-18; the timer at 05-19 00:00 says the last day has passed."""
    at(clock, "2026-04-30T09:00:00+08:00")
    case = ec.start("medical_insurance", {
        "channel": "phone", "received_at": "2026-04-30T09:00:00+08:00", "complainant": "李先生",
        "contact": "13700000000", "insured_id": "110101195001011234", "respondent": "某定点药店",
        "content": "多收个人自付部分费用", "request": "退还多收的费用"}, "yb_wang")
    at(clock, "2026-05-18T23:59:00+08:00")
    assert ec.tick()["timers_fired"] == 0
    at(clock, "2026-05-19T00:00:00+08:00")
    assert ec.tick()["timers_fired"] == 1
    sentences = [e["sentence"] for e in readable_history(ec, case.case_number, may_see_identity=True)]
    assert "系统起算时限「reply」（10个工作日）：最后一日 2026年05月18日（当日内）" in sentences
    assert "计时器「超过答复时限」触发：「reply」已超过最后一日 2026年05月18日" in sentences
    assert not [s for s in sentences if "05月19日 00:00" in s]
