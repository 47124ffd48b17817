"""The probes of issue 15's "Flat to 1,000,000 stored cases", from 1,000 to 100,000 (and, with
--million, 1,000,000) cases.

The store is built honestly: real cases run through the service — every shipped procedure
registered from its intake form's example, enterprise_customer cases stopped at each of its
steps and some closed, a hospital_patient case — then copied until the SQLite file holds N
cases, with every id rewritten (instances, instance_states, human_tasks, deadlines, events,
case_facts: one `INSERT ... SELECT` per table and batch over a table of copy numbers) and
every moment moved back by a few minutes per copy, so that due times spread the way a real
office's do. Then it times, interleaved round by round (bench/interleaved.py):

* baseline — one raw indexed SELECT of one role's 50 first open tasks through sqlite3 (the
  least an inbox page can cost);
* `show` by case number; `list_tasks(role=...)` (`complaintflow tasks --role`);
  `inbox_counts` for one role; `inbox` page 1 for one role; the whole page `GET /`.

Every probe runs on every store in the same round, so each larger/small ratio is paired
within a round (a store measured while the machine was busier does not look slower). It
reports medians in ms per store, and per larger store the median over rounds of its time
over the small store's, with the range (the goal: within 1.2x from 1,000 to 1,000,000).
Usage:

    python bench/bench_million.py [--cases 100000] [--small 1000] [--million] [--rounds 7]
                                  [--dir DIR] [--json]

With --dir the stores are kept there and reused by the next run (the 1,000,000-case store
takes about half an hour to build and 10-20 GB of disk).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_actions import INTAKE, STEPS  # noqa: E402
from bench_inbox import NOW  # noqa: E402   (the enterprise and hospital cases are run then)
from bench_pages import HOSPITAL  # noqa: E402
from interleaved import paired_rounds, size_options, store_sizes  # noqa: E402

from complaintflow.engine.clock import FixedClock  # noqa: E402
from complaintflow.engine.service import ComplaintService  # noqa: E402
from complaintflow.web.app import create_app, load_roles  # noqa: E402
from complaintflow.web.users import DEMO_USERS, load_users  # noqa: E402
from conftest import TEST_CHAIN_KEY, FakeNotifier, open_task  # noqa: E402
from webapp import sign_in  # noqa: E402

LATER = datetime(2026, 10, 9, 1, 0, tzinfo=timezone.utc)   # the other procedures' examples, and the probes
ROLE = "department"          # enterprise_customer's handling department: investigate, agree, feedback
# the copied tables, and how each column is rewritten ("id": a case or task id; "at": a moment)
ID_COLUMNS = {"instances": ("id",), "instance_states": ("instance_id",), "closed_cases": ("instance_id",),
              "human_tasks": ("id", "instance_id"),
              "deadlines": ("instance_id",), "events": ("instance_id",), "case_facts": ("instance_id",)}
SKIPPED = {"deadlines": ("id",), "events": ("id",), "case_facts": ("id",)}      # numbered by the database


def real_cases(service: ComplaintService, clock: FixedClock) -> int:
    """Run the template cases through the service; returns how many."""
    service.deploy([ROOT / "processes"])
    started = 0
    service.start("hospital_patient", HOSPITAL, "bench")
    started += 1
    for stop in range(len(STEPS) + 1):                     # enterprise cases at each step, the last closed
        for _ in range(2):
            case = service.start("enterprise_customer", INTAKE, "bench")
            for name, data in STEPS[:stop]:
                service.complete_task(open_task(service, case.instance_id, name)["task_id"], "bench", data)
            started += 1
    clock.set(LATER)                                       # the intake examples are dated up to late September
    for info in service.processes():                       # every procedure, from its intake example
        pid = info["process_id"]
        form = service.process_info(pid)["forms"].get(service.process_info(pid)["meta"].get("start_form") or "")
        for example in (form or {}).get("examples") or []:
            try:
                service.start(pid, example, "bench")
                started += 1
            except Exception as err:                        # an example dated after NOW, say: skip it
                print(f"  {pid}: example not registered ({err})", file=sys.stderr)
            break
    return started


def _columns(conn, table) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def copy_cases(path: str, n: int) -> None:
    """Copy the template cases until the file holds `n` cases: copy k of case c gets the id
    with its last 8 hex digits replaced by k (so ids keep their length and stay unique), the
    case number suffixed with k, and every moment moved back by k minutes (modulo 60 days)."""
    conn = sqlite3.connect(path, isolation_level=None)
    # no journal while copying: in WAL mode the copy of a million cases (about 18 GB, engine
    # states most of it) would first be written whole to the WAL file, then again to the database
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute("PRAGMA cache_size=-262144")     # 256 MB: the random ids' index pages stay in memory
    templates = conn.execute("SELECT count(*) FROM instances").fetchone()[0]
    copies = max(0, -(-(n - templates) // templates))
    conn.execute("CREATE TEMP TABLE copies (k INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO copies VALUES (?)", ((k,) for k in range(1, copies + 1)))
    moments = {t: [c for c, kind in ((r[1], r[2]) for r in conn.execute(f"PRAGMA table_info({t})"))
                   if kind == "DATETIME"] for t in ID_COLUMNS}
    for table, ids in ID_COLUMNS.items():
        cols = [c for c in _columns(conn, table) if c not in SKIPPED.get(table, ())]
        exprs = []
        for c in cols:
            if c in ids:
                exprs.append(f"substr(t.{c}, 1, 28) || printf('%08x', copies.k)")
            elif table == "instances" and c == "case_number":
                exprs.append("t.case_number || '-' || copies.k")
            elif c in moments[table]:
                # NO_DUE (9999-12-31) stays: a task without a limit has none in any copy
                exprs.append(f"CASE WHEN t.{c} IS NULL OR t.{c} >= '9999-01-01' THEN t.{c} ELSE "
                             f"datetime(t.{c}, '-' || (copies.k % 86400) || ' minutes') || '.000000' END")
            else:
                exprs.append(f"t.{c}")
        templates_only = "t.instance_id" if table != "instances" else "t.id"
        sql = (f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM copies "
               f"CROSS JOIN {table} AS t WHERE {templates_only} IN (SELECT id FROM template_ids)")
        if table == "instances":
            conn.execute("CREATE TEMP TABLE template_ids AS SELECT id FROM instances")
        conn.execute(sql)
    # the last copy may overshoot n by fewer than one set of templates: trim it (its rows everywhere)
    extra = conn.execute("SELECT count(*) FROM instances").fetchone()[0] - n
    if extra > 0:
        conn.execute("CREATE TEMP TABLE extra AS SELECT id FROM instances WHERE id NOT IN "
                     f"(SELECT id FROM template_ids) ORDER BY id DESC LIMIT {extra}")
        for table, ids in ID_COLUMNS.items():
            conn.execute(f"DELETE FROM {table} WHERE {'id' if table == 'instances' else 'instance_id'} IN "
                         "(SELECT id FROM extra)")
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")          # as the service keeps it
    conn.close()


def build(path: str, n: int) -> ComplaintService:
    clock = FixedClock(NOW)
    service = ComplaintService(f"sqlite:///{path}", clock=clock, notifier=FakeNotifier(), chain_key=TEST_CHAIN_KEY)
    real_cases(service, clock)
    service.engine.dispose()          # the copy changes the journal mode: no other connection open
    copy_cases(path, n)
    return service


def probes_of(service: ComplaintService, path: str) -> dict:
    """The probes on one store (each a function of no arguments)."""
    roles = load_roles(ROOT / "processes")
    app = create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="bench")
    client = sign_in(app.test_client(), ROLE)
    assert client.get("/").status_code == 200
    raw = sqlite3.connect(path)
    number = raw.execute("SELECT case_number FROM instances WHERE case_number IS NOT NULL "
                         "ORDER BY case_number DESC LIMIT 1").fetchone()[0]
    baseline_sql = ("SELECT * FROM human_tasks WHERE status = 'open' AND role = ? "
                    "ORDER BY priority, due_sort, id LIMIT 50")
    return {
        "baseline": lambda: raw.execute(baseline_sql, (ROLE,)).fetchall(),
        "show_by_number": lambda: service.show(number),
        "list_tasks_role": lambda: service.list_tasks(role=ROLE),                # tasks --role: up to 500
        # the same with as many rows in every store (the small one has 156 open department tasks)
        "list_tasks_150": lambda: service.list_tasks(role=ROLE, limit=150),
        "list_tasks_50": lambda: service.list_tasks(roles={ROLE}, user=ROLE, limit=50),   # /api/v1/tasks
        "counts_one_role": lambda: service.inbox_counts({ROLE}),
        "inbox_one_role": lambda: service.inbox(roles={ROLE}, user=ROLE),
        "page": lambda: client.get("/"),
    }


def measure_all(stores: dict, rounds: int, repeat: int = 5) -> dict:
    """Every probe on every store in each round (the order rotated from round to round), so
    that a store measured while the machine is busier is not mistaken for a slower one.
    Per store and probe: median ms, and ratio to that store's baseline; per larger store and
    probe: the median over rounds of (its time / the small store's time in the same round)."""
    flat = {f"{label}|{name}": fn for label, probes in stores.items() for name, fn in probes.items()}
    flat = {"baseline": flat[f"{next(iter(stores))}|baseline"], **flat}

    def progress(r, samples):
        print(f"  round {r + 1} of {rounds} measured", file=sys.stderr)
    paired = paired_rounds(flat, rounds, repeat=repeat, on_round=progress)
    samples = paired["samples"]
    labels = list(stores)
    results = {}
    for label in labels:
        ms = {name: statistics.median(samples[f"{label}|{name}"]) * 1000 for name in stores[label]}
        results[label] = {"ms": ms, "ratio": {k: v / ms["baseline"] for k, v in ms.items()}}
    small = labels[0]
    for label in labels[1:]:
        results[label]["over_small"] = {
            name: statistics.median(a / b for a, b in zip(samples[f"{label}|{name}"], samples[f"{small}|{name}"]))
            for name in stores[label]}
        results[label]["over_small_range"] = {
            name: (min(a / b for a, b in zip(samples[f"{label}|{name}"], samples[f"{small}|{name}"])),
                   max(a / b for a, b in zip(samples[f"{label}|{name}"], samples[f"{small}|{name}"])))
            for name in stores[label]}
    return results


def store(directory: Path, label: str, n: int) -> tuple[ComplaintService, str, float | None]:
    """The store of `n` cases in `directory`: built, or reused when a complete one is there
    (a build that was stopped leaves no `.done` mark and is built again)."""
    path = directory / f"{label}.sqlite3"
    done = directory / f"{label}.done"
    if done.exists() and done.read_text().strip() == str(n) and path.exists():
        service = ComplaintService(f"sqlite:///{path}", clock=FixedClock(NOW), notifier=FakeNotifier(),
                                   chain_key=TEST_CHAIN_KEY)
        return service, str(path), None
    for stale in directory.glob(f"{label}.sqlite3*"):
        stale.unlink()
    t0 = time.perf_counter()
    service = build(str(path), n)
    built = time.perf_counter() - t0
    done.write_text(str(n))
    return service, str(path), built


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_options(ap)
    ap.add_argument("--dir", type=Path, help="keep the stores here and reuse complete ones on the next run "
                                              "(default: a temporary directory, removed at the end)")
    args = ap.parse_args()
    sizes = store_sizes(args)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        stores, info = {}, {}
        for label, n in sizes:
            service, path, built = store(directory, label, n)
            with sqlite3.connect(path) as conn:
                counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ID_COLUMNS}
                open_role = conn.execute("SELECT count(*) FROM human_tasks WHERE status = 'open' AND role = ?",
                                         (ROLE,)).fetchone()[0]
            how = f"built in {built:.1f} s" if built is not None else "reused"
            print(f"{n:,} cases {how}: {counts}, {open_role:,} open {ROLE} tasks, "
                  f"{Path(path).stat().st_size / 2 ** 20:,.0f} MiB", file=sys.stderr)
            stores[label] = probes_of(service, path)
            info[label] = {"cases": n, "build_s": built, "rows": counts, "open_role_tasks": open_role}
        results = measure_all(stores, args.rounds)
    for label in results:
        results[label] |= info[label]
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    labels = [label for label, _ in sizes]
    print(f"{'probe':<18}" + "".join(f"{f'{n:,} ms':>15}" for _, n in sizes)
          + "".join(f"{f'{label}/small':>22}" for label in labels[1:]))
    for name in results[labels[0]]["ms"]:
        line = f"{name:<18}" + "".join(f"{results[lb]['ms'][name]:>15.2f}" for lb in labels)
        for lb in labels[1:]:
            lo, hi = results[lb]["over_small_range"][name]
            line += f"{results[lb]['over_small'][name]:>8.2f} ({lo:.2f}-{hi:.2f})"
        print(line)


if __name__ == "__main__":
    main()
