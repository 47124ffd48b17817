"""Cost per user action: complaintflow's service layer against the raw SpiffWorkflow round trip.

Both sides run the same `enterprise_customer` case (start, then six task completions) with
the same compiled spec and the same handlers:

* baseline — SpiffWorkflow alone, in memory, per action: deserialize the instance (its own
  serializer, spec embedded), complete the task and run engine steps, serialize it again;
* service — `ComplaintService` on a SQLite file: per action one transaction with form
  validation, engine state load/save (spec stored once per version, cached), open-task
  rows, the next-timer column, incidents and the hash-chained event log.

Rounds alternate between the two so that machine noise hits both alike; the report gives
the median per-action time of each and their ratio. Usage:

    python bench/bench_actions.py [--cases 20] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

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
    """The deadline book in memory (the baseline has no database); same calendar arithmetic."""

    def __init__(self, calendar):
        self.calendar = calendar
        self.dues = {}

    def start(self, name, unit, amount, start, rule=None, seed=None, remind_workdays=None):
        due = self.calendar.deadline(start, unit, amount)
        self.dues[name] = due.due.isoformat()
        return due

    def stop(self, name):
        from types import SimpleNamespace
        return SimpleNamespace(name=name, status="met")

    def as_variable(self):
        return dict(self.dues)


class _QuietNotifier(_MemoryServices):
    pass


def _no_incidents(log):
    failed = [e.payload for e in log.effects if e.kind == "incident" or "error" in e.payload]
    if failed:
        raise SystemExit(f"benchmark run hit an incident: {failed[0]}")


def run_baseline(specs, cases, clock):
    """SpiffWorkflow alone: deserialize → act → serialize, per action, in memory."""
    ser = Serializer()
    spec, subs = specs
    mem = _MemoryServices()
    services = Services(clock=clock, case_numbers=mem, notifier=mem, case=mem,
                        deadlines=_MemoryDeadlines(BusinessCalendar()))
    registry = default_registry()
    t0 = time.perf_counter()
    for _ in range(cases):
        log = runtime.StepLog()
        engine = ComplaintScriptEngine(runtime.LiveDispatcher(registry, services, "x", "enterprise_customer", log))
        ids = IdSequence("bench")
        with engine_context(clock.now(), ids):
            wf = BpmnWorkflow(spec, subs, script_engine=engine)
            runtime.begin(wf, dict(INTAKE, rehandle_count=0))
            runtime.advance(wf, log)
        blob = ser.workflow_serializer.serialize_json(wf)
        for name, data in STEPS:
            wf = ser.workflow_serializer.deserialize_json(blob)
            wf.script_engine = engine
            with engine_context(clock.now(), ids):
                task = wf.get_next_task(state=TaskState.READY, spec_name=name)
                task.data.update(data)
                task.run()
                runtime.advance(wf, log)
            blob = ser.workflow_serializer.serialize_json(wf)
        _no_incidents(log)
    return (time.perf_counter() - t0) / (cases * ACTIONS_PER_CASE)


def run_service(svc, cases):
    t0 = time.perf_counter()
    for _ in range(cases):
        case = svc.start("enterprise_customer", INTAKE, "bench")
        for name, data in STEPS:
            task = next(t for t in case.open_tasks if t["task"] == name)
            case = svc.complete_task(task["task_id"], "bench", data)
        if case.status != "completed":
            raise SystemExit(f"benchmark case ended {case.status}: {case.incidents}")
    return (time.perf_counter() - t0) / (cases * ACTIONS_PER_CASE)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=20, help="cases per round and side")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    clock = FixedClock(parse_instant("2026-05-06T09:00:00+08:00"))
    with tempfile.TemporaryDirectory() as tmp:
        svc = ComplaintService(f"sqlite:///{tmp}/bench.sqlite3", clock=clock, notifier=_QuietNotifier())
        svc.deploy([ROOT / "processes"])
        with svc.sessions() as s:
            from sqlalchemy import select

            from complaintflow.engine.models import ProcessVersion
            pv = s.execute(select(ProcessVersion).where(ProcessVersion.process_id == "enterprise_customer")).scalar_one()
            specs = svc.version_info(s, pv.id).specs
        run_baseline(specs, 2, clock)   # warm-up both sides
        run_service(svc, 2)
        from sqlalchemy import event
        statements = [0]
        event.listen(svc.engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
        base, serv = [], []
        for r in range(args.rounds):
            base.append(run_baseline(specs, args.cases, clock))
            serv.append(run_service(svc, args.cases))
            if not args.json:
                print(f"round {r + 1}/{args.rounds}: baseline {base[-1] * 1e3:.2f} ms/action, "
                      f"service {serv[-1] * 1e3:.2f} ms/action", file=sys.stderr)
    b, s = statistics.median(base), statistics.median(serv)
    result = {"process": "enterprise_customer", "actions_per_case": ACTIONS_PER_CASE, "cases_per_round": args.cases,
              "rounds": args.rounds, "baseline_ms_per_action": round(b * 1e3, 3),
              "service_ms_per_action": round(s * 1e3, 3), "ratio": round(s / b, 2),
              "sql_statements_per_action": round(statements[0] / (args.rounds * args.cases * ACTIONS_PER_CASE), 1)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"baseline (SpiffWorkflow round trip, in memory): {result['baseline_ms_per_action']} ms/action")
        print(f"service  (complaintflow, SQLite file, event log): {result['service_ms_per_action']} ms/action")
        print(f"ratio service/baseline: {result['ratio']}x (target <= 2.0x)")
        print(f"SQL statements per service action: {result['sql_statements_per_action']}")
    return result


if __name__ == "__main__":
    main()
