"""The inbox with 100,000 open cases: query side only (the rows the inbox reads).

Seeds a SQLite file with N instances, each with one open task (roles, procedures,
categories, due times and deadlines spread out; a share overdue, claimed or provisional),
then times, interleaved over rounds so that machine noise hits all alike:

* baseline — the least any inbox page can cost: one indexed SELECT of 50 open task rows of
  one role by due time, straight through sqlite3;
* service — `service.inbox(...)` for the first page of a role (and with each filter), and
  `inbox_counts` (the per-role counts on every page);
* page — the whole inbox page (`GET /`) through Flask's test client: session, service
  calls and the template.

It reports each as a median and as a ratio to the baseline, for the small database (1,000
open cases) and the large one (100,000): "stays fast" means the large/small ratio of each
stays near 1. Usage:

    python bench/bench_inbox.py [--cases 100000] [--small 1000] [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from interleaved import interleaved, print_by_size, size_options, store_sizes  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from complaintflow.engine.clock import FixedClock  # noqa: E402
from complaintflow.engine.models import NO_DUE, Deadline, HumanTask, Instance, ProcessVersion  # noqa: E402
from complaintflow.engine.service import ComplaintService  # noqa: E402

NOW = datetime(2026, 5, 6, 1, 0, tzinfo=timezone.utc)
ROLES = ["department", "reception", "manager", "handler", "complaint_office", "medical_affairs", "nursing",
         "front_desk", "operations", "insurance_office"]
PROCESSES = ["enterprise_customer", "hospital_patient", "market_regulator", "medical_insurance",
             "property_management", "tourism"]
CATEGORIES = ["product_quality", "service_attitude", "fees", "nursing", "returns", "after_sales", "other"]


def seed(url: str, n: int, rng: random.Random) -> ComplaintService:
    service = ComplaintService(url, clock=FixedClock(NOW))
    service.deploy([ROOT / "processes" / "enterprise_customer.bpmn"])
    with service.sessions() as s:
        version_id = s.query(ProcessVersion.id).first()[0]
    instances, tasks, deadlines = [], [], []
    for k in range(n):
        iid = str(uuid.UUID(int=rng.getrandbits(128)))
        process = PROCESSES[k % len(PROCESSES)]
        received = NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        due = received + timedelta(days=rng.randrange(1, 40)) if rng.random() < 0.9 else None
        instances.append(dict(id=iid, process_id=process, version_id=version_id, version=1, status="running",
                              case_number=f"BN-{k:07d}", category=CATEGORIES[k % len(CATEGORIES)],
                              received_at=received, closed_at=None, next_due_at=due, legal_state=None,
                              started_by="seed", updated_at=received, last_event_seq=1, last_event_hash="0" * 64,
                              step_count=1, id_counter=1, row_version=1))
        tasks.append(dict(id=str(uuid.UUID(int=rng.getrandbits(128))), instance_id=iid, process_id=process,
                          task_spec="investigate", name="调查核实", role=ROLES[k % len(ROLES)], form=None,
                          status="open", created_at=received, due_at=due, completed_at=None, completed_by=None,
                          claimed_by="department" if rng.random() < 0.05 else None, claimed_at=None,
                          deadline="reply" if due else None, due_sort=due or NO_DUE,
                          category=CATEGORIES[k % len(CATEGORIES)]))
        if due:
            deadlines.append(dict(instance_id=iid, process_id=process, name="reply", rule=None, seed=None,
                                  unit="workdays", amount=10, start_at=received, due_at=due, last_day=None,
                                  provisional=rng.random() < 0.02, status="open", paused_at=None, paused_days=0,
                                  paused_seconds=0, extended_by=0, remind_workdays=None, breached_at=None,
                                  completed_at=None))
    with service.engine.begin() as conn:
        for table, rows in ((Instance, instances), (HumanTask, tasks), (Deadline, deadlines)):
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start:start + 5000])
    with service.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return service



def measure(service: ComplaintService, path: str, rounds: int) -> dict:
    from complaintflow.web.app import create_app, load_roles
    from complaintflow.web.users import DEMO_USERS, load_users
    roles = load_roles(ROOT / "processes")
    app = create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="bench")
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    client.post("/login", data={"login": "department", "password": "demo"})
    assert client.get("/").status_code == 200
    raw = sqlite3.connect(path)
    baseline_sql = ("SELECT * FROM human_tasks WHERE status = 'open' AND role = 'department' "
                    "ORDER BY due_sort, id LIMIT 50")
    probes = {
        "baseline": lambda: raw.execute(baseline_sql).fetchall(),
        "inbox": lambda: service.inbox(roles={"department"}, user="department"),
        "inbox_3_roles": lambda: service.inbox(roles={"department", "handler", "nursing"}, user="department"),
        "inbox_process": lambda: service.inbox(roles={"department"}, process_id="tourism"),
        "inbox_category": lambda: service.inbox(roles={"department"}, category="fees"),
        "inbox_overdue": lambda: service.inbox(roles={"department"}, status="overdue"),
        "inbox_mine": lambda: service.inbox(roles={"department"}, user="department", status="mine"),
        "inbox_page_40": lambda: service.inbox(roles={"department"}, offset=40 * 50),
        "counts": lambda: service.inbox_counts({"department", "handler", "nursing"}),
        "page": lambda: client.get("/"),
    }
    return interleaved(probes, rounds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_options(ap, million=False)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, n in store_sizes(args):
            path = f"{tmp}/{label}.sqlite3"
            t0 = time.perf_counter()
            service = seed(f"sqlite:///{path}", n, random.Random(7))
            print(f"seeded {n:,} open cases in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            results[label] = measure(service, path, args.rounds)
            service.engine.dispose()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print_by_size(results, store_sizes(args), width=16)


if __name__ == "__main__":
    main()
