"""The worker processes of the crash test (test_crash.py): each loops over random actions on
one database through the service layer until a stop file appears, or until it is killed.

    python tests/crash_worker.py RUN_DIR

starts a *zygote*: it imports everything and builds a service once — schema checked, the
deployed versions loaded, the calendar year built, then its connections closed — and then
reads `SLOT INCARNATION` lines on stdin and forks a worker for each, answering its pid on
stdout. Forking that warm interpreter takes milliseconds where starting one costs seconds of
CPU, so the test can kill and restart workers often without the run being spent warming up.
A worker is a process of its own, with its own database connections (opened after the fork)
and its own lease owner id; the test kills it by pid with SIGKILL.

RUN_DIR holds `run.json` (database URL, seed, clock start), written by the test before any
worker starts. After each action that *returned*, the worker appends one JSON line to its
own journal (`journal-SLOT-INCARNATION.jsonl`) and fsyncs it: lines with `"ok": true` are the
actions the system acknowledged, which must all be found in the database after any number of
kills. A line is written with one `write` call on an O_APPEND descriptor; a kill in the middle
of it leaves at most a torn last line in this incarnation's own file, which the reader skips.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from concurrency import MINI, TEST_KEY  # noqa: E402  (tests/ is on the path now)

PROCESSES = TESTS.parent / "processes"
ENTERPRISE = PROCESSES / "enterprise_customer.bpmn"
LEASE_SECONDS = 3.0     # the SQLite lease of a killed worker runs out this soon (service default: >= 120 s)
USERS = {"reception": ["li", "wang"], "department": ["zhao", "qian"], "manager": ["wu"]}
WEIGHTS = {"start": 20, "complete": 40, "claim": 12, "tick": 18, "message": 10}


class SimClock:
    """Simulated time shared by every process of a run by construction: each computes it from
    the same two numbers in run.json, `real_start` (a Unix time) and `sim_start`, as
    sim_start + (time.time() - real_start) * `sim_per_real` — one real second is one simulated
    hour by default. All processes read one system clock, so their simulated clocks agree, and
    within a process the clock never goes back (time.time() could step; this one holds)."""

    def __init__(self, real_start: float, sim_start: datetime, sim_per_real: float = 3600.0):
        self.real_start, self.sim_start, self.sim_per_real = real_start, sim_start, sim_per_real
        self._last = sim_start

    @classmethod
    def from_run(cls, run: dict) -> "SimClock":
        from complaintflow.engine.clock import parse_instant
        return cls(run["real_start"], parse_instant(run["sim_start"]), run["sim_per_real"])

    def now(self) -> datetime:
        at = self.sim_start + timedelta(seconds=(time.time() - self.real_start) * self.sim_per_real)
        self._last = max(self._last, at)
        return self._last


def read_run(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


def make_service(run: dict):
    from complaintflow.engine.service import ComplaintService
    from complaintflow.handlers import default_registry
    service = ComplaintService(run["db_url"], clock=SimClock.from_run(run),
                               handlers=default_registry("support_handlers"), chain_key=TEST_KEY)
    service.lease_seconds = LEASE_SECONDS
    return service


def journal_lines(run_dir: Path) -> list[dict]:
    """Every whole line of every journal of the run (a torn last line is skipped)."""
    out = []
    for path in sorted(Path(run_dir).glob("journal-*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"op": "torn", "ok": False, "outcome": "torn", "file": path.name})
    return out


# --- form data ------------------------------------------------------------------------------

def mini_intake(rng, now):
    return {"subject": rng.choice(["发票开错", "快递丢件", "客服态度"]),
            "due_at": (now + timedelta(hours=rng.uniform(0.3, 6))).isoformat()}


def enterprise_intake(rng, now):
    return {"channel": rng.choice(["hotline", "email", "visit"]), "complainant": "王女士",
            "contact": f"138{rng.randrange(10 ** 8):08d}", "category": rng.choice(["product_quality", "returns"]),
            "content": "新买的电水壶漏水",
            "promised_resolution_at": (now + timedelta(hours=rng.uniform(0.5, 10))).isoformat()}


def task_data(rng, process_id, task):
    """Form data a user of the task's role would submit (None: a task this driver does not know)."""
    if process_id == "mini":
        return {"review": {"verdict": "ok"}, "close": {"note": "已处理"}, "supervise": {"note": "请尽快"}}.get(task)
    if task == "preliminary_check":
        return rng.choice([
            {"outcome": "accepted", "severity": "general", "department": "品质部"},
            {"outcome": "accepted", "severity": "general", "department": "品质部"},
            {"outcome": "accepted", "severity": "major", "department": "售后部"},
            {"outcome": "settled", "severity": "general", "on_spot_resolution": "当场更换"},
            {"outcome": "refused", "severity": "general", "refusal_reason": "重复恶意投诉"}])
    return {"major_instruction": {"instruction": "今天内联系客户"},
            "investigate": {"findings": "密封圈缺陷", "responsible_party": "company"},
            "agree_solution": {"solution_type": "replacement", "solution": "换新", "customer_agreed": True},
            "feedback": {"reply": "已为您换新", "reply_channel": "phone"},
            "satisfaction_survey": {"satisfied": rng.choice(["yes", "yes", "no"])},
            "summary_archive": {"summary": "已处理"},
            "supervise": {"supervision_note": "今天必须答复"}}.get(task)


