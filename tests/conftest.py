"""Shared fixtures: a controlled clock, a fake notifier, and services on a real SQLite file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from complaintflow.engine.clock import FixedClock, parse_instant
from complaintflow.engine.service import ComplaintService
from complaintflow.handlers import default_registry

# the inbox app and signed-in clients for the web tests (tests/webapp.py)
pytest_plugins = ["webapp"]

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


class FakeNotifier:
    """Records what would have been sent to complainants and staff."""

    def __init__(self):
        self.sent = []

    def send(self, kind, to, message, case_number=None):
        record = {"kind": kind, "to": to, "message": message, "case_number": case_number, "channel": "fake"}
        self.sent.append(record)
        return record

    def kinds(self):
        return [m["kind"] for m in self.sent]


class Switch:
    """Lets a test make the `test.flaky` handler fail or succeed."""

    def __init__(self):
        self.fail = True
        self.calls = 0


@pytest.fixture
def clock():
    return FixedClock(parse_instant("2026-05-06T09:00:00+08:00"))  # a Wednesday


@pytest.fixture
def notifier():
    return FakeNotifier()


@pytest.fixture
def switch():
    return Switch()


@pytest.fixture
def registry(switch):
    reg = default_registry()

    def flaky(ctx):
        switch.calls += 1
        if switch.fail:
            raise RuntimeError("upstream system unavailable")
        return {"verdict_seen": ctx.params["verdict"]}

    reg.register("test.flaky", flaky)
    return reg


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL server, started once. Skipped locally when PostgreSQL is not
    installed; in CI (CI=true) a missing server is an error, never a silent skip."""
    from pgserver import PgServer, find_bin_dir
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run should have installed it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PgServer(bin_dir).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite"])
def backend(request):
    """Modules that run against both databases parametrize this with ["sqlite", "postgresql"]."""
    return request.param


@pytest.fixture
def db_url(tmp_path, backend, request):
    if backend == "postgresql":
        return request.getfixturevalue("pg_server").new_database()
    return f"sqlite:///{tmp_path / 'test.sqlite3'}"


# The event log's chain key in tests: fixed, so that no test writes a key file into var/.
TEST_CHAIN_KEY = bytes.fromhex("7465737420636861696e206b6579" + "00" * 18)


@pytest.fixture
def make_service(db_url, clock, registry, notifier):
    def make(url=None, chain_key=TEST_CHAIN_KEY):
        return ComplaintService(url or db_url, clock=clock, handlers=registry, notifier=notifier,
                                chain_key=chain_key)
    return make


@pytest.fixture
def chain_key_env(tmp_path):
    """Environment for a CLI run on a test database: the tests' chain key in a key file."""
    path = tmp_path / "chain_key"
    path.write_text(TEST_CHAIN_KEY.hex())
    return {"COMPLAINTFLOW_CHAIN_KEY_FILE": str(path)}


@pytest.fixture
def service(make_service):
    return make_service()


def copy_fixture(tmp_path, name):
    """A private copy of a fixture process directory, free to edit."""
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


@pytest.fixture
def mini_dir(tmp_path):
    return copy_fixture(tmp_path, "mini")


@pytest.fixture
def mini(service, mini_dir):
    service.deploy([mini_dir])
    return service


def open_task(service, instance_id, task):
    rows = [t for t in service.list_tasks(instance_id=instance_id) if t["task"] == task]
    assert rows, f"no open task '{task}'; open: {[t['task'] for t in service.list_tasks(instance_id=instance_id)]}"
    return rows[0]


def complete_open(service, case, task, data, user):
    """Complete the case's open task `task` (its id in the BPMN) as `user`."""
    return service.complete_task(open_task(service, case.instance_id, task)["task_id"], user, data)


def open_task_roles(service, case) -> dict:
    """The case's open tasks: {task id in the BPMN: role}."""
    return {t["task"]: t["role"] for t in service.list_tasks(instance_id=case.instance_id)}


def case_limits(service, case) -> dict:
    """The case's time limits by name, as `show` gives them."""
    return {d["name"]: d for d in service.show(case.instance_id)["deadlines"]}


def first_scheduler_tick(service, arrived, nothing: str) -> None:
    """Run the scheduler of `serve` (its first tick runs at once) until `arrived` is set by
    what that tick sent; fails saying `nothing` if it is not set within a minute."""
    from complaintflow.web.scheduler import start_scheduler
    scheduler = start_scheduler(service, 3600)
    try:
        assert arrived.wait(60), nothing
    finally:
        scheduler.shutdown(wait=True)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's package, driven by Playwright), one for the whole session."""
    from browser import launch_browser
    yield from launch_browser()


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="long runs of the crash test: hundreds of worker kills instead of tens (test_crash.py)")
