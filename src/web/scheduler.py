"""The timer tick in the background: APScheduler calls `service.tick()` every N seconds,
then sends the webhooks and SMS due (engine/outbox.py `deliver`).

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
    from ..engine import outbox
    outbox.load_config()        # a broken webhooks file stops the start, naming the entry

    def tick():
        result = service.tick()
        if result["timers_fired"] or result["failed"]:
            log.info("tick: %s", result)
        deliver_outbox()

    def deliver_outbox():
        try:
            sent = outbox.deliver(service)      # webhooks, and SMS when the notifier has a gateway
        except Exception:       # a receiver, the SMS gateway or the outbox must never stop the timers
            log.exception("outbox delivery failed")
            return
        if any(sent.values()):
            log.info("webhooks and SMS: %s", sent)

    scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
    scheduler.add_job(tick, "interval", seconds=seconds, id="complaintflow-tick", max_instances=1,
                      coalesce=True, next_run_time=None)
    scheduler.start()
    scheduler.modify_job("complaintflow-tick", next_run_time=_now())
    return scheduler


def _now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)
