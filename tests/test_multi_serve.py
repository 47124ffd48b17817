"""Several service processes on one PostgreSQL database: three `complaintflow serve` processes,
each on its own port of 127.0.0.1 with its own scheduler ticking every second, one database,
one chain key file, one COMPLAINTFLOW_SECRET_KEY — the set-up docs/operations.md describes for
running behind a reverse proxy.

The three start at once, so all three deploy `processes/` at the same moment. Then client
threads drive a few hundred actions through all three over real HTTP (urllib with a cookie
jar per browser, CSRF tokens from the pages, the demo users): registrations, claims, task
completions — some of them deliberately colliding on one task through two different servers —
while the three ticks race for the same due timers.

Timers without waiting on real time: the servers act at a fixed moment (COMPLAINTFLOW_NOW,
10:00), and the test itself, acting at 09:00 through the service layer, starts cases of the
test process `mini` whose review is due at 09:30 — some before the servers start, more while
the browsers work. For the servers each is due at once: the three ticks race for it, and the
manager completes the supervision task its firing opens. Cases due later, and the complaints
registered through the web (promised ten days on), must not fire.

Afterwards: no answer was a server error (a collision is a 409, a claim that lost is a
redirect with a message); nothing acknowledged is lost (every registration answered with its
case page is a case, every completion answered with the inbox has its event); nothing doubled
(one `task_completed` per task, one winner per collision, unique case numbers, one version
per process); every timer that was due fired exactly once and no other did; every case
replays consistent; no traceback in any server's output.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from complaintflow.engine.clock import parse_instant
from complaintflow.engine.models import Event, HumanTask, Instance, ProcessVersion
from concurrency import MINI, TEST_KEY
from conftest import ROOT

CLI = str(Path(sys.executable).parent / "complaintflow")
NOW = "2026-05-11T10:00:00+08:00"          # a Monday; the servers' fixed moment
SEEDED_AT = "2026-05-11T09:00:00+08:00"    # the moment the test starts its `mini` cases
DUE = "2026-05-11T09:30:00+08:00"          # a review due before NOW: the servers' ticks fire it
NOT_DUE = "2026-05-12T17:00:00+08:00"
PROMISE = "2026-05-21T17:00"               # datetime-local, Beijing: web complaints, never due in the run
SERVERS = 3
REGISTRATIONS = 90                          # through the web; each is accepted, settled or refused below
SEEDS_BEFORE, SEEDS_DURING = 24, 24         # `mini` cases due at once, before the servers start / meanwhile
SECRET = "multi-serve-test-secret-" + "0" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    """Three `complaintflow serve` processes on one database; their output in log files."""

    def __init__(self, tmp_path: Path, db_url: str, n: int = SERVERS):
        key = tmp_path / "chain_key"
        key.write_text(TEST_KEY.hex())
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTFLOW_")}
        env.update(COMPLAINTFLOW_DATABASE_URL=db_url, COMPLAINTFLOW_CHAIN_KEY_FILE=str(key),
                   COMPLAINTFLOW_SECRET_KEY=SECRET, COMPLAINTFLOW_NOW=NOW, PYTHONUNBUFFERED="1")
        self.ports = [free_port() for _ in range(n)]
        self.logs = [tmp_path / f"serve-{i}.log" for i in range(n)]
        self.procs = []
        for port, log in zip(self.ports, self.logs):
            with open(log, "wb") as out:
                self.procs.append(subprocess.Popen(
                    [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--tick-seconds", "1"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))

    def output(self, i: int) -> str:
        return self.logs[i].read_text(encoding="utf-8", errors="replace")

    def wait_healthy(self, limit: float = 180.0) -> None:
        end = time.monotonic() + limit
        waiting = set(range(len(self.ports)))
        while waiting:
            for i in sorted(waiting):
                if self.procs[i].poll() is not None:
                    raise AssertionError(f"serve {i} exited with {self.procs[i].returncode}:\n{self.output(i)[-5000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[i]}/healthz", timeout=2) as r:
                        if r.status == 200 and json.load(r) == {"status": "ok"}:
                            waiting.discard(i)
                except (OSError, ValueError):
                    pass
            if waiting and time.monotonic() > end:
                raise AssertionError(f"serve {sorted(waiting)} did not answer /healthz within {limit:g} s")
            time.sleep(0.2)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None                 # a 3xx comes back as it is: its Location is the answer


class Browser:
    """One signed-in person's browser: a cookie jar (the session cookie works on all three
    servers: one secret key, sessions in the shared database) and the page's CSRF token.
    One thread uses it at a time, as one browser tab would."""

    def __init__(self, login: str, ports: list[int], record):
        self.login, self.ports, self.record = login, ports, record
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  _NoRedirect)
        self.csrf = None

    def request(self, port, method, path, form=None, what=None):
        data = urllib.parse.urlencode({**form, "csrf_token": self.csrf}).encode() if form is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
        try:
            with self.opener.open(req, timeout=120) as r:
                status, headers, body = r.status, r.headers, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            status, headers, body = err.code, err.headers, err.read().decode("utf-8", "replace")
        if what:
            self.record(what, port, status, body)
        return status, headers, body

    def follow(self, port, headers):
        """A browser follows a redirect: that shows (and so consumes) the flashed message."""
        target = urllib.parse.urlsplit(headers["Location"])
        status, _, body = self.request(port, "GET", target.path + (f"?{target.query}" if target.query else ""),
                                       what="follow")
        return body

    def sign_in(self, port):
        _, _, page = self.request(port, "GET", "/login")
        self.csrf = _csrf(page)
        status, headers, body = self.request(port, "POST", "/login", {"login": self.login, "password": "demo"},
                                             what="sign_in")
        assert status in (302, 303), (status, body[:500])
        _, _, page = self.request(self.ports[(self.ports.index(port) + 1) % len(self.ports)], "GET", "/")
        self.csrf = _csrf(page)             # a new session has a new token; any server's page gives it
        return self

    def tasks(self, port, task=None):
        status, _, body = self.request(port, "GET", "/api/tasks?limit=200")
        assert status == 200, (status, body[:300])
        rows = json.loads(body)
        return [r for r in rows if task is None or r["task"] == task]


def _csrf(page: str) -> str:
    return html.unescape(re.search(r'name="csrf_token" value="([^"]+)"', page).group(1))


def _flash(page: str) -> str:
    found = re.findall(r'<p class="flash flash-(\w+)"[^>]*>(.*?)</p>', page, re.S)
    return " ".join(f"{kind}: {html.unescape(text)}" for kind, text in found)


class Run:
    """What the servers answered, and what they acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers = []                   # (what, port, status, body)
        self.registered = set()             # instance ids, from the 303 to the case page
        self.completed = {}                 # task id -> (login, port)
        self.collisions = []                # (task id, [status, status])
        self.claims = Counter()

    def record(self, what, port, status, body):
        with self.lock:
            self.answers.append((what, port, status, body if status >= 500 else body[:200]))


