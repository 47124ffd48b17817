"""A case that ends without the work being done (撤回 withdrawal, 视为撤回) stops its running
limits as `stopped` (「已终止（未到期）」): neither met nor breached, and left out of the
on-time rates. A limit whose step was done before the end stays met; one that had already run
out stays breached.

Walked on the tourism procedure (旅游投诉处理办法) with a controlled clock; dates 2026, Beijing
time. A case received Tue 04-28, accepted and served 04-30: the respondent's answer is due
within 10 days of service (last day Mon 05-11, Sun 05-10 rolled forward).
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from click.testing import CliRunner
from werkzeug.security import generate_password_hash

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.review.history import readable_history
from complaintflow.engine.review.stats import statistics
from complaintflow.web import dossier
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.cli import cli
from complaintflow.web.users import load_users
from conftest import PROCESSES, open_task
from test_tourism import INTAKE, REVIEW_OK, WITHDRAWAL

STAFF = "staff_wang"
STOPPED = "已终止（未到期）"


def at(text):
    return parse_instant(text)


def do(svc, case, task, data, user=STAFF):
    return svc.complete_task(open_task(svc, case.instance_id, task)["task_id"], user, data)


def served(svc, clock, received="2026-04-28T09:00", served_at="2026-04-30T10:00"):
    """A tourism case accepted, filed and served on the respondent: the answer is awaited."""
    clock.set(at(received))
    case = svc.start("tourism", dict(INTAKE, received_at=received), "registrar_chen")
    do(svc, case, "review_admissibility", REVIEW_OK)
    do(svc, case, "file_case", {"filing_no": "LA-2026-001", "filing_summary": "擅自取消行程", "materials_attached": True})
    clock.set(at(served_at))
    do(svc, case, "confirm_service", {"served_at": served_at, "service_method": "post"})
    return case


def limits(svc, case) -> dict:
    return {d["name"]: d["status"] for d in svc.show(case.instance_id)["deadlines"]}


def withdraw(svc, clock, case, when):
    clock.set(at(when))
    svc.send_message(case.instance_id, "withdrawal", WITHDRAWAL, STAFF)


@pytest.fixture
def ly(service):
    service.deploy([PROCESSES / "tourism.bpmn"])
    return service


def test_a_withdrawal_stops_the_running_limits_and_keeps_the_ones_already_met(ly, clock):
    case = served(ly, clock)
    assert limits(ly, case) == {"accept": "met", "serve": "met", "answer": "open", "outcome": "open"}
    withdraw(ly, clock, case, "2026-05-06T10:00")
    # acceptance and service were done before the withdrawal: met; the answer never came and
    # no handling decision was made: stopped, not "on time"
    assert limits(ly, case) == {"accept": "met", "serve": "met", "answer": "stopped", "outcome": "stopped"}
    answer = next(d for d in ly.show(case.instance_id)["deadlines"] if d["name"] == "answer")
    assert answer["completed"] == "2026-05-06T02:00:00+00:00" and answer["breached_at"] is None
    # the day the answer would have run out: nothing turns the stopped limit into a breach
    clock.set(at("2026-05-12T09:00"))
    ly.tick()
    assert limits(ly, case)["answer"] == "stopped"
    assert ly.show(case.instance_id)["legal_state"] == "withdrawn"
    assert ly.replay(case.instance_id).consistent is True


def test_a_withdrawal_after_a_limit_ran_out_leaves_it_breached(ly, clock):
    case = served(ly, clock)
    clock.set(at("2026-05-12T00:00"))            # the answer's last day (05-11) has passed
    ly.tick()
    assert limits(ly, case)["answer"] == "breached"
    withdraw(ly, clock, case, "2026-05-12T10:00")
    assert limits(ly, case) == {"accept": "met", "serve": "met", "answer": "breached", "outcome": "stopped"}


def test_the_reviewer_reads_stopped_in_the_history_on_the_case_page_and_in_the_dossier(ly, clock, tmp_path):
    case = served(ly, clock)
    withdraw(ly, clock, case, "2026-05-06T10:00")
    number = ly.show(case.instance_id)["case_number"]
    roles = load_roles(PROCESSES)
    roles.setdefault("reviewer", {"zh": "质控/合规审查", "en": "Compliance review"})["reviews"] = True

    lines = [e["sentence"] for e in readable_history(ly, case.instance_id, may_see_identity=False, roles=roles)]
    ended = [line for line in lines if line.startswith("时限「")]
    assert ended == ["时限「accept」结束：按时完成", "时限「serve」结束：按时完成",
                     f"时限「answer」结束：{STOPPED}", f"时限「outcome」结束：{STOPPED}"]

    digest = generate_password_hash("demo", method="pbkdf2:sha256:1000")
    users = tmp_path / "users.toml"
    users.write_text(f'[users.qa]\nname = "质控员"\nroles = ["reviewer"]\npassword_hash = "{digest}"\n',
                     encoding="utf-8")
    app = create_app(ly, users=load_users(users, set(roles)), roles=roles, secret_key="test", testing=True)
    client = app.test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"login": "qa", "password": "demo", "csrf_token": csrf}).status_code == 302
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    rows = dict(re.findall(r'data-deadline="(\w+)">.*?<span class="badge badge-\w+">([^<]+)</span>', page, re.S))
    assert rows == {"accept": "按时完成", "serve": "按时完成", "answer": STOPPED, "outcome": STOPPED}

    html = dossier.render_html(dossier.build(ly, number, may_see_identity=False, exported_by="qa", roles=roles))
    cells = dict(re.findall(r'data-deadline="(\w+)">.*?<td class="status-\w+">([^<]+?)\s*(?:<br>|</td>)', html, re.S))
    assert cells == {"accept": "按时完成", "serve": "按时完成", "answer": STOPPED, "outcome": STOPPED}
    assert "终止于 2026年05月06日 10:00" in html


def test_show_prints_stopped(ly, clock, db_url, chain_key_env):
    case = served(ly, clock)
    withdraw(ly, clock, case, "2026-05-06T10:00")
    out = CliRunner(env=chain_key_env).invoke(cli, ["--db", db_url, "--now", "2026-05-07T09:00", "show",
                                                    case.instance_id])
    assert out.exit_code == 0, out.output
    assert re.search(r"^\s+answer\s+stopped\s", out.output, re.M)
    assert re.search(r"^\s+accept\s+met\s", out.output, re.M)


def test_stopped_limits_are_left_out_of_the_on_time_rates(ly, clock):
    kept = served(ly, clock)                                     # LY-2026-000001: the answer came in time
    clock.set(at("2026-05-06T10:00"))
    do(ly, kept, "record_answer", {"answer_status": "answered", "answer_received_at": "2026-05-06T10:00",
                                   "answer_facts_reasons": "因天气原因取消"})
    withdrawn = served(ly, clock)                                # LY-2026-000002: withdrawn before the answer
    withdraw(ly, clock, withdrawn, "2026-05-07T10:00")
    assert limits(ly, kept)["answer"] == "met" and limits(ly, withdrawn)["answer"] == "stopped"

    # long after both limits' due moments: the stopped ones are neither met nor breached
    figures = statistics(ly, process_id="tourism", date_from=date(2026, 4, 1), date_to=date(2026, 8, 31),
                         by="procedure", now=at("2026-08-31T12:00"))
    total = figures["total"]
    assert total["ontime"]["answer"] == {"met": 1, "breached": 0, "rate": 1.0}
    assert total["ontime"]["accept"] == {"met": 2, "breached": 0, "rate": 1.0}
    # the kept case's 60-day outcome limit ran out with no decision (breached); the withdrawn
    # case's was stopped and is not counted
    assert total["ontime"]["outcome"] == {"met": 0, "breached": 1, "rate": 0.0}
    assert (total["ontime_met"], total["ontime_breached"]) == (2 + 2 + 1, 1)
