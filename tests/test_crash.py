"""Crash safety: worker processes killed with SIGKILL at random moments, many times, on one
database (SQLite file and PostgreSQL), and afterwards nothing acknowledged is lost, nothing
is doubled, no case is stuck and every case replays consistent.

Design
------
* **Workers** (`crash_worker.py`: processes forked from a "zygote" that imported everything
  and warmed a service once, so a restart costs milliseconds instead of seconds of CPU; each
  opens its own connections) each loop at random over the service layer's actions: start a case (`tests/fixtures/mini` or the
  shipped `enterprise_customer`), complete an open task, claim one, deliver a message, tick.
  After an action *returns*, the worker appends a JSON line to its own journal and fsyncs it:
  those lines are what the system acknowledged. A kill between the commit and the journal
  line loses only the acknowledgement, never the other way round, so "every journal line is
  in the database" is exactly the durability promise.
* **Kills**: the test picks a running worker at random, waits a random 0-0.8 s, sends SIGKILL
  (no handler, no cleanup: a power cut for the process, with its transaction, its SQLite
  lease or PostgreSQL row lock, its half-taken case number wherever they happened to be) and
  starts a new incarnation in its slot. 30 kills by default, 300 with `pytest --long`.
* **Time** must pass so that timers fall due during the run, without sleeping and the same
  for everyone: `SimClock` maps real elapsed time onto simulated time, one real second to one
  simulated hour from 2026-05-06 09:00 (Beijing). It is shared by construction: every process
  computes it from the start timestamp the test writes to `run.json` before any worker
  starts, and it only moves forward. Intake forms set due times a few simulated hours
  ahead (`mini` 0.3-6 h, `enterprise_customer` promises 0.5-10 h), so timers fall due
  within the run and the ticks fire them while workers die around them.
* **SQLite leases**: a tick takes a case on SQLite with a lease on its row (service.py
  `_leased`) that a killed worker leaves behind until it runs out. The workers shorten the
  lease from the service's 120 s to `LEASE_SECONDS` (3 s), so that a dead worker's lease runs
  out within the run as it would after minutes in production; the final check asserts that
  no lease outlives that, waits for the ones left to run out, and asserts that one tick then
  processes every due case.

Checks after all workers stopped: every acknowledged start is a case with its number, every
acknowledged completion has its `task_completed` event by that user, every acknowledged
claim holds, every acknowledged message is in its case; one `task_completed` per task and
one `timer_fired` per timer; no case number twice; every case's events numbered 1..n with no
gap, in time order; statuses that fit the rows (a closed case has no open task, a running one
no open incident); no lease that outlives its expiry; a final tick that processes every due
case without skipping or failing any; every case replays consistent (the hash chain, the
state rebuilt from the log, and the task, deadline and case rows).

CF_CRASH_SEED=<the seed printed on failure> repeats a run's random choices (not its timing);
each run prints its figures (`pytest -s`). The same file holds the deterministic test of the
race the run found (a claim committed while a completion ran).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from complaintflow.engine.models import Event, HumanTask, Incident, Instance
from crash_worker import ENTERPRISE, LEASE_SECONDS, MINI, journal_lines, make_service

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

WORKER = Path(__file__).resolve().parent / "crash_worker.py"
WORKERS = 3
SIM_START = "2026-05-06T09:00:00+08:00"
CASE_NUMBER = re.compile(r"^(MINI|KH)-2026-\d{6}$")


class Fleet:
    """The worker slots, one live worker per slot, forked by the zygote of crash_worker.py;
    each incarnation writes its own journal and log."""

    def __init__(self, run_dir: Path, n: int):
        self.run_dir, self.pids, self.incarnation = run_dir, {}, {}
        self.zygote = subprocess.Popen([sys.executable, str(WORKER), str(run_dir)], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        assert self.zygote.stdout.readline().strip() == "ready"
        for slot in range(n):
            self.incarnation[slot] = 0
            self.start(slot)

    def start(self, slot: int) -> None:
        self.zygote.stdin.write(f"{slot} {self.incarnation[slot]}\n")
        self.zygote.stdin.flush()
        self.pids[slot] = int(self.zygote.stdout.readline())

    def _file(self, kind: str, slot: int) -> Path:
        return self.run_dir / f"{kind}-{slot}-{self.incarnation[slot]}"

    def ready(self, slot: int) -> bool:
        return self._file("ready", slot).exists()

    def check_alive(self) -> None:
        for slot in self.pids:
            if self._file("exit", slot).exists():
                log = Path(f"{self._file('worker', slot)}.log").read_text(errors="replace")
                raise AssertionError(f"worker {slot} stopped by itself:\n{log[-4000:]}")

    def kill_and_restart(self, slot: int) -> None:
        os.kill(self.pids[slot], signal.SIGKILL)
        _wait_gone(self.pids[slot])
        self.incarnation[slot] += 1
        self.start(slot)

    def stop(self, limit: float = 60.0) -> None:
        (self.run_dir / "stop").touch()
        end = time.monotonic() + limit
        for slot, pid in self.pids.items():
            _wait_gone(pid, max(0.1, end - time.monotonic()))
            exit_file = self._file("exit", slot)
            assert exit_file.exists() and exit_file.read_text() == "0", \
                Path(f"{self._file('worker', slot)}.log").read_text(errors="replace")[-4000:]
        self.zygote.stdin.close()
        self.zygote.wait(timeout=30)

    def kill_all(self) -> None:
        for pid in self.pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.zygote.kill()
        self.zygote.wait()


def _wait_gone(pid: int, limit: float = 30.0) -> None:
    """Wait until a worker (a child of the zygote, reaped by the kernel) no longer exists."""
    end = time.monotonic() + limit
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > end:
            raise AssertionError(f"worker process {pid} is still there after {limit:g} s")
        time.sleep(0.005)


def test_workers_killed_at_random_lose_nothing_acknowledged(db_url, backend, tmp_path, request):
    long_run = request.config.getoption("--long")
    kills_wanted = 300 if long_run else 30
    seed = int(os.environ.get("CF_CRASH_SEED") or random.randrange(2 ** 32))
    rng = random.Random(seed)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run = {"db_url": db_url, "seed": seed, "real_start": time.time(), "sim_start": SIM_START, "sim_per_real": 3600.0}
    (run_dir / "run.json").write_text(json.dumps(run))
    svc = make_service(run)                 # migrates the new database; the workers find it ready
    svc.deploy([MINI, ENTERPRISE])

    began = time.monotonic()
    fleet = Fleet(run_dir, WORKERS)
    kills = 0
    try:
        while kills < kills_wanted:
            fleet.check_alive()
            ready = [slot for slot in fleet.pids if fleet.ready(slot)]
            if not ready:
                time.sleep(0.05)
                continue
            slot = rng.choice(ready)
            time.sleep(rng.uniform(0.0, 0.8))       # somewhere in whatever it is doing now
            fleet.check_alive()
            fleet.kill_and_restart(slot)
            kills += 1
        while not all(fleet.ready(slot) for slot in fleet.pids):   # the last ones do some work too
            fleet.check_alive()
            time.sleep(0.05)
        time.sleep(1.0)
        fleet.stop()
    except BaseException:
        fleet.kill_all()
        raise
    chaos_seconds = time.monotonic() - began

    try:
        figures = check_run(svc, run_dir, backend)
    except AssertionError as err:
        raise AssertionError(f"{err}\n(reproduce with CF_CRASH_SEED={seed}; run directory {run_dir})") from None
    figures.update(backend=backend, seed=seed, kills=kills, workers=WORKERS, chaos_seconds=round(chaos_seconds, 1),
                   total_seconds=round(time.monotonic() - began, 1))
    print(f"\ncrash run: {json.dumps(figures)}")


def check_run(svc, run_dir: Path, backend: str) -> dict:
    lines = journal_lines(run_dir)
    crashes = [line for line in lines if line.get("outcome") == "crash"]
    assert not crashes, f"{len(crashes)} action(s) failed unexpectedly; the first:\n{crashes[0]['trace']}"
    refused = [line for line in lines if not line["ok"] and line["outcome"] not in ("Conflict", "skip", "torn")]
    odd = [line for line in refused if not (line["outcome"] == "InvalidInput"
                                            and "time only moves forward" in line["message"])]
    assert not odd, f"refusals a valid action should never get: {odd[:3]}"
    acked = [line for line in lines if line["ok"]]
    by_op = defaultdict(list)
    for line in acked:
        by_op[line["op"]].append(line)

    with svc.sessions() as s:
        cases = {i.id: i for i in s.execute(select(Instance)).scalars()}
        events = defaultdict(list)
        for e in s.execute(select(Event).order_by(Event.instance_id, Event.seq)).scalars():
            events[e.instance_id].append(e)
        tasks = {t.id: t for t in s.execute(select(HumanTask)).scalars()}
        open_incidents = {r.instance_id for r in s.execute(select(Incident).where(Incident.resolved_at.is_(None))).scalars()}

    # nothing acknowledged is lost
    for line in by_op["start"]:
        inst = cases.get(line["instance_id"])
        assert inst is not None, f"acknowledged start lost: {line}"
        assert inst.case_number == line["case_number"] and inst.process_id == line["process_id"], (line, inst.case_number)
        first = events[inst.id][0]
        assert first.kind == "started" and first.actor == line["user"], line
    completed_events = defaultdict(list)
    for evs in events.values():
        for e in evs:
            if e.kind == "task_completed":
                completed_events[e.task_id].append(e)
    for line in by_op["complete"]:
        evs = completed_events.get(line["task_id"], [])
        assert [e.actor for e in evs] == [line["user"]], f"acknowledged completion {line} has events {evs}"
        row = tasks[line["task_id"]]
        assert row.status == "completed" and row.completed_by == line["user"], line
    for line in by_op["claim"]:
        row = tasks[line["task_id"]]
        assert row.claimed_by == line["user"], f"acknowledged claim {line}, but the task is claimed by {row.claimed_by}"
        if row.status == "completed":
            assert row.completed_by == line["user"], \
                f"task {row.id} was claimed by {line['user']} (acknowledged) but completed by {row.completed_by}"
    for line in by_op["message"]:
        kinds = [e.kind for e in events[line["instance_id"]]]
        assert kinds.count("message_received") == 1, f"acknowledged message {line}: {kinds}"
    ticks = by_op["tick"]
    assert all(not t["failed"] for t in ticks), [t["failed"] for t in ticks if t["failed"]][:3]

    # nothing doubled, no gap, nothing impossible
    for task_id, evs in completed_events.items():
        assert len(evs) == 1, f"task {task_id} completed {len(evs)} times"
        assert tasks[task_id].status == "completed" and tasks[task_id].completed_by == evs[0].actor
    assert all(t.id in completed_events for t in tasks.values() if t.status == "completed")
    numbers = Counter(i.case_number for i in cases.values())
    assert all(n and CASE_NUMBER.match(n) for n in numbers), numbers
    assert max(numbers.values(), default=1) == 1, [n for n, c in numbers.items() if c > 1]
    timers = Counter((e.instance_id, e.task_id) for evs in events.values() for e in evs if e.kind == "timer_fired")
    assert max(timers.values(), default=1) == 1, [k for k, c in timers.items() if c > 1]
    for inst in cases.values():
        evs = events[inst.id]
        assert [e.seq for e in evs] == list(range(1, len(evs) + 1)) and len(evs) == inst.last_event_seq, \
            f"case {inst.case_number}: event sequence {[e.seq for e in evs]}, last_event_seq {inst.last_event_seq}"
        assert evs[0].kind == "started"
        ats = [e.at for e in evs]
        assert ats == sorted(ats), f"case {inst.case_number}: events out of time order: {ats}"
        assert [e.step for e in evs] == sorted(e.step for e in evs)
        open_here = [t for t in tasks.values() if t.instance_id == inst.id and t.status == "open"]
        assert inst.status in ("running", "completed"), f"case {inst.case_number} is {inst.status}"
        assert inst.id not in open_incidents, f"case {inst.case_number} has an open incident (no handler fails here)"
        if inst.status == "completed":
            assert inst.closed_at is not None and not open_here and inst.next_due_at is None, inst.case_number

    # nothing stuck: leases run out, then one tick processes every due case
    wall = datetime.now(timezone.utc)
    leased = [i for i in cases.values() if i.lease_owner is not None or i.lease_until is not None]
    if backend == "postgresql":
        assert not leased, "PostgreSQL locks rows; it never writes leases"
    for inst in leased:
        left = (inst.lease_until - wall).total_seconds()
        assert left <= LEASE_SECONDS + 1, f"case {inst.case_number}: a lease {left:.0f} s long ({inst.lease_owner})"
    if leased:
        time.sleep(max(0.0, max((i.lease_until - wall).total_seconds() for i in leased)) + 0.2)
    final = svc.tick()
    assert (final["failed"], final["skipped"], final["refused"]) == ([], [], []), final
    with svc.sessions() as s:
        stuck = list(s.execute(select(Instance.case_number).where(
            Instance.next_due_at <= datetime.fromisoformat(final["now"]), Instance.status != "completed")).scalars())
    assert not stuck, f"due cases the final tick left: {stuck}"

    # every case replays consistent
    for inst in cases.values():
        report = svc.replay(inst.id)
        assert report.consistent is True, f"case {inst.case_number}: {report.as_dict()['first_difference']}"

    from complaintflow.engine.models import CaseCounter
    with svc.sessions() as s:
        taken = sum(s.execute(select(CaseCounter.last_value)).scalars())
    outcomes = Counter(line["outcome"] for line in lines if not line["ok"])
    return {"acknowledged": {op: len(v) for op, v in sorted(by_op.items())}, "refused": dict(outcomes),
            "cases": len(cases), "completed_cases": sum(i.status == "completed" for i in cases.values()),
            "events": sum(len(v) for v in events.values()), "timers_fired": sum(timers.values()),
            "case_numbers_unused": taken - len(cases), "leases_left": len(leased),
            "final_tick_fired": final["timers_fired"]}


def test_a_claim_committed_while_a_completion_runs_wins(db_url, tmp_path):
    """Found by the run above: user A claimed a task while user B's completion of it was
    running (past its claim check, inside a handler); both were acknowledged, and B's work
    went in over A's claim. Now the claim is checked again after the completion's writes,
    where it can no longer change: the completion loses with a Conflict that names A."""
    from complaintflow.engine.errors import Conflict
    from concurrency import INTAKE, Gate, Workers, _service
    svc = _service(db_url)
    svc.deploy([MINI])
    gate = Gate(tmp_path / "gate")
    workers = Workers(1, db_url, gate)
    try:
        case = svc.start("mini", INTAKE, "alice")
        task_id = case.open_tasks[0]["task_id"]
        gate.block(case.instance_id)
        workers.send(0, "complete", task_id, "bob", {"verdict": "ok"})
        gate.wait_arrivals(case.instance_id, 1, workers=workers)    # bob's completion is inside test.flaky
        assert svc.claim_task(task_id, "carol")["claimed_by"] == "carol"
        gate.open(case.instance_id)
        (done,) = workers.results(1)
    finally:
        workers.close()
    assert done["outcome"] == "conflict" and done["by"] == "carol", done
    assert "was claimed by carol" in done["message"] and "nothing was changed" in done["message"]
    with svc.sessions() as s:
        row = s.get(HumanTask, task_id)
        assert (row.status, row.claimed_by, row.completed_by) == ("open", "carol", None)
    assert [e["kind"] for e in svc.history(case.instance_id)].count("task_completed") == 0
    result = svc.complete_task(task_id, "carol", {"verdict": "ok"})    # the holder can still complete it
    assert result.status == "running"
    assert svc.replay(case.instance_id).consistent is True
    try:
        svc.complete_task(task_id, "bob", {"verdict": "ok"})
    except Conflict as err:
        assert "already completed by carol" in str(err)
    else:
        raise AssertionError("a completed task completed again")