INTAKE = {"channel": "hotline", "complainant": "王女士", "category": "product_quality", "content": "新买的电水壶漏水"}
CHECKS = [{"outcome": "accepted", "severity": "general", "department": "品质部"}] * 6 + [
    {"outcome": "accepted", "severity": "major", "department": "售后部"},
    {"outcome": "settled", "severity": "general", "on_spot_resolution": "当场更换"},
    {"outcome": "refused", "severity": "general", "refusal_reason": "重复恶意投诉"}]
LATER = {"major_instruction": {"instruction": "今天内联系客户"},
         "investigate": {"findings": "密封圈缺陷", "responsible_party": "company"}}
SUPERVISE = {"mini": {"note": "请今天处理"}, "enterprise_customer": {"supervision_note": "今天必须答复"}}


def register(run: Run, browser: Browser, rng: random.Random, n: int) -> None:
    for i in range(n):
        port = rng.choice(browser.ports)
        form = dict(INTAKE, contact=f"138{rng.randrange(10 ** 8):08d}", promised_resolution_at=PROMISE)
        status, headers, body = browser.request(port, "POST", "/new/enterprise_customer", form, what="register")
        if status == 303:
            where = urllib.parse.urlsplit(headers["Location"])
            m = re.fullmatch(r"/cases/([0-9a-f-]{36})", where.path)
            assert m and where.query == "registered=1", headers["Location"]
            with run.lock:
                run.registered.add(m.group(1))


