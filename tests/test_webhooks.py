"""Outbound webhooks (docs/api.md, "Webhooks"), sent over real HTTP to a receiver the test
starts on 127.0.0.1: each event kind signed with the receiver's secret, retried with backoff
on a controlled clock, nothing queued by an action that was rolled back, and each row sent
once by two deliverer processes running at the same time."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from complaintflow.engine import outbox
from complaintflow.engine.clock import parse_instant
from complaintflow.engine.errors import Conflict
from complaintflow.engine.models import Outbox
from complaintflow.engine.service import ComplaintService
from complaintflow.handlers import default_registry
from complaintflow.web.cli import cli
from complaintflow.web.scheduler import start_scheduler
from conftest import TEST_CHAIN_KEY, copy_fixture, first_scheduler_tick, open_task

INTAKE = {"subject": "发票开错", "due_at": "2026-05-07T12:00:00+08:00"}
SECRET = "s3cret-for-the-hotline-0001"
CLI = str(Path(sys.executable).parent / "complaintflow")

both = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


class Receiver:
    """A tiny HTTP server on 127.0.0.1: records every POST and answers with the next status
    of `answers` (200 when none is left). With `meet=2` the first two requests wait for each
    other before they are answered: proof that two senders were sending at the same time."""

    def __init__(self, answers=(), meet: int | None = None):
        self.got: list[dict] = []
        self.answers = list(answers)
        self.lock = threading.Lock()
        self.arrived = threading.Event()
        self.meeting = threading.Barrier(meet, timeout=60) if meet else None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.got.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    receiver.arrived.set()
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    meet = receiver.meeting if len(receiver.got) <= (receiver.meeting.parties if receiver.meeting else 0) else None
                if meet is not None:
                    try:
                        meet.wait()
                    except threading.BrokenBarrierError:
                        status = 503
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"receiver is down")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def bodies(self, path=None):
        return [json.loads(r["body"]) for r in self.got if path is None or r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*args, **kw):
        r = Receiver(*args, **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


@pytest.fixture
def hooks_file(tmp_path, monkeypatch):
    path = tmp_path / "webhooks.json"
    monkeypatch.setenv(outbox.FILE_SETTING, str(path))

    def write(entries):
        path.write_text(json.dumps(entries), encoding="utf-8")
        os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))   # seen as changed at once
        return path
    return write


def signature_ok(request, secret=SECRET) -> bool:
    """What a receiver does (docs/api.md): HMAC-SHA256 of the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request["headers"]["X-Complaintflow-Signature"])


def outbox_rows(service):
    with service.sessions() as s:
        return list(s.execute(select(Outbox).order_by(Outbox.id)).scalars())


@both
def test_every_kind_reaches_the_receivers_that_asked_for_it_signed(mini, switch, receiver, hooks_file):
    switch.fail = False
    r = receiver()
    hooks_file([{"url": r.url("/all"), "secret": SECRET, "processes": "*", "events": list(outbox.KINDS)},
                {"url": r.url("/closed"), "secret": "another-secret-0002", "processes": ["mini"],
                 "events": ["case_closed"]},
                {"url": r.url("/other"), "secret": SECRET, "processes": ["tourism"], "events": list(outbox.KINDS)}])
    case = mini.start("mini", INTAKE, "alice")
    mini.complete_task(open_task(mini, case.instance_id, "review")["task_id"], "bob", {"verdict": "ok"})
    mini.complete_task(open_task(mini, case.instance_id, "close")["task_id"], "bob", {"note": "done"})
    assert r.got == []                                  # nothing is sent inside an action
    mini.send_message(case.instance_id, "customer_reply", {"reply": "thanks"}, "bob")

    assert outbox.deliver(mini) == {"sent": 5, "retrying": 0, "failed": 0}
    everything = r.bodies("/all")
    assert [(b["kind"], (b.get("task") or {}).get("task")) for b in everything] == [
        ("case_started", None), ("task_created", "review"), ("task_created", "close"), ("case_closed", None)]
    assert {b["case"]["case_number"] for b in everything} == {case.case_number}
    assert everything[-1]["case"]["status"] == "completed"
    assert everything[1]["task"]["due"] == "2026-05-07T04:00:00+00:00"
    for request in r.got:
        body = json.loads(request["body"])
        assert request["headers"]["X-Complaintflow-Event-Id"] == body["event_id"]
        assert request["headers"]["X-Complaintflow-Event"] == body["kind"]
        assert request["headers"]["X-Complaintflow-Timestamp"]
    assert all(signature_ok(q) for q in r.got if q["path"] == "/all")
    closed = [q for q in r.got if q["path"] == "/closed"]
    assert [json.loads(q["body"])["kind"] for q in closed] == ["case_closed"]
    assert signature_ok(closed[0], "another-secret-0002") and not signature_ok(closed[0])
    # the two receivers of the closing get the same event id, so either can deduplicate
    assert json.loads(closed[0]["body"])["event_id"] == everything[-1]["event_id"]
    assert r.bodies("/other") == []
    assert outbox.deliver(mini) == {"sent": 0, "retrying": 0, "failed": 0}      # sent once


