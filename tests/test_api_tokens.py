"""`complaintflow token create|list|revoke` and what a token's secret, expiry and revocation do
to calls of /api/v1."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from complaintflow.engine.tokens import Caller, authenticate, Unauthorized
from complaintflow.web.cli import cli
from conftest import PROCESSES


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPLAINTFLOW_NOW", raising=False)
    monkeypatch.setenv("COMPLAINTFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cf.sqlite3'}")
    monkeypatch.setenv("COMPLAINTFLOW_PROCESSES", str(PROCESSES))
    monkeypatch.setenv("COMPLAINTFLOW_CHAIN_KEY_FILE", str(tmp_path / "chain_key"))
    (tmp_path / "chain_key").write_text("ab" * 32)
    runner = CliRunner()

    def invoke(*args, code=0):
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result
    return invoke


def service_at(tmp_path, now=None):
    from complaintflow.engine.clock import FixedClock, parse_instant
    from complaintflow.engine.service import ComplaintService
    clock = FixedClock(parse_instant(now)) if now else None
    return ComplaintService(f"sqlite:///{tmp_path / 'cf.sqlite3'}", clock=clock, chain_key=b"k" * 32)


def test_create_prints_the_secret_once_and_stores_only_its_hash(run, tmp_path):
    out = run("token", "create", "hotline", "--role", "reception", "--role", "front_desk")
    secret = out.stdout.strip()
    assert secret.startswith("cft_") and len(secret) > 40
    assert "api:hotline" in out.stderr and "not shown again" in out.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'cf.sqlite3'}")
    with engine.connect() as conn:
        stored = conn.execute(text("select name, secret_hash, roles from api_tokens")).one()
    assert secret not in str(tuple(stored))
    assert stored[1] == hashlib.sha256(secret.encode()).hexdigest()
    listed = json.loads(run("token", "list", "--json").stdout)
    assert [(t["name"], t["roles"], t["status"]) for t in listed] == [("hotline", ["front_desk", "reception"], "active")]
    assert secret not in run("token", "list").stdout
    caller = authenticate(service_at(tmp_path), f"Bearer {secret}")
    assert caller == Caller("hotline", ("front_desk", "reception")) and caller.actor == "api:hotline"


def test_mistakes_are_refused_with_a_message_and_change_nothing(run):
    run("token", "create", "hotline", "--role", "reception")
    assert "exists already" in run("token", "create", "hotline", "--role", "reception", code=5).output
    assert "unknown role(s) cashier" in run("token", "create", "pos", "--role", "cashier", code=2).output
    assert "token name" in run("token", "create", "Bad Name", "--role", "reception", code=2).output
    assert "--expires must be" in run("token", "create", "x", "--role", "reception", "--expires", "soon", code=2).output
    assert "the expiry 2026-05-02 00:00 is not in the future" in run("--now", "2026-05-06T09:00", "token", "create", "x", "--role", "reception",
                                      "--expires", "2026-05-01", code=2).output
    assert "there is no token 'nobody'" in run("token", "revoke", "nobody", code=3).output
    assert [t["name"] for t in json.loads(run("token", "list", "--json").stdout)] == ["hotline"]


def test_revoked_and_expired_tokens_are_refused_saying_which_and_when(run, tmp_path):
    kept = run("--now", "2026-05-06T09:00", "token", "create", "kept", "--role", "reception",
               "--expires", "2026-05-31").stdout.strip()
    gone = run("token", "create", "gone", "--role", "reception").stdout.strip()
    run("token", "revoke", "gone")
    assert "already revoked" in run("token", "revoke", "gone", code=5).output
    with pytest.raises(Unauthorized, match="token 'gone' was revoked"):
        authenticate(service_at(tmp_path), f"Bearer {gone}")
    # valid through its last day (Beijing time), refused from the next day's first moment
    assert authenticate(service_at(tmp_path, "2026-05-31T23:59:59+08:00"), f"Bearer {kept}").name == "kept"
    with pytest.raises(Unauthorized, match="token 'kept' expired at 2026-06-01 00:00$"):   # Beijing time, to the minute
        authenticate(service_at(tmp_path, "2026-06-01T00:00:00+08:00"), f"Bearer {kept}")
    statuses = {t["name"]: t["status"] for t in json.loads(
        run("--now", "2026-06-02T09:00", "token", "list", "--json").stdout)}
    assert statuses == {"kept": "expired", "gone": "revoked"}
    with pytest.raises(Unauthorized, match="Bearer <secret>"):
        authenticate(service_at(tmp_path), f"Basic {kept}")
