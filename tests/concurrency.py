"""Real concurrent processes for the contention tests.

`Workers(n, url, gate)` starts n worker processes (spawned, each with its own service,
connection pool and, for web actions, its own Flask app on the same database) that run the
actions a test sends them. `Gate` holds chosen cases inside the `test.flaky` handler
(support_handlers.py) until every worker has arrived there, so that their writes collide
every time instead of by luck of timing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import time
import traceback
from pathlib import Path

from support_handlers import wait_for

MINI = Path(__file__).resolve().parent / "fixtures" / "mini"
INTAKE = {"subject": "发票开错", "due_at": "2026-05-07T12:00:00+08:00"}
TEST_KEY = bytes.fromhex("c0" * 32)      # the event log chain key of these tests


class Gate:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def block(self, instance_id: str) -> None:
        (self.dir / f"block-{instance_id}").touch()

    def wait_arrivals(self, instance_id: str, count: int, limit: float = 60.0, workers=None) -> None:
        """Wait until `count` processes are held at the gate of `instance_id` (or, with
        `workers`, fail at once with their answers if one of them finished instead)."""
        end = time.monotonic() + limit
        while len(list(self.dir.glob(f"arrived-{instance_id}-*"))) < count:
            if workers is not None and not workers.outbox.empty():
                raise AssertionError(f"a worker answered before reaching the gate: {workers.outbox.get()}")
            if time.monotonic() > end:
                raise TimeoutError(f"only {len(list(self.dir.glob(f'arrived-{instance_id}-*')))} of {count} "
                                   f"processes reached the gate of {instance_id}")
            time.sleep(0.01)

    def open(self, instance_id: str) -> None:
        (self.dir / f"open-{instance_id}").touch()


# --- inside a worker process ------------------------------------------------------------

def _service(url: str, handler_timeout=None):
    from complaintflow.engine.clock import FixedClock, parse_instant
    from complaintflow.engine.service import ComplaintService
    from complaintflow.handlers import default_registry
    from support_handlers import GateNotifier
    clock = FixedClock(parse_instant("2026-05-06T10:00:00+08:00"))
    return ComplaintService(url, clock=clock, handlers=default_registry("support_handlers"),
                            notifier=GateNotifier(), handler_timeout=handler_timeout, chain_key=TEST_KEY)


def _outcome(fn):
    from complaintflow.engine.errors import ComplaintflowError, Conflict
    try:
        return {"outcome": "ok", "value": fn()}
    except Conflict as err:
        return {"outcome": "conflict", "message": str(err), "by": err.by}
    except ComplaintflowError as err:
        return {"outcome": type(err).__name__, "message": str(err)}
    except Exception as err:
        return {"outcome": "crash", "message": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()}


class _Web:
    """A signed-in user's browser, as Flask's test client on this worker's own app."""

    def __init__(self, service):
        from complaintflow.web.app import create_app, load_roles
        from complaintflow.web.users import DEMO_USERS, load_users
        processes = MINI.parent.parent.parent / "processes"
        roles = load_roles(processes)
        roles.setdefault("reception", {"zh": "接待", "en": "Reception"})
        self.app = create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="test",
                              testing=True)
        self.clients = {}

    def client(self, login):
        if login not in self.clients:
            c = self.app.test_client()
            page = c.get("/login").get_data(as_text=True)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            r = c.post("/login", data={"login": login, "password": "demo", "csrf_token": csrf})
            assert r.status_code == 302, r.get_data(as_text=True)[:500]
            self.clients[login] = c
        return self.clients[login]

    def complete(self, task_id, login, data):
        c = self.client(login)
        page = c.get(f"/tasks/{task_id}").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = c.post(f"/tasks/{task_id}", data={**data, "csrf_token": csrf})
        return {"status": r.status_code, "body": r.get_data(as_text=True)}

    def message(self, ref, name, login, data):
        """Record a message from outside on the case page (pages.message_page)."""
        c = self.client(login)
        path = f"/cases/{ref}/messages/{name}"
        page = c.get(path).get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = c.post(path, data={**data, "csrf_token": csrf})
        return {"status": r.status_code, "body": r.get_data(as_text=True)}

    def claim(self, task_id, login):
        c = self.client(login)
        page = c.get(f"/tasks/{task_id}").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = c.post(f"/tasks/{task_id}/claim", data={"csrf_token": csrf}, follow_redirects=True)
        return {"status": r.status_code, "body": r.get_data(as_text=True)}


def _hold_after_first_read(service, gate_dir, instance_id, table) -> None:
    """Hold this process at the gate of `instance_id` once, right after its next statement
    that reads `table` (a SQLAlchemy event on its own engine), until the test opens it."""
    from sqlalchemy import event

    held = []

    def after(conn, cursor, statement, parameters, context, executemany):
        if not held and statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
            held.append(statement)
            Path(gate_dir, f"arrived-{instance_id}-{os.getpid()}").touch()
            wait_for(Path(gate_dir) / f"open-{instance_id}")
    event.listen(service.engine, "after_cursor_execute", after)


def _worker(url, gate_dir, handler_timeout, inbox, outbox):
    if gate_dir:
        os.environ["CF_TEST_GATE"] = str(gate_dir)
    service = _service(url, handler_timeout)
    web = None
    while True:
        job = inbox.get()
        if job is None:
            return
        action, args = job
        if action == "clock":
            from complaintflow.engine.clock import parse_instant
            service.clock.set(parse_instant(args[0]))
            out = {"outcome": "ok", "value": args[0]}
        elif action == "start":
            out = _outcome(lambda: service.start(*args).case_number)
        elif action == "complete":
            out = _outcome(lambda: service.complete_task(*args).status)
        elif action == "complete_held_after_read":
            # held at the gate right after the completion's first read (the task rows), before
            # it loads the case: the window between an action's reads
            task_id, user, data, instance_id = args
            _hold_after_first_read(service, gate_dir, instance_id, "human_tasks")
            out = _outcome(lambda: service.complete_task(task_id, user, data).status)
        elif action == "claim":
            out = _outcome(lambda: service.claim_task(*args)["claimed_by"])
        elif action == "tick":
            from complaintflow.engine.clock import parse_instant
            service.clock.set(parse_instant(args[0]))
            out = _outcome(lambda: service.tick())
        elif action == "message":
            out = _outcome(lambda: service.send_message(*args[:4], roles=set(args[4])).status)
        elif action in ("web_complete", "web_claim", "web_message"):
            web = web or _Web(service)
            fn = {"web_complete": web.complete, "web_claim": web.claim, "web_message": web.message}[action]
            out = _outcome(lambda: fn(*args))
        else:
            out = {"outcome": "crash", "message": f"unknown action {action}"}
        outbox.put(out)


class Workers:
    def __init__(self, n: int, url: str, gate: Gate | None = None, handler_timeout=None):
        ctx = mp.get_context("spawn")
        self.inboxes = [ctx.Queue() for _ in range(n)]
        self.outbox = ctx.Queue()
        self.procs = [ctx.Process(target=_worker, daemon=True,
                                  args=(url, str(gate.dir) if gate else None, handler_timeout, q, self.outbox))
                      for q in self.inboxes]
        for p in self.procs:
            p.start()

    def send(self, i: int, action: str, *args) -> None:
        self.inboxes[i].put((action, args))

    def results(self, count: int, timeout: float = 120.0) -> list[dict]:
        return [self.outbox.get(timeout=timeout) for _ in range(count)]

    def close(self):
        for q in self.inboxes:
            q.put(None)
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
