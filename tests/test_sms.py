"""The SMS notice channel (docs/notices.md), sent over real HTTP to a fake SMS gateway the
test starts on 127.0.0.1: a notice to a mobile number arrives with the case number and text;
with the gateway down the case's action still succeeds and the SMS is delivered once the
gateway is back (controlled clock, delivery driven explicitly); a 4xx answer is given up with
the gateway's reason; without COMPLAINTFLOW_SMS_URL every notice goes to the log."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from complaintflow.engine import outbox
from complaintflow.engine.case_services import LogNotifier
from complaintflow.engine.errors import Conflict, InvalidInput
from complaintflow.engine.service import ComplaintService
from complaintflow.engine.sms import Gateway, SmsGatewayNotifier, mobile_number, notifier_from_env
from complaintflow.web.cli import cli
from conftest import TEST_CHAIN_KEY, copy_fixture, first_scheduler_tick, open_task

INTAKE = {"contact": "138 0013 8000", "content": "新买的电水壶漏水"}
TOKEN = "gateway-token-0001"

both = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


class FakeGateway:
    """An SMS gateway on 127.0.0.1: keeps every request and answers with the next (status,
    JSON body) of `answers`, 200 {"result": "accepted"} when none is left. `stop()` closes its
    port (the gateway is down: connections are refused); `start()` opens the same port again."""

    def __init__(self, answers=()):
        self.got: list[dict] = []
        self.answers = list(answers)
        self.arrived = threading.Event()
        self.port = 0
        self.server = None
        self.start()

    def start(self):
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gateway.got.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                status, answer = gateway.answers.pop(0) if gateway.answers else (200, {"result": "accepted"})
                data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                gateway.arrived.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/sms/send"

    def texts(self):
        return [(r["body"]["to"], r["body"]["text"]) for r in self.got]


@pytest.fixture
def gateway():
    made = FakeGateway()
    yield made
    made.stop()


@pytest.fixture
def sms_dir(tmp_path):
    return copy_fixture(tmp_path, "sms")


@pytest.fixture
def sms_service(db_url, clock, gateway, sms_dir):
    service = ComplaintService(db_url, clock=clock, chain_key=TEST_CHAIN_KEY,
                               notifier=SmsGatewayNotifier(Gateway(gateway.url, TOKEN)))
    service.deploy([sms_dir])
    return service


def reply(service, case, answer):
    return service.complete_task(open_task(service, case.instance_id, "reply")["task_id"], "li", {"answer": answer})


def handler_outputs(service, case):
    return [e["payload"]["outputs"] for e in service.history(case.instance_id) if e["kind"] == "handler_called"
            and e["payload"]["handler"].startswith("notify.")]


def run_cli(args, env):
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


# --- what is sent, to whom -------------------------------------------------------------

@both
def test_a_notice_to_a_mobile_number_reaches_the_gateway_with_the_case_number_and_text(sms_service, gateway):
    case = sms_service.start("sms_notice", INTAKE, "li")
    assert gateway.got == []                                 # nothing is sent inside the action
    assert outbox.deliver(sms_service) == {"sent": 1, "retrying": 0, "failed": 0}
    (request,) = gateway.got                                 # the staff notice went to the log, not here
    body = request["body"]
    assert request["path"] == "/sms/send"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert request["headers"]["X-Complaintflow-Message-Id"] == body["id"]
    assert body == {"id": body["id"], "to": "13800138000", "kind": "acknowledgement",
                    "case_number": case.case_number, "text": f"您的投诉已登记，编号 {case.case_number}。"}
    assert case.case_number == "SMS-2026-000001"

    done = reply(sms_service, case, "已为您换新，请到门店领取")
    assert done.status == "completed"
    assert outbox.deliver(sms_service)["sent"] == 1
    assert gateway.texts()[1] == ("13800138000", "已为您换新，请到门店领取")
    assert [o["channel"] for o in handler_outputs(sms_service, case)] == ["sms", "log", "sms"]
    assert outbox.deliver(sms_service) == {"sent": 0, "retrying": 0, "failed": 0}     # each sent once
    assert outbox.list_rows(sms_service) == []               # SMS are not listed as webhook deliveries
    rows = outbox.list_rows(sms_service, channel="sms")
    assert [(r["status"], r["to"], r["notice"], r["case_number"]) for r in rows] == [
        ("sent", "13800138000", "complainant", case.case_number),
        ("sent", "13800138000", "acknowledgement", case.case_number)]
    assert sms_service.replay(case.instance_id).consistent    # the log replays as before


def test_a_contact_that_is_not_a_mobile_number_goes_to_the_log(sms_service, gateway):
    case = sms_service.start("sms_notice", {**INTAKE, "contact": "010-6512 3456"}, "li")    # a landline
    reply(sms_service, case, "已处理")
    assert outbox.deliver(sms_service)["sent"] == 0 and gateway.got == []
    assert [o["channel"] for o in handler_outputs(sms_service, case)] == ["log", "log", "log"]
    assert outbox.list_rows(sms_service, channel="sms") == []


def test_an_action_rolled_back_queues_no_sms(sms_service, gateway, db_url, clock):
    case = sms_service.start("sms_notice", INTAKE, "li")
    task = open_task(sms_service, case.instance_id, "reply")["task_id"]

    class ClaimedMeanwhile(SmsGatewayNotifier):
        """The real SMS notifier; while its notice is being given, a colleague claims the task."""

        def send(self, *args, **kw):
            sms_service.claim_task(task, "carol")
            return super().send(*args, **kw)
    bobs = ComplaintService(db_url, clock=clock, chain_key=TEST_CHAIN_KEY,
                            notifier=ClaimedMeanwhile(Gateway(gateway.url, TOKEN)))
    with pytest.raises(Conflict, match="carol"):
        bobs.complete_task(task, "bob", {"answer": "已为您换新"})
    assert outbox.deliver(sms_service)["sent"] == 1
    assert [text for _, text in gateway.texts()] == [f"您的投诉已登记，编号 {case.case_number}。"]   # not the answer


@pytest.mark.parametrize("written, number", [
    ("13800138000", "13800138000"), ("+86 138-0013-8000", "13800138000"), ("0086 19912345678", "19912345678"),
    ("12345678901", None), ("1380013800", None), ("010-65123456", None), ("wang@example.com", None),
    ("role:manager", None), (None, None)])
def test_only_a_mainland_mobile_number_is_texted(written, number):
    assert mobile_number(written) == number


# --- the gateway down, refusing, back ----------------------------------------------------

@both
def test_with_the_gateway_down_the_case_goes_on_and_the_sms_is_delivered_when_it_is_back(
        sms_service, gateway, clock, db_url, chain_key_env):
    gateway.stop()
    case = sms_service.start("sms_notice", INTAKE, "li")
    assert case.status == "running" and case.case_number == "SMS-2026-000001"
    assert reply(sms_service, case, "已为您换新").status == "completed"      # the action does not wait for SMS
    assert outbox.deliver(sms_service) == {"sent": 0, "retrying": 2, "failed": 0}

    env = {**chain_key_env, "COMPLAINTFLOW_SMS_URL": gateway.url}
    listed = run_cli(["--db", db_url, "sms", "list", "--undelivered", "--json"], env)
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["notice"], r["status"], r["attempts"], r["next_attempt"]) for r in rows] == [
        ("complainant", "pending", 1, "2026-05-06T01:01:00+00:00"),
        ("acknowledgement", "pending", 1, "2026-05-06T01:01:00+00:00")]      # tried again a minute later
    assert all("Connection refused" in r["last_error"] for r in rows), rows
    text = run_cli(["--db", db_url, "sms", "list", "--undelivered"], env).output
    assert f"{case.case_number}  13800138000  acknowledgement  next 2026-05-06T09:01:00+08:00" in text
    assert "last error: URLError: [Errno 111] Connection refused" in text

    clock.advance(seconds=30)
    assert outbox.deliver(sms_service) == {"sent": 0, "retrying": 0, "failed": 0}     # not due yet
    gateway.start()                                          # the gateway is back
    assert outbox.deliver(sms_service) == {"sent": 0, "retrying": 0, "failed": 0} and gateway.got == []
    clock.advance(seconds=30)
    assert outbox.deliver(sms_service) == {"sent": 2, "retrying": 0, "failed": 0}
    assert gateway.texts() == [("13800138000", f"您的投诉已登记，编号 {case.case_number}。"),
                               ("13800138000", "已为您换新")]
    assert "every SMS was delivered" in run_cli(["--db", db_url, "sms", "list", "--undelivered"], env).output


@pytest.mark.parametrize("status", [503, 429])
def test_a_busy_or_failing_gateway_is_retried_with_growing_backoff(sms_service, gateway, clock, status):
    gateway.answers = [(status, {"error": "busy"})] * 2
    sms_service.start("sms_notice", INTAKE, "li")
    assert outbox.deliver(sms_service)["retrying"] == 1
    clock.advance(minutes=1)
    assert outbox.deliver(sms_service)["retrying"] == 1
    (row,) = outbox.list_rows(sms_service, channel="sms", undelivered=True)
    assert row["attempts"] == 2 and row["next_attempt"] == "2026-05-06T01:03:00+00:00"   # then 2 minutes
    assert row["last_error"] == f'HTTP {status}: {{"error": "busy"}}'
    clock.advance(minutes=2)
    assert outbox.deliver(sms_service)["sent"] == 1 and len(gateway.got) == 3
    assert len({r["body"]["id"] for r in gateway.got}) == 1           # the same message id every time


def test_a_4xx_answer_is_given_up_with_the_gateways_reason_and_can_be_resent(
        sms_service, gateway, clock, db_url, chain_key_env):
    gateway.answers = [(400, {"error": "号码在黑名单中"})]
    case = sms_service.start("sms_notice", INTAKE, "li")
    assert outbox.deliver(sms_service) == {"sent": 0, "retrying": 0, "failed": 1}
    clock.advance(days=1)
    assert outbox.deliver(sms_service)["failed"] == 0 and len(gateway.got) == 1   # not tried again
    env = {**chain_key_env, "COMPLAINTFLOW_SMS_URL": gateway.url, "COMPLAINTFLOW_SMS_TOKEN": TOKEN}
    (row,) = json.loads(run_cli(["--db", db_url, "sms", "list", "--undelivered", "--json"], env).output)
    assert (row["status"], row["attempts"], row["case_number"]) == ("failed", 1, case.case_number)
    assert row["last_error"] == 'HTTP 400: {"error": "号码在黑名单中"}'
    assert "given up" in run_cli(["--db", db_url, "sms", "list"], env).output

    resent = run_cli(["--db", db_url, "--now", "2026-05-07T10:00", "sms", "resend", str(row["id"])], env)
    assert resent.exit_code == 0, resent.output
    assert f"SMS {row['id']} (acknowledgement to 13800138000) queued for 2026-05-07T10:00:00+08:00" in resent.output
    sent = run_cli(["--db", db_url, "--now", "2026-05-07T10:00", "sms", "deliver", "--json"], env)
    assert json.loads(sent.output) == {"sent": 1, "retrying": 0, "failed": 0}, sent.output
    assert gateway.got[1]["body"] == gateway.got[0]["body"]
    assert gateway.got[1]["headers"]["Authorization"] == f"Bearer {TOKEN}"

    missing = CliRunner().invoke(cli, ["--db", db_url, "sms", "resend", "999"], env=env)
    assert missing.exit_code == 3 and "no SMS 999 (see `complaintflow sms list`)" in missing.output


def test_the_scheduler_of_serve_sends_the_sms_after_its_tick(sms_service, gateway):
    case = sms_service.start("sms_notice", INTAKE, "li")
    first_scheduler_tick(sms_service, gateway.arrived, "the scheduler sent no SMS")
    assert gateway.texts() == [("13800138000", f"您的投诉已登记，编号 {case.case_number}。")]


# --- configuration -----------------------------------------------------------------------

def test_the_log_notifier_stays_the_default_when_no_url_is_set(tmp_path, db_url, chain_key_env, gateway, monkeypatch):
    for name in ("COMPLAINTFLOW_SMS_URL", "COMPLAINTFLOW_SMS_TOKEN", "COMPLAINTFLOW_SMS_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(notifier_from_env(), LogNotifier)
    fixture = str(copy_fixture(tmp_path, "sms"))
    data = json.dumps(INTAKE, ensure_ascii=False)
    assert run_cli(["--db", db_url, "deploy", fixture], chain_key_env).exit_code == 0
    checked = run_cli(["--db", db_url, "sms", "check"], chain_key_env)
    assert "COMPLAINTFLOW_SMS_URL is not set: every notice goes to the log" in checked.output
    started = run_cli(["--db", db_url, "--now", "2026-05-06T09:00", "start", "sms_notice", "--user", "li",
                       "--data", data], chain_key_env)
    assert started.exit_code == 0, started.output
    refused = CliRunner().invoke(cli, ["--db", db_url, "sms", "deliver"], env=chain_key_env)
    assert refused.exit_code == 2 and "COMPLAINTFLOW_SMS_URL is not set" in refused.output
    assert json.loads(run_cli(["--db", db_url, "sms", "list", "--json"], chain_key_env).output) == []

    # the same command with the gateway configured texts the complainant
    env = {**chain_key_env, "COMPLAINTFLOW_SMS_URL": gateway.url}
    assert f"through {gateway.url}" in run_cli(["--db", db_url, "sms", "check"], env).output
    assert run_cli(["--db", db_url, "--now", "2026-05-06T09:05", "start", "sms_notice", "--user", "li",
                    "--data", data], env).exit_code == 0
    sent = run_cli(["--db", db_url, "--now", "2026-05-06T09:05", "sms", "deliver"], env)
    assert "sent 1, to retry 0, given up 0" in sent.output, sent.output
    assert gateway.texts() == [("13800138000", "您的投诉已登记，编号 SMS-2026-000002。")]
    assert "Authorization" not in gateway.got[0]["headers"]            # no token set: no bearer header


@pytest.mark.parametrize("env, error", [
    ({"COMPLAINTFLOW_SMS_URL": "sms-gateway.local/send"},
     "COMPLAINTFLOW_SMS_URL must be an http:// or https:// address, not 'sms-gateway.local/send'"),
    ({"COMPLAINTFLOW_SMS_URL": "http://127.0.0.1:9/send", "COMPLAINTFLOW_SMS_TIMEOUT": "0"},
     "COMPLAINTFLOW_SMS_TIMEOUT must be a number of seconds from 1 to 60, not '0'"),
    ({"COMPLAINTFLOW_SMS_URL": "http://127.0.0.1:9/send", "COMPLAINTFLOW_SMS_TIMEOUT": "ten"},
     "COMPLAINTFLOW_SMS_TIMEOUT must be a number of seconds from 1 to 60, not 'ten'")])
def test_a_wrong_setting_stops_the_command_naming_it(db_url, chain_key_env, env, error):
    with pytest.raises(InvalidInput, match="^" + error.replace("(", r"\(").replace(")", r"\)")):
        notifier_from_env(env)
    result = CliRunner().invoke(cli, ["--db", db_url, "sms", "check"], env={**chain_key_env, **env})
    assert result.exit_code == 2 and f"error: {error}" in result.output


def test_the_gateway_settings_are_read_from_the_environment():
    gateway = Gateway.from_env({"COMPLAINTFLOW_SMS_URL": " https://sms.example.cn/v1/send ",
                                "COMPLAINTFLOW_SMS_TOKEN": "abc", "COMPLAINTFLOW_SMS_TIMEOUT": "2.5"})
    assert gateway == Gateway("https://sms.example.cn/v1/send", "abc", 2.5)
    assert Gateway.from_env({}) is None
