"""Cost per user action: complaintflow's service layer against the least the same work costs.

All sides run the same `enterprise_customer` case — start, then six task completions — with
the same compiled spec, the same handlers and the same engine steps (`runtime.begin` /
`complete_user_task` / `advance`):

* **floor** (the baseline: spec stored once) — the cheapest honest way to do one action
  durably. Per action: read the case's state text from a plain SQLite table (one indexed
  `SELECT`; a start reads nothing), `json.loads`, `Serializer.state_from_dict` with the
  cached spec (the spec is *not* in the state, as in the service), the action and the engine
  steps, `state_to_dict`, `json.dumps`, one `INSERT` (start) or `UPDATE` of the state text,
  and a commit. Same SQLite settings as the service (a file, WAL, synchronous=NORMAL, one
  transaction per action). Handlers are called directly (no thread for a time limit) and
  deadlines are kept in memory. It has no event log, no task rows, no form validation, no
  row-version check, no case summary: those are what the service adds, and the ratio is
  their price.
* **service** — `ComplaintService` on a SQLite file: per action one transaction with form
  validation, engine state load/save and its hash, open-task rows, the next-timer column,
  the deadline rows, the case summary and the keyed hash-chained event log.
* **embedded** (a second line, for comparison with earlier figures) — SpiffWorkflow's own
  serializer with the whole spec embedded in every case, in memory, no storage. This was
  the baseline before issue 15; it pays for re-reading the spec on every action (about
  30 KB per case after start, against about 6.5 KB of state alone) and for no durability.

Each round runs every side once (the order rotated from round to round) over `--cases`
cases; each side's time is paired with the floor's in the same round. Reported: each side's
median per-action time, and its ratio to the floor — the median over rounds of the
round's ratio, with the range (min–max) over rounds. Usage:

    python bench/bench_actions.py [--cases 20] [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sqlite3
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from interleaved import paired_rounds  # noqa: E402

from complaintflow.engine import runtime  # noqa: E402
from complaintflow.engine.calendar import BusinessCalendar  # noqa: E402
from complaintflow.engine.clock import FixedClock, IdSequence, engine_context, parse_instant  # noqa: E402
from complaintflow.engine.expressions import ComplaintScriptEngine  # noqa: E402
from complaintflow.engine.service import ComplaintService  # noqa: E402
from complaintflow.engine.spec import Serializer  # noqa: E402
from complaintflow.handlers import Services, default_registry  # noqa: E402

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}
STEPS = [
    ("preliminary_check", {"outcome": "accepted", "severity": "general", "department": "品质部"}),
    ("investigate", {"findings": "密封圈缺陷", "responsible_party": "company"}),
    ("agree_solution", {"solution_type": "replacement", "solution": "换新", "customer_agreed": True}),
    ("feedback", {"reply": "已为您换新", "reply_channel": "phone"}),
    ("satisfaction_survey", {"satisfied": "yes"}),
    ("summary_archive", {"summary": "已处理"}),
]
ACTIONS_PER_CASE = 1 + len(STEPS)


class _MemoryServices:
    def __init__(self):
        self.n = 0

    def next(self, process_id, year, prefix):
        self.n += 1
        return f"{prefix}-{year}-{self.n:06d}"

    def send(self, kind, to, message, case_number=None):
        return {"kind": kind, "to": to, "message": message, "case_number": case_number}

    def set_summary(self, **fields):
        pass


class _MemoryDeadlines:
    """The deadline book in memory (neither side without a service has deadline rows); same
    calendar arithmetic."""

    def __init__(self, calendar):
        self.calendar = calendar
        self.dues = {}

    def start(self, name, unit, amount, start, rule=None, seed=None, remind_workdays=None):
        """As engine.deadlines.DeadlineBook.start: the due moment, the row, how a previous round ended."""
        due = self.calendar.deadline(start, unit, amount)
        previous = {"round": 1, "status": "met"} if name in self.dues else None
        self.dues[name] = due.due.isoformat()
        return due, SimpleNamespace(name=name, status="open", round=2 if previous else 1), previous

    def stop(self, name, done=None):
        """As DeadlineBook.stop: met, or stopped when the case ended without the step."""
        return SimpleNamespace(name=name, status="stopped" if done is False else "met")

    def as_variable(self):
        return dict(self.dues)


def _no_incidents(log):
    failed = [e.payload for e in log.effects if e.kind == "incident" or "error" in e.payload]
    if failed:
        raise SystemExit(f"benchmark run hit an incident: {failed[0]}")


class _Engines:
    """What the floor and the embedded side share: handlers, services, one script engine per case."""

    def __init__(self, clock):
        self.clock = clock
        mem = _MemoryServices()
        self.services = Services(clock=clock, case_numbers=mem, notifier=mem, case=mem,
                                 deadlines=_MemoryDeadlines(BusinessCalendar()))
        self.registry = default_registry()

    def new_case(self, case_id):
        log = runtime.StepLog()
        engine = ComplaintScriptEngine(runtime.LiveDispatcher(self.registry, self.services, case_id,
                                                              "enterprise_customer", log))
        return log, engine, IdSequence(case_id)

    def start(self, specs, engine, ids, log):
        spec, subs = specs
        with engine_context(self.clock.now(), ids):
            wf = BpmnWorkflow(spec, subs, script_engine=engine)
            runtime.begin(wf, dict(INTAKE, rehandle_count=0))
            runtime.advance(wf, log)
        return wf

    def complete(self, wf, ids, log, name, data):
        with engine_context(self.clock.now(), ids):
            task = wf.get_next_task(state=TaskState.READY, spec_name=name)
            task.data.update(copy.deepcopy(data))      # as runtime.complete_user_task, found by name
            task.run()
            runtime.advance(wf, log)


def floor_store(path: Path) -> sqlite3.Connection:
    """The floor's store: one plain table of state texts, the service's SQLite settings."""
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS states (id TEXT PRIMARY KEY, state TEXT NOT NULL)")
    db.commit()
    return db


def run_floor(specs, cases, clock, db):
    """Spec stored once: read state text → restore with the cached spec → act → serialize →
    write the text → commit, per action."""
    ser = Serializer()
    spec, subs = specs
    side = _Engines(clock)
    for _ in range(cases):
        case_id = str(uuid.uuid4())
        log, engine, ids = side.new_case(case_id)
        wf = side.start(specs, engine, ids, log)
        text = json.dumps(ser.state_to_dict(wf), ensure_ascii=False, separators=(",", ":"))
        db.execute("INSERT INTO states (id, state) VALUES (?, ?)", (case_id, text))
        db.commit()
        for name, data in STEPS:
            (text,) = db.execute("SELECT state FROM states WHERE id = ?", (case_id,)).fetchone()
            wf = ser.state_from_dict(json.loads(text), spec, subs)
            wf.script_engine = engine
            side.complete(wf, ids, log, name, data)
            text = json.dumps(ser.state_to_dict(wf), ensure_ascii=False, separators=(",", ":"))
            db.execute("UPDATE states SET state = ? WHERE id = ?", (text, case_id))
            db.commit()
        _no_incidents(log)
        if not wf.is_completed():
            raise SystemExit("floor case did not end")


def run_embedded(specs, cases, clock):
    """SpiffWorkflow's own serializer, the spec embedded in every case, in memory."""
    ser = Serializer()
    side = _Engines(clock)
    for _ in range(cases):
        log, engine, ids = side.new_case(str(uuid.uuid4()))
        blob = ser.workflow_serializer.serialize_json(side.start(specs, engine, ids, log))
        for name, data in STEPS:
            wf = ser.workflow_serializer.deserialize_json(blob)
            wf.script_engine = engine
            side.complete(wf, ids, log, name, data)
            blob = ser.workflow_serializer.serialize_json(wf)
        _no_incidents(log)


