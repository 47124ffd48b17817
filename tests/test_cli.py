"""The complaintflow command as a user types it (click's runner, real SQLite file)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from complaintflow.web.cli import cli

INTAKE = {"subject": "快递丢失", "due_at": "2026-05-07T12:00:00+08:00"}


@pytest.fixture
def run(tmp_path, mini_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPLAINTFLOW_NOW", raising=False)
    monkeypatch.delenv("COMPLAINTFLOW_DATABASE_URL", raising=False)
    # The fixture process uses a handler the shipped registry lacks; add it the way an
    # operator adds their own handler modules.
    monkeypatch.setenv("COMPLAINTFLOW_HANDLERS", "support_handlers")
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result
    return invoke


def test_deploy_start_complete_show_history_replay(run, mini_dir, tmp_path):
    assert "deployed as new version 1" in run("deploy", mini_dir).output
    assert "unchanged, still version 1" in run("deploy", mini_dir).output
    assert (tmp_path / "var" / "complaintflow.sqlite3").exists()

    (tmp_path / "intake.json").write_text(json.dumps(INTAKE, ensure_ascii=False), encoding="utf-8")
    started = json.loads(run("--now", "2026-05-06T09:00:00", "start", "mini", "--data", "@intake.json",
                             "--user", "alice", "--json").output)
    assert started["case_number"] == "MINI-2026-000001"
    iid = started["instance_id"]

    tasks = json.loads(run("tasks", "--role", "reception", "--json").output)
    assert set(tasks[0]) == {"task_id", "instance_id", "process_id", "case_number", "task", "name", "role", "form",
                             "status", "created", "due", "completed", "completed_by", "priority", "assignee"}
    out = run("--now", "2026-05-06T10:00:00", "complete", tasks[0]["task_id"], "--user", "bob",
              "--data", '{"verdict": "ok"}').output
    assert "completed; case MINI-2026-000001 is running" in out

    shown = json.loads(run("show", "MINI-2026-000001", "--json").output)
    assert shown["instance_id"] == iid and [t["task"] for t in shown["open_tasks"]] == ["close"]
    text = run("show", iid).output
    assert "case MINI-2026-000001" in text and "Close" in text

    history = run("history", iid).output
    assert "task_completed" in history and "bob" in history and '"verdict": "ok"' in history
    assert "2026-05-06T10:00:00+08:00" in history
    verified = run("replay", iid, "--verify")
    assert "consistent" in verified.output


def test_now_makes_the_promised_time_pass(run, mini_dir):
    run("deploy", mini_dir)
    run("--now", "2026-05-06T09:00:00+08:00", "start", "mini", "--data", json.dumps(INTAKE))
    assert "0 timer(s) fired" in run("--now", "2026-05-07T11:59:00+08:00", "tick").output
    assert "1 timer(s) fired in 1 case(s)" in run("--now", "2026-05-07T12:00:00+08:00", "tick").output
    assert "Supervise" in run("tasks", "--role", "manager").output


def test_now_from_the_environment(run, mini_dir, monkeypatch):
    run("deploy", mini_dir)
    monkeypatch.setenv("COMPLAINTFLOW_NOW", "2026-05-06T09:00:00+08:00")
    started = json.loads(run("start", "mini", "--data", json.dumps(INTAKE), "--json").output)
    monkeypatch.setenv("COMPLAINTFLOW_NOW", "2026-05-08T09:00:00+08:00")
    run("tick")
    shown = json.loads(run("show", started["instance_id"], "--json").output)
    assert shown["received"] == "2026-05-06T01:00:00+00:00"
    assert "supervise" in [t["task"] for t in shown["open_tasks"]]


@pytest.mark.parametrize("args, code, words", [
    (["start", "mini", "--data", "{not json"], 2, "--data is not valid JSON"),
    (["start", "mini", "--data", "[1]"], 2, "must be a JSON object"),
    (["start", "mini", "--data", "@missing.json"], 2, "does not exist"),
    (["start", "mini", "--data", '{"subject": ""}'], 2, "due_at"),
    (["start", "nope", "--data", "{}"], 3, "process 'nope' is not deployed"),
    (["complete", "no-such-task", "--user", "bob", "--data", "{}"], 3, "there is no task"),
    (["show", "no-such-case"], 3, "there is no case"),
    (["--now", "yesterday", "tick"], 2, "not an ISO 8601"),
])
def test_user_errors_get_a_message_and_an_exit_code(run, mini_dir, args, code, words):
    run("deploy", mini_dir)
    result = run(*args, ok=False)
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_double_completion_from_the_cli(run, mini_dir):
    run("deploy", mini_dir)
    iid = json.loads(run("start", "mini", "--data", json.dumps(INTAKE), "--json").output)["instance_id"]
    task = json.loads(run("tasks", "--instance", iid, "--json").output)[0]
    run("complete", task["task_id"], "--user", "bob", "--data", '{"verdict": "ok"}')
    again = run("complete", task["task_id"], "--user", "carol", "--data", '{"verdict": "ok"}', ok=False)
    assert again.exit_code == 5 and "already completed by bob" in again.output


def test_validate_reports_problems_with_exit_code_4(run, mini_dir):
    text = (mini_dir / "mini.bpmn").read_text(encoding="utf-8").replace('id="test.flaky"', 'id="nope"')
    (mini_dir / "mini.bpmn").write_text(text, encoding="utf-8")
    result = run("validate", mini_dir, ok=False)
    assert result.exit_code == 4 and "unknown handler 'nope'" in result.output
    as_json = json.loads(run("validate", mini_dir, "--json", ok=False).output)
    assert as_json["ok"] is False and as_json["problems"][0]["element"] == "flaky"
    deploy = run("deploy", mini_dir, ok=False)
    assert deploy.exit_code == 4 and "nothing was deployed" in deploy.output
    assert json.loads(run("processes", "--json").output) == []


def test_replay_verify_fails_with_exit_code_7_on_tampering(run, mini_dir, tmp_path):
    import sqlite3
    run("deploy", mini_dir)
    iid = json.loads(run("start", "mini", "--data", json.dumps(INTAKE), "--json").output)["instance_id"]
    con = sqlite3.connect(tmp_path / "var" / "complaintflow.sqlite3")
    con.execute("UPDATE events SET actor = 'mallory' WHERE seq = 1")
    con.commit()
    con.close()
    result = run("replay", iid, "--verify", ok=False)
    assert result.exit_code == 7 and "INCONSISTENT at event 1" in result.output


def test_show_prints_the_deadlines_of_a_case(run, tmp_path):
    from conftest import PROCESSES
    run("deploy", PROCESSES)
    intake = {"channel": "hotline", "complainant": "王女士", "contact": "138", "category": "returns",
              "content": "退货未退款", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}
    case = json.loads(run("--now", "2026-05-06T09:00", "start", "enterprise_customer", "--data",
                          json.dumps(intake, ensure_ascii=False), "--json").output)
    run("--now", "2026-05-08T17:00", "tick")
    text = run("--now", "2026-05-08T17:05", "show", case["case_number"]).output
    assert "deadlines:" in text and "promised" in text and "breached" in text and "[a fixed moment]" in text
    assert "向客户承诺的解决时间" in text and "000:127" in text
    shown = json.loads(run("show", case["instance_id"], "--json").output)
    assert set(shown["deadlines"][0]) == {"name", "rule", "seed", "unit", "amount", "start", "due", "last_day",
                                          "provisional", "status", "paused_days", "paused_seconds",
                                          "paused_since", "extended_by", "breached_at", "completed", "round"}
    assert shown["deadlines"][0]["round"] == 1


def test_hash_password_prints_a_hash_the_users_file_accepts():
    from werkzeug.security import check_password_hash
    result = CliRunner().invoke(cli, ["hash-password"], input="correct horse\ncorrect horse\n")
    assert result.exit_code == 0
    digest = result.output.strip().splitlines()[-1]
    assert check_password_hash(digest, "correct horse") and "correct horse" not in digest
    short = CliRunner().invoke(cli, ["hash-password", "--password", "short"])
    assert short.exit_code == 2 and "at least 8 characters" in short.output