def complete(run: Run, browser: Browser, port: int, task_id: str, form: dict) -> int:
    status, headers, _ = browser.request(port, "POST", f"/tasks/{task_id}", form, what="complete")
    if status == 303:
        message = _flash(browser.follow(port, headers))     # the inbox says 已完成 (or why not)
        with run.lock:
            if not message.startswith("ok:"):
                run.answers.append(("complete redirected without success", port, status, message))
                return 0
            assert task_id not in run.completed, f"task {task_id} acknowledged twice"
            run.completed[task_id] = (browser.login, port)
    return status


def collide(run: Run, browsers: list[Browser], rng: random.Random, task_id: str, form: dict) -> None:
    """Two browsers of the same role submit one task through two different servers at once."""
    ports = rng.sample(browsers[0].ports, 2)
    barrier = threading.Barrier(2)
    statuses = [None, None]

    def one(i):
        barrier.wait(timeout=60)
        statuses[i] = complete(run, browsers[i], ports[i], task_id, form)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    with run.lock:
        run.collisions.append((task_id, sorted(statuses)))


def claim(run: Run, browser: Browser, port: int, task_id: str) -> None:
    status, headers, _ = browser.request(port, "POST", f"/tasks/{task_id}/claim", {"back": "/"}, what="claim")
    if status == 303:
        message = _flash(browser.follow(port, headers))
        with run.lock:
            run.claims["ok" if message.startswith("ok:") else f"refused: {message}"] += 1


