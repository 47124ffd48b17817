"""Which handlers run under the time limit in a thread apart, and which on the action's own
thread (handlers/__init__.py, `may_hang`; docs/performance.md, "Cost per user action")."""

from __future__ import annotations

import threading

import pytest

from complaintflow.engine.service import ComplaintService
from complaintflow.handlers import default_registry
from conftest import TEST_CHAIN_KEY, open_task

INTAKE = {"subject": "快递丢失", "due_at": "2026-05-08T17:00:00+08:00"}


@pytest.mark.parametrize("may_hang", [True, False])
def test_a_handler_runs_apart_only_when_it_may_hang(tmp_path, clock, notifier, mini_dir, may_hang):
    seen = []
    registry = default_registry()

    def flaky(ctx):
        seen.append((threading.get_ident(), ctx.now()))
        return {"verdict_seen": ctx.params["verdict"]}

    registry.register("test.flaky", flaky, may_hang=may_hang)
    svc = ComplaintService(f"sqlite:///{tmp_path / 'db.sqlite3'}", clock=clock, handlers=registry,
                           notifier=notifier, chain_key=TEST_CHAIN_KEY, handler_timeout=30)
    svc.deploy([mini_dir])
    case = svc.start("mini", INTAKE, "li")
    clock.advance(hours=1)
    done = svc.complete_task(open_task(svc, case.instance_id, "review")["task_id"], "bob", {"verdict": "ok"})
    assert done.status == "running" and [t["task"] for t in done.open_tasks] == ["close"]
    (thread, at), = seen
    assert (thread != threading.get_ident()) is may_hang
    assert at == clock.now()                          # the action's moment, on either thread
    assert svc.replay(case.instance_id).consistent is True


def test_a_handler_registered_without_the_flag_may_hang():
    """An installation's own handler (COMPLAINTFLOW_HANDLERS) gets the time limit unless it says otherwise."""
    registry = default_registry()
    registry.register("site.crm_lookup", lambda ctx: None)
    assert registry.get("site.crm_lookup").may_hang is True


def test_notices_may_hang_and_the_case_s_own_handlers_do_not():
    registry = default_registry()
    may_hang = {name for name in registry.names() if registry.get(name).may_hang}
    # a notifier may call a gateway that never answers (tests/test_contention.py)
    assert may_hang == {name for name in registry.names() if name.startswith("notify.")}
    assert {"case_number.assign", "case.close", "rework.count", "deadline.start"} <= set(registry.names()) - may_hang
