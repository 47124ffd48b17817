"""The reviewer's case search at 1,000 vs 100,000 (and, with --million, 1,000,000) stored cases.

Runs a few real enterprise_customer cases through the service (registered, accepted, one
closed, one past its promised time), then copies their case rows with rewritten ids, case
numbers and received times until the database holds N cases, with the search's columns
spread out (procedure, status, category, department, legal state, breached; 1% of cases in
a rare legal state). Then times, interleaved over rounds so that machine noise hits all
alike:

* baseline — one plain indexed SELECT of the newest 51 case rows straight through sqlite3
  (the least any page of the search can cost);
* each filter of `search_cases` alone, some combinations, a date range, and page 40.

It reports each as a median, as a ratio to the baseline, and large/small: "stays fast"
means that ratio stays near 1. Usage:

    python bench/bench_review_search.py [--cases 100000] [--small 1000] [--million] [--rounds 7]
                                        [--explain] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from interleaved import each_store, interleaved, print_by_size, size_options, store_sizes  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from complaintflow.engine.clock import FixedClock  # noqa: E402
from complaintflow.engine.models import Instance  # noqa: E402
from complaintflow.engine.review.search import search_cases  # noqa: E402
from complaintflow.engine.service import ComplaintService  # noqa: E402
from conftest import TEST_CHAIN_KEY, FakeNotifier  # noqa: E402

NOW = datetime(2026, 5, 6, 1, 0, tzinfo=timezone.utc)
PROCESSES = ["enterprise_customer", "hospital_patient", "market_regulator", "medical_insurance",
             "property_management", "tourism"]
CATEGORIES = ["product_quality", "service_attitude", "fees", "nursing", "returns", "after_sales", "other"]
DEPARTMENTS = ["品质部", "售后部", "医务科", "护理部", "财务科", "物业部", "客服部", "法制科"]
STATUSES = ["running"] * 6 + ["completed"] * 3 + ["incident"]
INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}


def real_cases(service, clock) -> list[dict]:
    """A few enterprise cases run through the service, as the templates to copy."""
    service.deploy([ROOT / "processes"])
    for k in range(3):
        case = service.start("enterprise_customer", INTAKE, "reception_li")
        task = service.list_tasks(instance_id=case.instance_id)[0]
        service.complete_task(task["task_id"], "reception_li",
                              {"outcome": "accepted", "severity": "general", "department": "品质部"})
    with service.sessions() as s:
        return [{c.key: getattr(row, c.key) for c in Instance.__table__.columns}
                for row in s.execute(select(Instance)).scalars()]


def seed(url: str, n: int, rng: random.Random) -> ComplaintService:
    clock = FixedClock(NOW)
    service = ComplaintService(url, clock=clock, notifier=FakeNotifier(), chain_key=TEST_CHAIN_KEY)
    templates = real_cases(service, clock)
    batch = []
    for k in range(n - len(templates)):
        row = dict(templates[k % len(templates)])
        received = NOW - timedelta(seconds=rng.randrange(0, 3 * 365 * 86400))
        status = STATUSES[k % len(STATUSES)]
        row.update(id=str(uuid.UUID(int=rng.getrandbits(128))), process_id=PROCESSES[k % len(PROCESSES)],
                   case_number=f"BN-{k:07d}", received_at=received, updated_at=received, status=status,
                   closed_at=received + timedelta(days=9) if status == "completed" else None,
                   category=CATEGORIES[(k // 7) % len(CATEGORIES)], department=DEPARTMENTS[k % len(DEPARTMENTS)],
                   legal_state="deemed_accepted" if rng.random() < 0.01 else None,
                   breached=rng.random() < 0.1, lease_owner=None, lease_until=None)
        batch.append(row)
        if len(batch) == 20000:
            with service.engine.begin() as conn:
                conn.execute(insert(Instance), batch)
            batch = []
    if batch:
        with service.engine.begin() as conn:
            conn.execute(insert(Instance), batch)
    with service.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return service


PROBES = {
    "all": {},
    "case_number": {"case_number": "BN-0000500"},
    "process": {"process_id": "tourism"},
    "status": {"status": "incident"},
    "category": {"category": "fees"},
    "department": {"department": "法制科"},
    "legal_state": {"legal_state": "deemed_accepted"},
    "breached": {"breached": True},
    "received_range": {"received_from": date(2025, 3, 1), "received_to": date(2025, 3, 31)},
    "process+status+cat": {"process_id": "tourism", "status": "running", "category": "fees"},
    "breached+dept": {"breached": True, "department": "法制科"},
    "range+process": {"process_id": "hospital_patient", "received_from": date(2025, 3, 1),
                      "received_to": date(2025, 3, 31)},
    "legal+category": {"legal_state": "deemed_accepted", "category": "fees"},
    "page_40": {"offset": 40 * 50},
}



def explain(service, path) -> dict:
    """SQLite's plan for each probe's query: each must SEARCH an index, never SCAN the table."""
    raw = sqlite3.connect(path)
    plans = {}
    for name, params in PROBES.items():
        captured = []

        def grab(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("SELECT") and "FROM instances" in statement:
                captured.append((statement, parameters))
        from sqlalchemy import event
        event.listen(service.engine, "before_cursor_execute", grab)
        try:
            search_cases(service, **params)
        finally:
            event.remove(service.engine, "before_cursor_execute", grab)
        statement, parameters = captured[0]
        plans[name] = " | ".join(r[-1] for r in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters))
    return plans


def measure(service: ComplaintService, path: str, rounds: int) -> dict:
    raw = sqlite3.connect(path)
    baseline_sql = "SELECT * FROM instances ORDER BY received_at DESC LIMIT 51"
    probes = {"baseline": lambda: raw.execute(baseline_sql).fetchall()}
    for name, params in PROBES.items():
        probes[name] = (lambda p: lambda: search_cases(service, **p))(params)
    return interleaved(probes, rounds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_options(ap)
    ap.add_argument("--explain", action="store_true", help="print SQLite's plan of each probe")
    args = ap.parse_args()
    sizes = store_sizes(args)
    results = {}
    for label, n, path, service, built in each_store(sizes, lambda path, n: seed(f"sqlite:///{path}", n,
                                                                                 random.Random(7))):
        print(f"seeded {n:,} cases in {built:.1f} s", file=sys.stderr)
        results[label] = measure(service, path, args.rounds)
        if args.explain and label == "large":
            results[label]["plans"] = explain(service, path)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    print_by_size(results, sizes)
    for label, _ in sizes:
        for name, plan in (results[label].get("plans") or {}).items():
            print(f"plan {name:<20} {plan}")


if __name__ == "__main__":
    main()