def work_through(run: Run, pair: list[Browser], rng: random.Random, task: str, data_for, *, until,
                 limit: float = 240.0) -> None:
    """Complete the open `task` tasks seen by `pair` until `until()` is true and none is left:
    a third of them collide through two servers, some are claimed first."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        finished = until()
        rows = pair[0].tasks(rng.choice(pair[0].ports), task)
        rows = [r for r in rows if r["task_id"] not in run.completed]
        if not rows:
            if finished:
                return
            time.sleep(0.3)
            continue
        for row in rows[:10]:
            form = data_for(row)
            r = rng.random()
            if r < 0.33:
                collide(run, pair, rng, row["task_id"], form)
            else:
                port = rng.choice(pair[0].ports)
                if r < 0.55:
                    claim(run, pair[0], port, row["task_id"])
                    claim(run, pair[1], rng.choice(pair[0].ports), row["task_id"])   # the same user: holds
                complete(run, pair[0], rng.choice(pair[0].ports), row["task_id"], form)
    raise AssertionError(f"'{task}' tasks still open after {limit:g} s")


def _service(db_url, at=NOW):
    from complaintflow.engine.clock import FixedClock
    from complaintflow.engine.service import ComplaintService
    from complaintflow.handlers import default_registry
    return ComplaintService(db_url, clock=FixedClock(parse_instant(at)), chain_key=TEST_KEY,
                            handlers=default_registry("support_handlers"))


class Seeder:
    """The test's own hand on the database, at 09:00: `mini` cases for the servers' ticks."""

    def __init__(self, db_url):
        self.svc = _service(db_url, SEEDED_AT)
        self.svc.deploy([MINI])
        self.due, self.not_due = set(), set()

    def seed(self, n, pause=0.0):
        for i in range(n):
            due = i % 4 != 3
            case = self.svc.start("mini", {"subject": "发票开错", "due_at": DUE if due else NOT_DUE}, "seeder")
            (self.due if due else self.not_due).add(case.instance_id)
            time.sleep(pause)


@pytest.fixture
def servers(tmp_path, pg_server):
    db_url = pg_server.new_database()
    seeder = Seeder(db_url)          # the schema first: three first starts at once race in Alembic (below)
    seeder.seed(SEEDS_BEFORE)
    started = Servers(tmp_path, db_url)
    started.db_url, started.seeder = db_url, seeder
    yield started
    started.stop()


def test_three_servers_on_one_database_lose_and_double_nothing(servers):
    began = time.monotonic()
    servers.wait_healthy()
    startup = time.monotonic() - began
    rng = random.Random(int(os.environ.get("CF_MULTI_SERVE_SEED") or random.randrange(2 ** 32)))
    run = Run()
    ports = servers.ports
    reception = [Browser("reception", ports, run.record).sign_in(p) for p in ports[:2]]
    managers = [Browser("manager", ports, run.record).sign_in(p) for p in ports[1:]]
    supervisors = [Browser("manager", ports, run.record).sign_in(p) for p in (ports[0], ports[2])]
    department = [Browser("department", ports, run.record).sign_in(p) for p in (ports[2], ports[0])]
    registrars = [Browser("reception", ports, run.record).sign_in(p) for p in ports[:2]]

    checks = {}

    def check_data(row):
        return dict(checks.setdefault(row["instance_id"], rng.choice(CHECKS)))
    done_registering = threading.Event()

    def registered(futures):
        try:
            for f in futures:
                f.result()
        finally:
            done_registering.set()
    with ThreadPoolExecutor(max_workers=8) as pool:
        regs = [pool.submit(register, run, b, random.Random(rng.random()), REGISTRATIONS // 2) for b in registrars]
        regs.append(pool.submit(servers.seeder.seed, SEEDS_DURING, 0.3))
        regs_done = pool.submit(registered, regs)
        jobs = [pool.submit(work_through, run, reception, random.Random(rng.random()), "preliminary_check",
                            check_data, until=done_registering.is_set)]
        jobs.append(pool.submit(work_through, run, department, random.Random(rng.random()), "investigate",
                                lambda row: LATER["investigate"], until=done_registering.is_set))
        jobs.append(pool.submit(work_through, run, managers, random.Random(rng.random()), "major_instruction",
                                lambda row: LATER["major_instruction"], until=done_registering.is_set))
        jobs.append(pool.submit(work_through, run, supervisors, random.Random(rng.random()), "supervise",
                                lambda row: SUPERVISE[row["process_id"]], until=done_registering.is_set))
        for f in [regs_done, *jobs]:
            f.result()
    svc = _service(servers.db_url)
    due = _wait_timers_fired(svc)          # the last seeds' timers, fired by the ticks
    work_through(run, supervisors, rng, "supervise", lambda row: SUPERVISE[row["process_id"]], until=lambda: True)
    drive_seconds = time.monotonic() - began - startup
    servers.stop()

    figures = check(svc, servers, run)
    figures.update(startup_seconds=round(startup, 1), drive_seconds=round(drive_seconds, 1), due_timers=due)
    print(f"\nmulti-serve run: {json.dumps(figures)}")


def _wait_timers_fired(svc, limit: float = 60.0) -> int:
    """Wait (bounded) until no case is due any more: the servers' ticks fired every due timer."""
    now = parse_instant(NOW)
    end = time.monotonic() + limit
    while True:
        with svc.sessions() as s:
            due = s.execute(select(Instance.id).where(Instance.next_due_at <= now,
                                                      Instance.status != "completed")).scalars().all()
        if not due:
            break
        assert time.monotonic() < end, f"{len(due)} case(s) still due after {limit:g} s of ticks"
        time.sleep(0.5)
    with svc.sessions() as s:
        return len(s.execute(select(Event.id).where(Event.kind == "timer_fired")).scalars().all())


