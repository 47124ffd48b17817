"""The service face until the inbox exists: scheduler job, status page, read-only JSON."""

from __future__ import annotations

import pytest

from complaintflow.web.app import create_app
from complaintflow.web.scheduler import start_scheduler
from conftest import open_task

INTAKE = {"subject": "电梯故障", "due_at": "2026-05-06T12:00:00+08:00"}


def test_scheduler_job_fires_due_timers(mini, clock):
    case = mini.start("mini", INTAKE, "alice")
    scheduler = start_scheduler(mini, 5)
    try:
        job = scheduler.get_job("complaintflow-tick")
        assert job.trigger.interval.total_seconds() == 5
        assert job.max_instances == 1 and job.coalesce is True
        clock.advance(hours=4)
        job.func()                      # what APScheduler runs every 5 s
        assert open_task(mini, case.instance_id, "supervise")["role"] == "manager"
    finally:
        scheduler.shutdown(wait=False)


def test_scheduler_refuses_a_zero_interval(mini):
    with pytest.raises(ValueError, match="at least 1"):
        start_scheduler(mini, 0)


def test_status_page_and_json_api(mini):
    case = mini.start("mini", INTAKE, "alice")
    client = create_app(mini).test_client()
    page = client.get("/").get_data(as_text=True)
    assert "mini" in page and "Open tasks: 1" in page
    tasks = client.get("/api/tasks").get_json()
    assert tasks[0]["case_number"] == "MINI-2026-000001" and tasks[0]["role"] == "reception"
    shown = client.get(f"/api/cases/{case.case_number}").get_json()
    assert shown["instance_id"] == case.instance_id
    history = client.get(f"/api/cases/{case.instance_id}/history").get_json()
    assert history[0]["kind"] == "started"
    missing = client.get("/api/cases/nope")
    assert missing.status_code == 404 and "there is no case" in missing.get_json()["error"]