# --- actions --------------------------------------------------------------------------------

def open_tasks(service):
    from sqlalchemy import select
    from complaintflow.engine.models import HumanTask
    with service.sessions() as s:
        return list(s.execute(select(HumanTask.id, HumanTask.instance_id, HumanTask.process_id, HumanTask.task_spec,
                                     HumanTask.role, HumanTask.claimed_by)
                              .where(HumanTask.status == "open")).all())


def act(service, rng, op) -> dict | None:
    """Run one action; return its journal record (None: nothing to do)."""
    now = service.clock.now()
    if op == "start":
        if rng.random() < 0.6:
            process_id, data = "mini", mini_intake(rng, now)
        else:
            process_id, data = "enterprise_customer", enterprise_intake(rng, now)
        user = rng.choice(USERS["reception"])
        result = service.start(process_id, data, user)
        return {"instance_id": result.instance_id, "case_number": result.case_number, "process_id": process_id,
                "user": user}
    if op in ("complete", "claim"):
        rows = open_tasks(service)
        if op == "claim":
            rows = [r for r in rows if r.claimed_by is None]
        if not rows:
            return None
        row = rng.choice(rows)
        users = USERS.get(row.role) or ["someone"]
        if op == "claim":
            user = rng.choice(users)
            service.claim_task(row.id, user)
            return {"task_id": row.id, "instance_id": row.instance_id, "user": user}
        user = row.claimed_by if row.claimed_by and rng.random() < 0.8 else rng.choice(users)
        data = task_data(rng, row.process_id, row.task_spec)
        if data is None:
            return {"skip": f"no data for {row.process_id}/{row.task_spec}"}
        result = service.complete_task(row.id, user, data)
        return {"task_id": row.id, "instance_id": row.instance_id, "task": row.task_spec, "user": user,
                "status": result.status}
    if op == "message":
        from sqlalchemy import select
        from complaintflow.engine.models import HumanTask, Instance
        with service.sessions() as s:
            waiting = list(s.execute(select(Instance.id).join(HumanTask, HumanTask.instance_id == Instance.id)
                                     .where(Instance.process_id == "mini", Instance.status == "running",
                                            HumanTask.task_spec == "close", HumanTask.status == "completed")).scalars())
        if not waiting:
            return None
        instance_id = rng.choice(waiting)
        result = service.send_message(instance_id, "customer_reply", {"text": "满意"}, "customer")
        return {"instance_id": instance_id, "status": result.status}
    if op == "tick":
        result = service.tick()
        return {"now": result["now"], "timers_fired": result["timers_fired"], "instances": result["instances"],
                "skipped": len(result["skipped"]), "refused": result["refused"], "failed": result["failed"]}
    raise ValueError(op)


def main(run_dir: str, slot: str, incarnation: str, service) -> None:
    from complaintflow.engine.errors import ComplaintflowError
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    rng = random.Random(f"{run['seed']}-{slot}-{incarnation}")
    service.engine.dispose(close=False)      # SQLAlchemy after a fork: never touch the parent's connections
    service.worker_id = f"crash-worker:{os.getpid()}:{slot}-{incarnation}"     # its own lease owner
    fd = os.open(run_dir / f"journal-{slot}-{incarnation}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def journal(record: dict) -> None:
        os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        os.fsync(fd)

    (run_dir / f"ready-{slot}-{incarnation}").touch()
    stop = run_dir / "stop"
    ops, weights = list(WEIGHTS), list(WEIGHTS.values())
    while not stop.exists():
        op = rng.choices(ops, weights)[0]
        try:
            record = act(service, rng, op)
        except ComplaintflowError as err:      # refused or lost a race: nothing acknowledged
            journal({"op": op, "ok": False, "outcome": type(err).__name__, "message": str(err)[:300]})
            continue
        except Exception as err:               # a failure the service should never let through
            journal({"op": op, "ok": False, "outcome": "crash", "message": f"{type(err).__name__}: {err}",
                     "trace": traceback.format_exc()[-3000:]})
            continue
        if record is not None and "skip" in record:
            journal({"op": op, "ok": False, "outcome": "skip", "message": record["skip"]})
        elif record is not None:
            journal({"op": op, "ok": True, **record})
    os.close(fd)


def warm_service(run: dict):
    """A service with what every worker would otherwise build first: the schema checked, each
    deployed version's spec loaded, the calendar's years built; no connection left open."""
    from sqlalchemy import select
    from complaintflow.engine.models import ProcessVersion
    import support_handlers  # noqa: F401
    service = make_service(run)
    with service.sessions() as s:
        for version_id in s.execute(select(ProcessVersion.id)).scalars():
            service.version_info(s, version_id)
    sim_year = SimClock.from_run(run).now().year
    for year in (sim_year, sim_year + 1):
        service.calendar.year(year)
    service.engine.dispose()
    return service


def zygote(run_dir: str) -> None:
    service = warm_service(read_run(Path(run_dir)))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)       # workers are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        slot, incarnation = line.split()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            log = os.open(Path(run_dir) / f"worker-{slot}-{incarnation}.log", os.O_WRONLY | os.O_CREAT, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            code = 0
            try:
                main(run_dir, slot, incarnation, service)
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            Path(run_dir, f"exit-{slot}-{incarnation}").write_text(str(code))
            os._exit(code)
        print(pid, flush=True)


if __name__ == "__main__":
    zygote(sys.argv[1])
