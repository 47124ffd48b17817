"""The timer tick in the background: APScheduler calls `service.tick()` every N seconds.

One job, never overlapping (`max_instances=1`), missed runs coalesced: after a restart the
first tick fires everything that became due while the service was down.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("complaintflow.scheduler")


def start_scheduler(service, seconds: int) -> BackgroundScheduler:
    if seconds < 1:
        raise ValueError("--tick-seconds must be at least 1")

    def tick():
        result = service.tick()
        if result["timers_fired"] or result["failed"]:
            log.info("tick: %s", result)

    scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
    scheduler.add_job(tick, "interval", seconds=seconds, id="complaintflow-tick", max_instances=1,
                      coalesce=True, next_run_time=None)
    scheduler.start()
    scheduler.modify_job("complaintflow-tick", next_run_time=_now())
    return scheduler


def _now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)
