"""Bytes on disk per closed case, by table and index, on SQLite.

Real cases: every step of a designer's scenario (`processes/tests/<process>/*.yaml`) runs
through the service layer (`ComplaintService` with a FixedClock, the same calls as
`complaintflow test`) in a SQLite file into which all of `processes/` was deployed. A
scenario whose case ends closed is run `--cases` times into one database, then every table
and index is measured with SQLite's `dbstat` virtual table (pages in use, and the bytes of
row payload in them) and the database as it was before the first case is subtracted:

    bytes per case = (pages of the table or index with N cases - pages before) x page size / N

so the figure includes page slack and every index entry, as a database file really grows.
The last column, "vacuumed", is the same after `VACUUM` (the rows rewritten densely).
Which scenarios:

* every scenario of `enterprise_customer` whose case ends closed (the goal of issue 15 is
  10 KB or less per closed enterprise case);
* the longest closed path of `hospital_patient` (the most events of its scenarios).

Usage:

    python bench/bench_case_size.py [--cases 40] [--process enterprise_customer ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from complaintflow.engine.models import Instance  # noqa: E402
from complaintflow.engine.scenario_reader import load_file, scenario_files  # noqa: E402
from complaintflow.engine.scenarios import Runner, ScenarioRun  # noqa: E402

PROCESSES = ROOT / "processes"


def table_pages(db_file: Path) -> dict[str, tuple[str, int, int]]:
    """name -> (table it belongs to, bytes in pages, bytes of payload) for every table and index."""
    conn = sqlite3.connect(db_file)
    try:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')"))
        rows = conn.execute("SELECT name, sum(pgsize), sum(payload) FROM dbstat GROUP BY name").fetchall()
    finally:
        conn.close()
    return {name: (owner.get(name, name), pages, payload) for name, pages, payload in rows}


def run_cases(runner: Runner, scenario, db_file: Path, n: int) -> tuple[int, bool]:
    """Run `scenario` n times into db_file; (events of one case, whether the case closed)."""
    events, closed = 0, False
    for _ in range(n):
        run = ScenarioRun(runner, scenario, db_file)
        try:
            for step in scenario.steps:
                run.do(step)
            if run.instance_id is None:          # the intake itself was refused
                return 0, False
            with run.service.sessions() as s:
                inst = s.get(Instance, run.instance_id)
                events, closed = inst.last_event_seq, inst.status == "completed"
        finally:
            run.service.engine.dispose()
    return events, closed


def measure(runner: Runner, scenario, n: int, workdir: Path) -> dict:
    db_file = workdir / "measured.sqlite3"
    shutil.copyfile(runner.template, db_file)
    before = table_pages(db_file)
    events, closed = run_cases(runner, scenario, db_file, n)
    conn = sqlite3.connect(db_file)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    per_name = _per_case(before, table_pages(db_file), n)
    # the same rows rewritten densely: what the data needs, without the room a closed case's
    # state left in pages laid out while it was large (SQLite reuses it only after VACUUM)
    conn = sqlite3.connect(db_file)
    conn.execute("VACUUM")
    conn.close()
    vacuumed = sum(v["bytes"] for v in _per_case(before, table_pages(db_file), n).values())
    per_table: dict[str, dict] = {}
    for name, v in per_name.items():
        t = per_table.setdefault(v["table"], {"rows": 0.0, "indexes": 0.0, "payload": 0.0})
        t["rows" if name == v["table"] else "indexes"] += v["bytes"]
        t["payload"] += v["payload"]
    db_file.unlink()
    return {"scenario": scenario.name, "file": Path(scenario.file).name, "process_id": scenario.process_id,
            "events": events, "closed": closed, "cases": n,
            "bytes_per_case": sum(v["bytes"] for v in per_name.values()), "after_vacuum": vacuumed,
            "tables": {k: {kk: round(vv) for kk, vv in v.items()} for k, v in sorted(per_table.items())},
            "indexes": {k: round(v["bytes"]) for k, v in sorted(per_name.items()) if k != v["table"]}}


def _per_case(before: dict, after: dict, n: int) -> dict:
    per_name = {}
    for name, (table, pages, payload) in after.items():
        _, pages0, payload0 = before.get(name, (table, 0, 0))
        if pages != pages0:
            per_name[name] = {"table": table, "bytes": (pages - pages0) / n, "payload": (payload - payload0) / n}
    return per_name


def scenarios_of(runner: Runner, process_id: str) -> list:
    files = scenario_files([PROCESSES / "tests" / process_id])
    return [s for f in files for s in load_file(f, runner.models, runner.roles)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=40, help="cases per measured scenario (default 40)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = []
    with Runner(PROCESSES) as runner, tempfile.TemporaryDirectory(prefix="case-size-") as tmp:
        work = Path(tmp)
        for scenario in scenarios_of(runner, "enterprise_customer"):
            one = measure(runner, scenario, 1, work)
            if one["closed"]:
                results.append(measure(runner, scenario, args.cases, work))
        # the longest closed hospital path: the one with the most events
        longest = None
        for scenario in scenarios_of(runner, "hospital_patient"):
            one = measure(runner, scenario, 1, work)
            if one["closed"] and (longest is None or one["events"] > longest[1]):
                longest = (scenario, one["events"])
        if longest:
            results.append(measure(runner, longest[0], args.cases, work))
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return 0
    print(f"bytes per closed case on SQLite (pages of each table and index, {args.cases} cases each)")
    print(f"{'process':<20} {'events':>6} {'total':>8} {'state':>7} {'events':>7} {'tasks':>7} {'case':>7} "
          f"{'other':>7} {'vacuumed':>8}  scenario")
    for r in results:
        t = r["tables"]

        def size(name):
            v = t.get(name, {})
            return v.get("rows", 0) + v.get("indexes", 0)
        # the engine state: a state row (open cases; closed before schema 0010) or what a closed
        # case keeps of it (closed_cases, engine/compaction.py)
        main_tables = ("instance_states", "closed_cases", "events", "human_tasks", "instances")
        other = r["bytes_per_case"] - sum(size(x) for x in main_tables)
        state = size("instance_states") + size("closed_cases")
        print(f"{r['process_id']:<20} {r['events']:>6} {r['bytes_per_case']:>8.0f} {state:>7.0f} "
              f"{size('events'):>7.0f} {size('human_tasks'):>7.0f} {size('instances'):>7.0f} {other:>7.0f} "
              f"{r['after_vacuum']:>8.0f}  "
              f"{r['scenario']}")
    print("\nper table and index, the last enterprise case and the hospital case:")
    for r in results[-2:]:
        print(f"  {r['process_id']} — {r['scenario']}")
        for name, v in r["tables"].items():
            print(f"    {name:<18} rows {v['rows']:>6}  indexes {v['indexes']:>6}  (payload {v['payload']})")
        for name, v in r["indexes"].items():
            print(f"      {name:<42} {v:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