def test_a_breached_limit_is_told_and_a_reminder_is_not(service, clock, tmp_path, receiver, hooks_file):
    service.deploy([copy_fixture(tmp_path, "limits")])
    r = receiver()
    hooks_file([{"url": r.url(), "secret": SECRET, "processes": ["limits"], "events": ["deadline_breached"]}])
    clock.set(parse_instant("2026-09-28T10:00"))
    case = service.start("limits", {"subject": "奶粉中有异物", "contact": "13900000000"}, "reception")
    clock.set(parse_instant("2026-10-09T00:00"))
    assert service.tick()["timers_fired"] == 1
    outbox.deliver(service)
    assert [(b["kind"], b["deadline"]["name"], b["case"]["instance_id"]) for b in r.bodies()] == [
        ("deadline_breached", "accept", case.instance_id)]
    assert signature_ok(r.got[0])


def test_the_scheduler_of_serve_sends_after_its_tick(mini, receiver, hooks_file):
    r = receiver()
    hooks_file([{"url": r.url(), "secret": SECRET, "processes": ["mini"], "events": ["case_started"]}])
    case = mini.start("mini", INTAKE, "alice")
    first_scheduler_tick(mini, r.arrived, "the scheduler sent nothing")
    assert [(b["kind"], b["case"]["instance_id"]) for b in r.bodies()] == [("case_started", case.instance_id)]
    assert outbox.list_rows(mini)[0]["status"] == "sent"


def test_a_refused_delivery_is_retried_with_growing_backoff_then_sent(mini, clock, receiver, hooks_file):
    r = receiver(answers=[500, 500])
    hooks_file([{"url": r.url(), "secret": SECRET, "processes": "*", "events": ["case_started"]}])
    mini.start("mini", INTAKE, "alice")
    assert outbox.deliver(mini) == {"sent": 0, "retrying": 1, "failed": 0}
    (row,) = outbox.list_rows(mini, failed=True)
    assert row["attempts"] == 1 and row["last_error"].startswith("HTTP 500")
    assert row["next_attempt"] == "2026-05-06T01:01:00+00:00"          # 1 minute later
    assert outbox.deliver(mini)["retrying"] == 0 and len(r.got) == 1   # not due yet: not sent
    clock.advance(minutes=1)
    assert outbox.deliver(mini)["retrying"] == 1
    assert outbox.list_rows(mini)[0]["next_attempt"] == "2026-05-06T01:03:00+00:00"   # then 2 minutes
    clock.advance(minutes=1)
    assert outbox.deliver(mini)["sent"] == 0
    clock.advance(minutes=1)
    assert outbox.deliver(mini) == {"sent": 1, "retrying": 0, "failed": 0}
    assert len(r.got) == 3 and len({q["headers"]["X-Complaintflow-Event-Id"] for q in r.got}) == 1
    assert outbox.list_rows(mini, failed=True) == []
    assert outbox.list_rows(mini)[0]["status"] == "sent"