def run_service(svc, cases):
    for _ in range(cases):
        case = svc.start("enterprise_customer", INTAKE, "bench")
        for name, data in STEPS:
            task = next(t for t in case.open_tasks if t["task"] == name)
            case = svc.complete_task(task["task_id"], "bench", data)
        if case.status != "completed":
            raise SystemExit(f"benchmark case ended {case.status}: {case.incidents}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=20, help="cases per round and side")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-embedded", action="store_true", help="floor and service only")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    clock = FixedClock(parse_instant("2026-05-06T09:00:00+08:00"))
    with tempfile.TemporaryDirectory() as tmp:
        svc = ComplaintService(f"sqlite:///{tmp}/bench.sqlite3", clock=clock, notifier=_MemoryServices(),
                               chain_key=b"b" * 32)
        svc.deploy([ROOT / "processes"])
        with svc.sessions() as s:
            from sqlalchemy import select

            from complaintflow.engine.models import ProcessVersion
            pv = s.execute(select(ProcessVersion).where(ProcessVersion.process_id == "enterprise_customer")).scalar_one()
            specs = svc.version_info(s, pv.id).specs
        db = floor_store(Path(tmp) / "floor.sqlite3")
        run_floor(specs, 2, clock, db)      # warm-up every side
        run_embedded(specs, 2, clock)
        run_service(svc, 2)

        from sqlalchemy import event
        statements = [0]
        event.listen(svc.engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
        probes = {"baseline": lambda: run_floor(specs, args.cases, clock, db),
                  "service": lambda: run_service(svc, args.cases)}
        if not args.no_embedded:
            probes["embedded"] = lambda: run_embedded(specs, args.cases, clock)
        per_action = args.cases * ACTIONS_PER_CASE

        def progress(r, samples):
            if not args.json:
                print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                    f"{'floor' if k == 'baseline' else k} {v[-1] / per_action * 1e3:.2f}" for k, v in samples.items())
                    + " ms/action", file=sys.stderr)
        paired = paired_rounds(probes, args.rounds, repeat=1, on_round=progress)
        db.close()

    ms = {k: statistics.median(v) / per_action * 1e3 for k, v in paired["samples"].items()}
    result = {"process": "enterprise_customer", "actions_per_case": ACTIONS_PER_CASE, "cases_per_round": args.cases,
              "rounds": args.rounds,
              "floor_ms_per_action": round(ms["baseline"], 3),
              "service_ms_per_action": round(ms["service"], 3),
              "ratio": round(paired["median_ratio"]["service"], 2),
              "ratio_range": [round(x, 2) for x in paired["ratio_range"]["service"]],
              "round_ratios": [round(x, 2) for x in paired["round_ratios"]["service"]],
              "sql_statements_per_action": round(statements[0] / (args.rounds * per_action), 1)}
    if "embedded" in ms:
        result["embedded_ms_per_action"] = round(ms["embedded"], 3)
        result["service_over_embedded"] = round(statistics.median(
            s / e for s, e in zip(paired["samples"]["service"], paired["samples"]["embedded"])), 2)
    if args.json:
        print(json.dumps(result))
    else:
        lo, hi = result["ratio_range"]
        print(f"floor    (spec stored once, state text in SQLite, commit per action): "
              f"{result['floor_ms_per_action']} ms/action")
        print(f"service  (complaintflow on SQLite: rows, event log, commit per action): "
              f"{result['service_ms_per_action']} ms/action")
        print(f"ratio service/floor: {result['ratio']}x median over {args.rounds} rounds "
              f"(range {lo}-{hi}; target <= 1.5x)")
        if "embedded" in ms:
            print(f"embedded (SpiffWorkflow's serializer, spec in every case, in memory): "
                  f"{result['embedded_ms_per_action']} ms/action; service/embedded {result['service_over_embedded']}x")
        print(f"SQL statements per service action: {result['sql_statements_per_action']}")
    return result


if __name__ == "__main__":
    main()
