"""Statistics (统计, docs/statistics.md) over cases whose outcomes are known, walked with a
controlled clock: some on time, some breached across National Day, one customer unsatisfied;
each figure asserted exactly, by month and by the other dimensions. The facts the forms declare
(`x-fact`), their deploy check, the CLI (CSV/XLSX) and the /stats page are tested here too.

The scenario (every date 2026, Beijing time; `now` = 10-23 12:00):

| case | procedure | received | limit | ended | closed (working days) | satisfaction |
| M1 | medical_insurance | 04-30 10:00 | reply 10 wd, last day 05-18 | met 05-12 | 05-12 (6) | |
| E1 | enterprise_customer | 05-06 09:00 | promised 05-08 17:00 | met 05-07 | 05-07 (1) | yes |
| E2 | enterprise_customer | 05-13 09:00 | promised 05-15 17:00 | met 05-14 | 05-14 (1) | no (3 times) |
| M4 | medical_insurance | 09-18 10:00 | reply, last day 10-09 | breached 10-10 00:00 (tick 10-21) | open, overdue now | |
| M2 | medical_insurance | 09-30 10:00 | reply, last day 10-20 | breached 10-21 00:00 | 10-22 (12) | |
| E3 | enterprise_customer | 09-30 11:00 | promised 10-09 17:00 | breached 10-09 17:00 | 10-12 (4) | yes |
| M3 | medical_insurance | 10-08 10:00 | reply, last day 10-21 | breached 10-22 00:00 (no tick yet) | open, overdue now | |

Working days (receipt day not counted): M1 05-06, 07, 08, Sat 09, 11, 12 = 6 (Labour Day
05-01..05; Sat 05-09 worked); E3 10-08, 09, Sat 10, 12 = 4 and M2 10-08 .. 10-22 = 12 (National
Day 10-01..07; Sat 10-10 worked).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from click.testing import CliRunner

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import InvalidInput
from complaintflow.engine.review.stats import statistics, table
from conftest import PROCESSES, open_task

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

EC_INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
             "content": "新买的电水壶漏水"}
MI_INTAKE = {"channel": "phone", "complainant": "李先生", "contact": "13700000000", "insured_id": "110101195001011234",
             "respondent": "某定点药店", "content": "多收个人自付费用", "request": "退还多收的费用"}
INVESTIGATED = {"outcome": "completed", "facts": "多收38.5元", "evidence": ["结算单据"], "facts_clear": True}
OPINION = {"finding": "substantiated", "opinion": "责令退还", "policy_basis": "服务协议", "measures": "三日内退还",
           "responsible_person": "张科长"}
NOW = "2026-10-23T12:00"


def at(text):
    return parse_instant(text)


def do(svc, case, task, data, user="staff"):
    return svc.complete_task(open_task(svc, case.instance_id, task)["task_id"], user, data)


def ec_start(svc, clock, when, promised):
    clock.set(at(when))
    case = svc.start("enterprise_customer", dict(EC_INTAKE, promised_resolution_at=promised), "reception_li")
    do(svc, case, "preliminary_check", {"outcome": "accepted", "severity": "general", "department": "品质部"})
    return case


def ec_reply(svc, case, satisfied):
    do(svc, case, "investigate", {"findings": "密封圈缺陷", "responsible_party": "company"})
    do(svc, case, "agree_solution", {"solution_type": "replacement", "solution": "换新", "customer_agreed": True})
    do(svc, case, "feedback", {"reply": "已为您换新", "reply_channel": "phone"})
    do(svc, case, "satisfaction_survey", {"satisfied": satisfied})


def ec_close(svc, case):
    assert do(svc, case, "summary_archive", {"summary": "已处理"}).status == "completed"


def mi_start(svc, clock, when):
    clock.set(at(when))
    case = svc.start("medical_insurance", dict(MI_INTAKE, received_at=at(when).isoformat()), "yb_wang")
    do(svc, case, "preliminary_review", {"remit": "within", "review_note": "属于医保办职责"})
    return case


def mi_answer(svc, case):
    do(svc, case, "investigate", INVESTIGATED)
    do(svc, case, "handling_opinion", OPINION)
    assert do(svc, case, "reply", {"reply_form": "written", "reply_content": "已责令退还"}).status == "completed"


def walk(svc, clock):
    svc.deploy([PROCESSES / "enterprise_customer.bpmn", PROCESSES / "medical_insurance.bpmn"])
    cases = {}
    cases["M1"] = mi_start(svc, clock, "2026-04-30T10:00")
    cases["E1"] = ec_start(svc, clock, "2026-05-06T09:00", "2026-05-08T17:00:00+08:00")
    clock.set(at("2026-05-07T10:00"))
    ec_reply(svc, cases["E1"], "yes")
    ec_close(svc, cases["E1"])
    clock.set(at("2026-05-12T10:00"))
    mi_answer(svc, cases["M1"])
    cases["E2"] = ec_start(svc, clock, "2026-05-13T09:00", "2026-05-15T17:00:00+08:00")
    clock.set(at("2026-05-14T10:00"))
    for _ in range(3):                       # unsatisfied, handled again twice, still unsatisfied
        ec_reply(svc, cases["E2"], "no")
    ec_close(svc, cases["E2"])
    cases["M4"] = mi_start(svc, clock, "2026-09-18T10:00")
    cases["M2"] = mi_start(svc, clock, "2026-09-30T10:00")
    cases["E3"] = ec_start(svc, clock, "2026-09-30T11:00", "2026-10-09T17:00:00+08:00")
    cases["M3"] = mi_start(svc, clock, "2026-10-08T10:00")
    clock.set(at("2026-10-09T17:00"))
    assert svc.tick()["timers_fired"] == 1                       # E3's promise passes
    do(svc, cases["E3"], "supervise", {"supervision_note": "今天必须答复"}, user="manager_wu")
    clock.set(at("2026-10-12T10:00"))
    ec_reply(svc, cases["E3"], "yes")
    ec_close(svc, cases["E3"])
    clock.set(at("2026-10-21T00:00"))
    assert svc.tick()["timers_fired"] == 2                       # M4's and M2's reply limits pass
    clock.set(at("2026-10-22T10:00"))
    do(svc, cases["M2"], "supervise", {"supervision_note": "立即答复", "supervision_responsible": "张科长"},
       user="leader_zhou")
    mi_answer(svc, cases["M2"])
    clock.set(at(NOW))
    return cases


@pytest.fixture
def walked(service, clock):
    return service, walk(service, clock)


def limits(row):
    return {name: (v["met"], v["breached"], v["rate"]) for name, v in row["ontime"].items()}


def test_every_figure_by_month(walked):
    svc, cases = walked
    shown = {k: svc.show(c.instance_id) for k, c in cases.items()}
    assert {k: [(d["name"], d["status"]) for d in v["deadlines"]] for k, v in shown.items()} == {
        "M1": [("reply", "met")], "E1": [("promised", "met")], "E2": [("promised", "met")],
        "M4": [("reply", "breached")], "M2": [("reply", "breached")], "E3": [("promised", "breached")],
        "M3": [("reply", "breached")]}          # shown so: still `open` in its row, past due

    result = statistics(svc, by="month", now=at(NOW))
    rows = {r["key"]: r for r in result["rows"]}
    assert list(rows) == ["2026-04", "2026-05", "2026-09", "2026-10"]
    assert result["limits"] == ["promised", "reply"]
    total = result["total"]
    assert (total["label"], total["received"], total["closed"], total["closed_of_received"]) == ("合计", 7, 5, 5)
    assert total["closure_rate"] == round(5 / 7, 4)
    assert (total["open_now"], total["overdue_now"]) == (2, 2)
    assert limits(total) == {"promised": (2, 1, round(2 / 3, 4)), "reply": (1, 3, 0.25)}
    assert (total["ontime_met"], total["ontime_breached"], total["ontime_rate"]) == (3, 4, round(3 / 7, 4))
    assert (total["satisfaction_positive"], total["satisfaction_total"], total["satisfaction_rate"]) == (
        2, 3, round(2 / 3, 4))
    assert (total["mediation_total"], total["mediation_rate"]) == (0, None)      # neither records mediation
    assert total["avg_workdays"] == round((6 + 1 + 1 + 4 + 12) / 5, 2) == 4.8

    april, may, sept, october = rows["2026-04"], rows["2026-05"], rows["2026-09"], rows["2026-10"]
    assert [(r["received"], r["closed_of_received"], r["closure_rate"]) for r in (april, may, sept, october)] == [
        (1, 1, 1.0), (2, 2, 1.0), (3, 2, round(2 / 3, 4)), (1, 0, 0.0)]
    assert [r["closed"] for r in (april, may, sept, october)] == [0, 3, 0, 2]
    assert [r["avg_workdays"] for r in (april, may, sept, october)] == [None, round(8 / 3, 2), None, 8.0]
    assert [(r["open_now"], r["overdue_now"]) for r in (april, may, sept, october)] == [(0, 0), (0, 0), (1, 1), (1, 1)]
    assert limits(may) == {"promised": (2, 0, 1.0), "reply": (1, 0, 1.0)} and may["ontime_rate"] == 1.0
    # all four breaches end in October, at their due moments: E3 10-09 17:00, M4 10-10 00:00,
    # M2 10-21 00:00, M3 10-22 00:00 (whenever a tick noticed them, or none yet)
    assert limits(october) == {"promised": (0, 1, 0.0), "reply": (0, 3, 0.0)} and october["ontime_rate"] == 0.0
    assert limits(april)["reply"] == (0, 0, None) and april["ontime_rate"] is None
    assert (may["satisfaction_positive"], may["satisfaction_total"], october["satisfaction_rate"]) == (1, 2, 1.0)


def test_ranges_procedures_and_dimensions(walked):
    svc, _ = walked
    now = at(NOW)
    may = statistics(svc, date_from=date(2026, 5, 1), date_to=date(2026, 5, 31), now=now)["total"]
    assert (may["received"], may["closed"], may["ontime_rate"], may["satisfaction_rate"]) == (2, 3, 1.0, 0.5)
    assert may["closure_rate"] == 1.0 and may["avg_workdays"] == round(8 / 3, 2)
    # a range ending before a case was closed counts only what happened in it
    autumn = statistics(svc, date_from=date(2026, 9, 1), date_to=date(2026, 10, 20), now=now)["total"]
    assert (autumn["received"], autumn["closed"], autumn["ontime_met"], autumn["ontime_breached"]) == (4, 1, 0, 2)

    mi = statistics(svc, process_id="medical_insurance", by="procedure", now=now)
    (row,) = mi["rows"]
    assert row["key"] == "medical_insurance" and row["label"] == row["label_en"].split(" (")[0] != "medical_insurance"
    assert (row["received"], row["closed"], row["open_now"], row["overdue_now"]) == (4, 2, 2, 2)
    assert limits(row) == {"reply": (1, 3, 0.25)}
    assert row["satisfaction_total"] == 0 and row["satisfaction_rate"] is None
    assert row["avg_workdays"] == 9.0

    by_proc = {r["key"]: r for r in statistics(svc, by="procedure", now=now)["rows"]}
    assert set(by_proc) == {"enterprise_customer", "medical_insurance"}
    assert by_proc["enterprise_customer"]["ontime_rate"] == round(2 / 3, 4)

    by_cat = statistics(svc, by="category", now=now)
    cats = {r["key"]: r for r in by_cat["rows"]}
    assert cats["product_quality"]["received"] == 3 and cats["product_quality"]["label"] != "product_quality"
    assert cats[None]["label"] == "（未填）" and cats[None]["received"] == 4        # the insurance office has none
    assert by_cat["total"]["received"] == 7 and by_cat["total"]["satisfaction_rate"] == round(2 / 3, 4)

    by_dept = {r["key"]: r for r in statistics(svc, by="department", now=now)["rows"]}
    assert by_dept["品质部"]["received"] == 3 and by_dept["品质部"]["satisfaction_total"] == 3

    # the moment matters: on 05-10 only April's and May's first cases existed
    early = statistics(svc, now=at("2026-05-10T12:00"))["total"]
    assert (early["received"], early["closed"], early["open_now"], early["ontime_met"]) == (2, 1, 1, 1)

    with pytest.raises(InvalidInput):
        statistics(svc, by="weekday")
    with pytest.raises(InvalidInput):
        statistics(svc, date_from=date(2026, 6, 1), date_to=date(2026, 5, 1))


def test_the_fact_is_kept_with_the_task_and_follows_the_latest_answer(walked):
    svc, cases = walked
    from sqlalchemy import select
    from complaintflow.engine.forms import fact_declarations
    from complaintflow.engine.models import CaseFact
    with svc.sessions() as s:
        facts = {(r.instance_id, r.name): (r.value, r.positive, r.recorded_at) for r in s.execute(select(CaseFact)).scalars()}
    assert facts == {
        (cases["E1"].instance_id, "satisfaction"): ("yes", True, at("2026-05-07T10:00")),
        (cases["E2"].instance_id, "satisfaction"): ("no", False, at("2026-05-14T10:00")),
        (cases["E3"].instance_id, "satisfaction"): ("yes", True, at("2026-10-12T10:00")),
    }
    # mediation outcomes as the market regulator's `mediate` form records them (agreement,
    # terminate, appraisal — the last not an outcome yet): counted only where judged
    decl = {d.name: d for d in fact_declarations(json.loads(
        (PROCESSES / "forms" / "market_regulator" / "mediate.json").read_text(encoding="utf-8")))}["mediation"]
    assert [decl.judge(v) for v in ("agreement", "terminate", "appraisal")] == [True, False, None]
    with svc.sessions() as s:
        for case, value in (("M1", "agreement"), ("M2", "terminate"), ("M3", "appraisal")):
            s.add(CaseFact(instance_id=cases[case].instance_id, name="mediation", process_id="medical_insurance",
                           value=value, positive=decl.judge(value), recorded_at=at("2026-10-15T10:00")))
        s.commit()
    result = statistics(svc, by="procedure", now=at(NOW))
    rows = {r["key"]: r for r in result["rows"]}
    assert (rows["medical_insurance"]["mediation_success"], rows["medical_insurance"]["mediation_total"],
            rows["medical_insurance"]["mediation_rate"]) == (1, 2, 0.5)
    assert rows["enterprise_customer"]["mediation_rate"] is None and result["total"]["mediation_rate"] == 0.5


def test_table_csv_and_xlsx_hold_the_same_numbers(walked, db_url, tmp_path, chain_key_env):
    import openpyxl
    from complaintflow.web.cli import cli
    svc, _ = walked
    result = statistics(svc, now=at(NOW))
    headers, rows = table(result)
    assert headers[:5] == ["月份", "受理量", "办结量", "办结率", "按时办结率"]
    assert rows[-1][0] == "合计"

    env = chain_key_env
    runner = CliRunner()
    csv_path, xlsx_path = tmp_path / "stats.csv", tmp_path / "stats.xlsx"
    out = runner.invoke(cli, ["--db", db_url, "--now", NOW, "stats", "--csv", str(csv_path), "--xlsx",
                              str(xlsx_path)], env=env)
    assert out.exit_code == 0, out.output
    assert "合计" in out.output and "71.4%" in out.output             # the text table: 5 of 7 closed

    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        read = list(csv.reader(f))
    assert read[0] == headers
    assert read[-1][:4] == ["合计", "7", "5", str(round(5 / 7, 4))]
    assert len(read) == len(rows) + 1

    sheet = openpyxl.load_workbook(xlsx_path).active
    values = [[c.value for c in r] for r in sheet.iter_rows()]
    assert values[0] == headers
    assert values[-1] == [None if v is None else v for v in rows[-1]]
    assert values[-1][1:4] == [7, 5, round(5 / 7, 4)]

    js = runner.invoke(cli, ["--db", db_url, "--now", NOW, "stats", "--by", "procedure", "--process",
                             "enterprise_customer", "--from", "2026-05-01", "--json"], env=env)
    assert js.exit_code == 0, js.output
    data = json.loads(js.output)
    assert data["total"]["received"] == 3 and data["total"]["satisfaction_rate"] == round(2 / 3, 4)
    bad = runner.invoke(cli, ["--db", db_url, "stats", "--from", "May"], env=env)
    assert bad.exit_code == 2 and "2026-05-01" in bad.output


def test_deploy_refuses_a_fact_declaration_that_does_not_fit_its_field(service, tmp_path):
    folder = tmp_path / "procs"
    folder.mkdir()
    for name in ("enterprise_customer.bpmn", "roles.json"):
        (folder / name).write_bytes((PROCESSES / name).read_bytes())
    forms = folder / "forms" / "enterprise_customer"
    forms.mkdir(parents=True)
    for f in (PROCESSES / "forms" / "enterprise_customer").iterdir():
        (forms / f.name).write_bytes(f.read_bytes())
    survey = forms / "satisfaction_survey.json"
    schema = json.loads(survey.read_text(encoding="utf-8"))
    schema["properties"]["satisfied"]["x-fact"] = {"name": "satisfaction", "positive": ["满意"]}
    schema["properties"]["comment"]["x-fact"] = {"name": "happiness", "positive": ["yes"]}
    survey.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    messages = [p.message for p in service.validate([folder]).problems]
    assert any("positive value(s) '满意' are not among the field's choices ('yes', 'no')" in m for m in messages)
    assert any("names fact 'happiness', which statistics do not know" in m for m in messages)


DEMO_HASH = ("scrypt:32768:8:1$TG8PIssGRUyNKzfN$87b2da3ef6ac9e7c00eb3ec76b8f24e4922de801a403cf50e5aeaaf5047c6fe964ec"
             "3701978ee4c49f62fd39851253058d35b20f4c06d030365be25dce46b2ad")     # "demo", as in data/users/demo.toml


def test_the_stats_page_for_reviewers_and_managers_with_charts_and_downloads(walked, tmp_path):
    import re
    import openpyxl
    from complaintflow.web.app import create_app, load_roles
    from complaintflow.web.users import load_users
    svc, _ = walked
    roles = load_roles(PROCESSES)
    people = {"zhang": ["reviewer"], "wu": ["manager"], "li": ["reception"]}
    users = tmp_path / "users.toml"
    users.write_text("".join(f'[users.{login}]\nname = "{login}"\nroles = {json.dumps(r)}\npassword_hash = "{DEMO_HASH}"\n\n'
                             for login, r in people.items()), encoding="utf-8")
    app = create_app(svc, users=load_users(users, set(roles)), roles=roles, secret_key="test", testing=True)

    def signed_in(login):
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/login", data={"login": login, "password": "demo", "csrf_token": csrf}).status_code == 302
        return client

    reviewer = signed_in("zhang")
    page = reviewer.get("/stats")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/stats"' in html                                          # the header links it
    assert html.count("<svg") == 2 and "chart-month" in html and "chart-breakdown" in html
    assert html.count('class="bar bar-received"') == 4                       # four months
    assert "产品质量" in html and "按月受理量与办结量" in html
    total = re.search(r'<tr class="total"[^>]*>(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", total)
    assert cells[:4] == ["合计", "7", "5", "71.4%"]

    by_proc = reviewer.get("/stats?by=procedure&process=medical_insurance&from=2026-09-01").get_data(as_text=True)
    assert "25.0%" not in by_proc and "0.0%" in by_proc                   # from September: reply 0 of 3 met

    csv_body = reviewer.get("/stats.csv").get_data().decode("utf-8-sig")
    read = list(csv.reader(io.StringIO(csv_body)))
    headers, rows = table(statistics(svc, now=at(NOW)))
    assert read[0] == headers and read[-1][:4] == ["合计", "7", "5", str(round(5 / 7, 4))]
    xlsx = reviewer.get("/stats.xlsx?by=category")
    assert xlsx.headers["Content-Disposition"].endswith('by-category.xlsx"')
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.get_data())).active
    values = [[c.value for c in r] for r in sheet.iter_rows()]
    assert values[0][:3] == ["类别", "受理量", "办结量"] and values[-1][:4] == ["合计", 7, 5, round(5 / 7, 4)]

    assert signed_in("wu").get("/stats").status_code == 200                   # managers too
    clerk = signed_in("li")
    assert 'href="/stats"' not in clerk.get("/").get_data(as_text=True)
    for path in ("/stats", "/stats.csv", "/stats.xlsx"):
        assert clerk.get(path).status_code == 403
    refused = [e for e in svc.access_log(refused_only=True) if e["user"] == "li"]
    assert {e["action"] for e in refused} == {"view_stats", "download_stats"}
    assert reviewer.get("/stats?from=May").status_code == 400
    assert reviewer.get("/stats?by=weekday").status_code == 400