def test_a_receiver_that_never_answers_well_is_given_up_listed_and_can_be_resent(
        mini, clock, receiver, hooks_file, db_url, chain_key_env, monkeypatch):
    r = receiver(answers=[500] * outbox.MAX_ATTEMPTS)
    hooks_file([{"url": r.url(), "secret": SECRET, "processes": "*", "events": ["case_started"]}])
    mini.start("mini", INTAKE, "alice")
    for _ in range(outbox.MAX_ATTEMPTS):
        outbox.deliver(mini)
        clock.advance(hours=7)
    assert len(r.got) == outbox.MAX_ATTEMPTS
    for name, value in chain_key_env.items():
        monkeypatch.setenv(name, value)
    run = CliRunner()
    listed = run.invoke(cli, ["--db", db_url, "webhooks", "list", "--failed", "--json"], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["status"] == "failed" and row["attempts"] == outbox.MAX_ATTEMPTS
    assert outbox.deliver(mini)["sent"] == 0                            # given up: not sent again
    resent = run.invoke(cli, ["--db", db_url, "--now", "2026-05-10T09:00", "webhooks", "resend", str(row["id"])],
                        catch_exceptions=False)
    assert resent.exit_code == 0 and f"delivery {row['id']} (case_started" in resent.output, resent.output
    delivered = run.invoke(cli, ["--db", db_url, "--now", "2026-05-10T09:00", "webhooks", "deliver", "--json"],
                           catch_exceptions=False)
    assert json.loads(delivered.output) == {"sent": 1, "retrying": 0, "failed": 0}
    assert len({q["body"] for q in r.got}) == 1                         # the same body every time
    missing = run.invoke(cli, ["--db", db_url, "webhooks", "resend", "999"])
    assert missing.exit_code != 0 and "no webhook delivery 999" in missing.output


def test_an_action_rolled_back_leaves_nothing_in_the_outbox(mini, make_service, db_url, clock, receiver, hooks_file):
    hooks_file([{"url": receiver().url(), "secret": SECRET, "processes": "*", "events": list(outbox.KINDS)}])
    case = mini.start("mini", INTAKE, "alice")
    review = open_task(mini, case.instance_id, "review")["task_id"]
    before = [(o.kind, o.event_id) for o in outbox_rows(mini)]
    assert [k for k, _ in before] == ["case_started", "task_created"]
    colleague = make_service()

    def claimed_meanwhile(ctx):       # while bob's completion runs, carol claims the task
        colleague.claim_task(review, "carol")
        return {}
    handlers = default_registry()
    handlers.register("test.flaky", claimed_meanwhile)
    bobs = ComplaintService(db_url, clock=clock, handlers=handlers, chain_key=TEST_CHAIN_KEY)
    with pytest.raises(Conflict, match="carol"):
        bobs.complete_task(review, "bob", {"verdict": "ok"})
    assert [(o.kind, o.event_id) for o in outbox_rows(mini)] == before     # no "close" task_created
    assert open_task(mini, case.instance_id, "review")["status"] == "open"        # bob's completion undone


def test_a_broken_webhooks_file_is_refused_naming_the_entry(tmp_path, hooks_file):
    good = {"url": "http://127.0.0.1:9/x", "secret": SECRET, "processes": "*", "events": ["case_closed"]}
    cases = [
        ([good, {**good, "url": "ftp://x"}], "entry 2: url must be an http:// or https:// address"),
        ([{**good, "events": ["case_opened"]}], "entry 1 (http://127.0.0.1:9/x): unknown event kind(s) case_opened"),
        ([{**good, "secret": "short"}], "at least 16 characters"),
        ([{**good, "secret_file": "nope.txt"}], "exactly one of secret and secret_file"),
        ([{k: v for k, v in good.items() if k != "secret"} | {"secret_file": "nope.txt"}], "nope.txt cannot be read"),
        ([{**good, "processes": []}], 'processes must be "*" or a non-empty list'),
        ([good, good], "listed twice"),
    ]
    for entries, message in cases:
        path = hooks_file(entries)
        with pytest.raises(outbox.WebhookConfigError, match=None) as err:
            outbox.load_config()
        assert str(path) in str(err.value) and message in str(err.value), str(err.value)
    checked = CliRunner().invoke(cli, ["webhooks", "check"])
    assert checked.exit_code == 2 and "listed twice" in checked.output, checked.output
    with pytest.raises(outbox.WebhookConfigError, match="listed twice"):     # `serve` does not start
        start_scheduler(None, 30)
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    hooks_file([{k: v for k, v in good.items() if k != "secret"} | {"secret_file": "secret.txt"}])
    assert outbox.load_config()[0].secret == SECRET.encode()
    checked = CliRunner().invoke(cli, ["webhooks", "check"])
    assert checked.exit_code == 0 and checked.output == "http://127.0.0.1:9/x: case_closed of every procedure\n"


@both
def test_two_deliverer_processes_at_once_send_each_row_once(mini, receiver, hooks_file, db_url, chain_key_env, tmp_path):
    r = receiver(meet=2)
    path = hooks_file([{"url": r.url(), "secret": SECRET, "processes": "*", "events": ["case_started", "task_created"]}])
    for _ in range(8):
        mini.start("mini", INTAKE, "alice")
    rows = outbox_rows(mini)
    assert len(rows) == 16
    env = dict(os.environ, **chain_key_env, COMPLAINTFLOW_DATABASE_URL=db_url, COMPLAINTFLOW_WEBHOOKS_FILE=str(path),
               COMPLAINTFLOW_HANDLERS="support_handlers", PYTHONPATH=str(Path(__file__).parent))
    procs = [subprocess.Popen([CLI, "--now", "2026-05-06T10:00", "webhooks", "deliver", "--json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [code for code, _, _ in done] == [0, 0], done
    counts = [json.loads(out) for _, out, _ in done]
    assert sum(c["sent"] for c in counts) == 16 and all(c["sent"] > 0 for c in counts), counts
    ids = [q["headers"]["X-Complaintflow-Event-Id"] for q in r.got]
    assert sorted(ids) == sorted(o.event_id for o in rows)             # every row, each once
    with mini.sessions() as s:
        assert s.execute(select(func.count()).select_from(Outbox).where(Outbox.status == "sent")).scalar() == 16