def check(svc, servers: Servers, run: Run) -> dict:
    statuses = Counter((what, status) for what, _, status, _ in run.answers)
    errors = [(what, port, status, body) for what, port, status, body in run.answers if status >= 500]
    assert not errors, f"server errors: {errors[:2]}"
    unexpected = {k: v for k, v in statuses.items()
                  if k not in {("register", 303), ("complete", 303), ("complete", 409), ("claim", 303),
                               ("follow", 200), ("sign_in", 302), ("sign_in", 303)}}
    assert not unexpected, f"unexpected answers: {unexpected}; e.g. {[a for a in run.answers if (a[0], a[2]) in unexpected][:2]}"
    for i in range(len(servers.procs)):
        out = servers.output(i)
        assert "Traceback" not in out, f"serve {i}:\n{out[-5000:]}"

    with svc.sessions() as s:
        cases = {i.id: i for i in s.execute(select(Instance)).scalars()}
        tasks = {t.id: t for t in s.execute(select(HumanTask)).scalars()}
        events = defaultdict(list)
        for e in s.execute(select(Event).order_by(Event.instance_id, Event.seq)).scalars():
            events[e.instance_id].append(e)
        versions = Counter(s.execute(select(ProcessVersion.process_id)).scalars())

    # all three deployed processes/ at start: one version of each, every server says so
    assert versions and set(versions.values()) == {1}, versions
    shipped = set(versions) - {"mini"}
    for i in range(len(servers.procs)):
        assert all(f"{pid}: version 1" in servers.output(i) for pid in shipped), servers.output(i)[:2000]

    # nothing lost
    seeded = servers.seeder.due | servers.seeder.not_due
    assert run.registered == set(cases) - seeded and len(run.registered) == REGISTRATIONS, \
        (len(run.registered), len(cases))
    for task_id, (login, _) in run.completed.items():
        evs = [e for e in events[tasks[task_id].instance_id] if e.kind == "task_completed" and e.task_id == task_id]
        assert [e.actor for e in evs] == [login], (task_id, evs)
    # nothing doubled
    completions = Counter(e.task_id for evs in events.values() for e in evs if e.kind == "task_completed")
    assert max(completions.values()) == 1, [t for t, c in completions.items() if c > 1]
    assert set(completions) == set(run.completed)
    assert all(sorted(pair) == [303, 409] for _, pair in run.collisions), run.collisions
    numbers = Counter(i.case_number for i in cases.values())
    assert all(n and re.fullmatch(r"(KH|MINI)-2026-\d{6}", n) for n in numbers) and max(numbers.values()) == 1, numbers
    # every due timer fired once, by a tick; no other
    for inst in cases.values():
        fired = [e for e in events[inst.id] if e.kind == "timer_fired"]
        expect = 1 if inst.id in servers.seeder.due else 0
        assert len(fired) == expect and all(e.actor == "system" for e in fired), (inst.case_number, fired)
        assert [e.seq for e in events[inst.id]] == list(range(1, len(events[inst.id]) + 1))
    # every case replays consistent; the CLI agrees on one of them, with the shared key file
    for inst in cases.values():
        report = svc.replay(inst.id)
        assert report.consistent is True, (inst.case_number, report.as_dict()["first_difference"])
    some = sorted(cases.values(), key=lambda i: i.case_number)[0]
    proc = subprocess.run([CLI, "replay", some.case_number, "--verify"], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, COMPLAINTFLOW_DATABASE_URL=servers.db_url,
                                   COMPLAINTFLOW_CHAIN_KEY_FILE=str(servers.logs[0].parent / "chain_key")))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    by_port = Counter(port for what, port, _, _ in run.answers if what in ("register", "complete", "claim"))
    return {"servers": len(servers.procs), "cases": len(cases),
            "actions": sum(1 for a in run.answers if a[0] in ("register", "complete", "claim")),
            "requests": len(run.answers), "answers": {f"{w} {s}": c for (w, s), c in sorted(statuses.items())},
            "collisions": len(run.collisions), "completions": len(run.completed), "claims": dict(run.claims),
            "timers_fired": sum(1 for evs in events.values() for e in evs if e.kind == "timer_fired"),
            "actions_per_server": dict(by_port)}


def test_three_servers_started_at_once_on_a_new_database_all_come_up(tmp_path, pg_server):
    db_url = pg_server.new_database()
    servers = Servers(tmp_path, db_url)
    try:
        servers.wait_healthy()
    finally:
        servers.stop()
    with _service(db_url).sessions() as s:
        versions = Counter(s.execute(select(ProcessVersion.process_id)).scalars())
    shipped = {p.stem for p in (Path(__file__).resolve().parents[1] / "processes").glob("*.bpmn")}
    assert set(versions) == shipped and set(versions.values()) == {1}, versions
