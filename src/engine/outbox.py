"""Outbound webhooks: what a case did, told to other systems (docs/api.md, "Webhooks").

An operator lists receivers in a JSON file (COMPLAINTFLOW_WEBHOOKS_FILE, default
var/webhooks.json): per receiver a URL, a secret, the procedures and the event kinds it wants.

Durable: `record` adds one `outbox` row per event and receiver to the action's own session,
so the rows are committed with the action or not at all. Sending happens afterwards
(`deliver`, run by the scheduler each tick and by `complaintflow webhooks deliver`), never
inside an action. A row is taken before it is sent — PostgreSQL locks it for the send
(FOR UPDATE SKIP LOCKED), SQLite writes a lease on it — so two deliverers never send one row
at the same time. A failed send is retried with exponential backoff until MAX_ATTEMPTS;
delivery is at least once, and every body carries an event id for deduplication. Each
request is signed: HMAC-SHA256 of the raw body with the receiver's secret.

The same rows carry SMS notices (engine/sms.py, docs/notices.md): `kind` "sms", `url`
"sms:<number>", the gateway's JSON request as body. They are queued by `record` too, sent by
the same `deliver` to the gateway of the service's notifier (a deliverer without one leaves
them queued), and given up at once on a 4xx answer other than 408 and 429, which says the
request itself is wrong (a number the gateway refuses, a bad token).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import or_, select, update

from . import sms
from .clock import iso
from .errors import InvalidInput, NotFound
from .models import Outbox

log = logging.getLogger("complaintflow.webhooks")

FILE_SETTING = "COMPLAINTFLOW_WEBHOOKS_FILE"
DEFAULT_FILE = "var/webhooks.json"
KINDS = ("case_started", "task_created", "deadline_breached", "case_closed")
SEND_TIMEOUT = 10.0                 # seconds per request: a slow receiver never holds up the run long
MAX_ATTEMPTS = 12                   # then the row is `failed` (listed by `webhooks list --failed`)
FIRST_RETRY = timedelta(minutes=1)  # doubled after each failed attempt ...
LONGEST_RETRY = timedelta(hours=6)  # ... up to this
LEASE = timedelta(seconds=4 * SEND_TIMEOUT)    # SQLite: a dead deliverer's row is free again after this


class WebhookConfigError(InvalidInput):
    """The webhooks file is wrong: the message names the file and the entry."""


@dataclass(frozen=True)
class Receiver:
    url: str
    secret: bytes
    processes: frozenset | None          # None: every procedure
    events: frozenset

    def wants(self, process_id: str, kind: str) -> bool:
        return kind in self.events and (self.processes is None or process_id in self.processes)


# --- the configuration ---------------------------------------------------------------------

def config_path() -> Path:
    return Path(os.environ.get(FILE_SETTING) or DEFAULT_FILE)


def load_config(path: Path | None = None) -> list[Receiver]:
    """The receivers in the webhooks file (none if there is no file), or WebhookConfigError."""
    path = Path(path) if path is not None else config_path()
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise WebhookConfigError(f"the webhooks file {path} cannot be read as JSON: {err}") from None
    if not isinstance(entries, list):
        raise WebhookConfigError(f"the webhooks file {path} must hold a JSON list of receivers, "
                                 'each {"url", "secret" or "secret_file", "processes", "events"}')
    receivers, seen = [], set()
    for n, entry in enumerate(entries, start=1):
        receiver = _receiver(path, n, entry)
        if receiver.url in seen:
            raise WebhookConfigError(f"{path}, entry {n}: the url {receiver.url} is listed twice; "
                                     "list it once with all the procedures and events it wants")
        seen.add(receiver.url)
        receivers.append(receiver)
    return receivers


def _receiver(path: Path, n: int, entry) -> Receiver:
    where = f"{path}, entry {n}"
    if not isinstance(entry, dict):
        raise WebhookConfigError(f"{where}: must be an object with url, secret (or secret_file), processes, events")
    unknown = sorted(set(entry) - {"url", "secret", "secret_file", "processes", "events"})
    if unknown:
        raise WebhookConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    url = entry.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise WebhookConfigError(f"{where}: url must be an http:// or https:// address, not {url!r}")
    where = f"{where} ({url})"
    if ("secret" in entry) == ("secret_file" in entry):
        raise WebhookConfigError(f"{where}: give exactly one of secret and secret_file")
    if "secret_file" in entry:
        secret_path = path.parent / str(entry["secret_file"])
        try:
            secret = secret_path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise WebhookConfigError(f"{where}: the secret_file {secret_path} cannot be read: {err}") from None
    else:
        secret = entry["secret"]
    if not isinstance(secret, str) or len(secret) < 16:
        raise WebhookConfigError(f"{where}: the secret must be a string of at least 16 characters")
    processes = entry.get("processes")
    if processes != "*" and not (isinstance(processes, list) and processes
                                 and all(isinstance(p, str) and p for p in processes)):
        raise WebhookConfigError(f'{where}: processes must be "*" or a non-empty list of procedure ids')
    events = entry.get("events")
    if not (isinstance(events, list) and events and all(isinstance(e, str) for e in events)):
        raise WebhookConfigError(f"{where}: events must be a non-empty list of {', '.join(KINDS)}")
    wrong = sorted(set(events) - set(KINDS))
    if wrong:
        raise WebhookConfigError(f"{where}: unknown event kind(s) {', '.join(wrong)}; known: {', '.join(KINDS)}")
    return Receiver(url, secret.encode("utf-8"), None if processes == "*" else frozenset(processes),
                    frozenset(events))


_cache: dict[Path, tuple[float, list[Receiver]]] = {}


def receivers() -> list[Receiver]:
    """The current receivers, read again when the file changes. An action never fails on the
    webhooks file: a file broken while the service runs is logged and its last good content
    kept (a start refuses a broken file: `load_config`)."""
    path = config_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return []
    cached = _cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        found = load_config(path)
    except WebhookConfigError as err:
        log.error("%s; keeping the receivers read before", err)
        return cached[1] if cached else []
    _cache[path] = (mtime, found)
    return found


# --- written with an action ----------------------------------------------------------------

def record(s, inst, kind: str, payload, effects, now: datetime, new_tasks=()) -> None:
    """Add the outbox rows for what this action did to case `inst` to its session `s` (called
    once, at the end of `ComplaintService._finish`): committed with the action or not at all.
    `new_tasks` are the task rows this action made for the case (`_sync_tasks`). The action's
    SMS notices are queued here as well (sms.queue)."""
    sms.queue(s, inst, effects, now)
    wanted = receivers()
    if not wanted:
        return
    events = []
    if kind == "started":
        events.append(("case_started", {}))
    for row in sorted(new_tasks, key=lambda r: (r.created_at, r.task_spec)):
        events.append(("task_created", {"task": {"task_id": row.id, "task": row.task_spec, "name": row.name,
                                                 "role": row.role, "due": iso(row.due_at)}}))
    fired = ([payload] if kind == "timer_fired" else []) + [e.payload for e in effects if e.kind == "timer_fired"]
    for timer in fired:
        name = timer.get("deadline")
        if name and not name.endswith(".remind"):       # a reminder is not a breach (service._breach)
            events.append(("deadline_breached", {"deadline": {"name": name, "due": timer.get("due")}}))
    if inst.status == "completed":
        events.append(("case_closed", {}))
    for event_kind, extra in events:
        targets = [r for r in wanted if r.wants(inst.process_id, event_kind)]
        if not targets:
            continue
        event_id = str(uuid.uuid4())
        body = json.dumps({"event_id": event_id, "kind": event_kind, "occurred_at": iso(now),
                           "case": {"instance_id": inst.id, "case_number": inst.case_number,
                                    "process_id": inst.process_id, "status": inst.status}, **extra},
                          ensure_ascii=False, separators=(",", ":"))
        for r in targets:
            s.add(Outbox(event_id=event_id, kind=event_kind, instance_id=inst.id, process_id=inst.process_id,
                         url=r.url, body=body, created_at=now, status="pending", attempts=0,
                         next_attempt_at=now))


# --- sent after commit ---------------------------------------------------------------------

def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def deliver(service, *, limit: int | None = None, channel: str | None = None) -> dict:
    """Send every due outbox row (at most `limit`), one transaction each; a row another
    deliverer holds is left to it. `channel` "webhooks" or "sms" sends only those (None: both;
    SMS only when the service's notifier has a gateway). Returns counts of sent, retrying and
    failed rows."""
    out = {"sent": 0, "retrying": 0, "failed": 0}
    by_url = {r.url: r for r in receivers()} if channel != sms.KIND else {}
    gateway = sms.gateway_of(service)
    which = _channel(channel) + ([] if gateway is not None else [Outbox.kind != sms.KIND])
    lease = LEASE if gateway is None else max(LEASE, timedelta(seconds=4 * gateway.timeout))
    tried: set[int] = set()
    while limit is None or len(tried) < limit:
        with service.sessions() as s:
            row = _take(service, s, tried, which, lease)
            if row is None:
                break
            tried.add(row.id)
            if row.kind == sms.KIND:
                error, final = _send_sms(gateway, row)
            else:
                receiver = by_url.get(row.url)
                error, final = ((f"{row.url} is no longer in the webhooks file", True) if receiver is None
                                else (_send(receiver, row), False))
            now = service.clock.now()
            row.attempts += 1
            row.lease_owner, row.lease_until = None, None
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", now, None
            else:
                row.last_error = error[:1000]
                if final or row.attempts >= MAX_ATTEMPTS:
                    row.status = "failed"
                else:
                    row.next_attempt_at = now + min(FIRST_RETRY * 2 ** (row.attempts - 1), LONGEST_RETRY)
                log.warning("%s %s to %s failed (attempt %d): %s", "SMS" if row.kind == sms.KIND else "webhook",
                            row.event_id, row.url, row.attempts, error)
            out["sent" if error is None else "failed" if row.status == "failed" else "retrying"] += 1
            s.commit()
    return out


def _channel(channel: str | None) -> list:
    """The condition on outbox rows of one channel ("webhooks", "sms"; None: every row)."""
    if channel is None:
        return []
    if channel not in ("webhooks", sms.KIND):
        raise ValueError(f"unknown outbox channel {channel!r}")
    return [Outbox.kind == sms.KIND if channel == sms.KIND else Outbox.kind != sms.KIND]


def _take(service, s, tried, which=(), lease=LEASE):
    """The next due row (of those matching `which`), held by this deliverer until its
    transaction ends (PostgreSQL) or under a lease (SQLite, which has no row locks); None
    when no row is free."""
    now = service.clock.now()
    due = [Outbox.status == "pending", Outbox.next_attempt_at <= now, *which]
    if tried:
        due.append(Outbox.id.not_in(tried))
    if service.engine.dialect.name == "postgresql":
        return s.execute(select(Outbox).where(*due).order_by(Outbox.id).limit(1)
                         .with_for_update(skip_locked=True)).scalar_one_or_none()
    wall = datetime.now(timezone.utc)       # leases run on real time, never on --now (system_work.py)
    free = or_(Outbox.lease_until.is_(None), Outbox.lease_until < wall)
    for row_id in s.execute(select(Outbox.id).where(*due, free).order_by(Outbox.id).limit(20)).scalars().all():
        got = s.execute(update(Outbox).where(Outbox.id == row_id, *due, free)
                        .values(lease_owner=service.worker_id, lease_until=wall + lease))
        s.commit()
        if got.rowcount == 1:
            return s.get(Outbox, row_id)
    return None


def _send(receiver: Receiver, row) -> str | None:
    """POST the row's body, signed; None when the receiver answered 2xx, else what went wrong."""
    body = row.body.encode("utf-8")
    error, _status = _post(row.url, body, SEND_TIMEOUT, {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "complaintflow-webhooks",
        "X-Complaintflow-Event": row.kind,
        "X-Complaintflow-Event-Id": row.event_id,
        "X-Complaintflow-Timestamp": iso(datetime.now(timezone.utc)),
        "X-Complaintflow-Signature": sign(receiver.secret, body)})
    return error


def _send_sms(gateway: "sms.Gateway", row) -> tuple[str | None, bool]:
    """POST an SMS row's body to the gateway: (None, False) when it answered 2xx, else what
    went wrong and whether that is final (a 4xx other than 408 and 429: retrying the same
    request cannot help)."""
    error, status = _post(gateway.url, row.body.encode("utf-8"), gateway.timeout, gateway.headers(row.event_id))
    return error, status is not None and 400 <= status < 500 and status not in (408, 429)


def _post(url: str, body: bytes, timeout: float, headers: dict) -> tuple[str | None, int | None]:
    """POST `body` to `url`: (None, status) on a 2xx answer, else (what went wrong, the HTTP
    status or None when there was no answer). The error holds the start of the answer's body:
    the receiver's own reason."""
    import urllib.error
    import urllib.request            # here: an action (which imports this module) never sends
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read(1 << 16)
            return None, answer.status
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}: {err.read(300).decode('utf-8', 'replace')}", err.code
    except (urllib.error.URLError, OSError, ValueError) as err:
        return f"{type(err).__name__}: {getattr(err, 'reason', err)}", None


# --- seen and sent again by the operator ---------------------------------------------------

def list_rows(service, *, failed: bool = False, undelivered: bool = False, limit: int = 100,
              channel: str = "webhooks") -> list[dict]:
    """The newest outbox rows of `channel` ("webhooks" or "sms"); with `failed`, only those
    given up or waiting for a retry after an error; with `undelivered`, every row not sent."""
    q = select(Outbox).where(*_channel(channel)).order_by(Outbox.id.desc()).limit(limit)
    if failed:
        q = q.where(Outbox.status != "sent", Outbox.last_error.is_not(None))
    if undelivered:
        q = q.where(Outbox.status != "sent")
    with service.sessions() as s:
        return [_row_dict(r) for r in s.execute(q).scalars()]


def resend(service, row_id: int, channel: str = "webhooks") -> dict:
    """Queue row `row_id` of `channel` to be sent again at the next delivery (the same body and
    event id, so a receiver that has it can tell), with a fresh count of attempts."""
    with service.sessions() as s:
        row = s.get(Outbox, row_id)
        if row is None or (row.kind == sms.KIND) != (channel == sms.KIND):
            raise NotFound(f"no SMS {row_id} (see `complaintflow sms list`)" if channel == sms.KIND
                           else f"no webhook delivery {row_id} (see `complaintflow webhooks list`)")
        row.status, row.attempts, row.next_attempt_at = "pending", 0, service.clock.now()
        row.lease_owner, row.lease_until = None, None
        s.commit()
        return _row_dict(row)


def _row_dict(r) -> dict:
    return {"id": r.id, "event_id": r.event_id, "kind": r.kind, "instance_id": r.instance_id,
            "process_id": r.process_id, "url": r.url, "status": r.status, "attempts": r.attempts,
            "created": iso(r.created_at), "next_attempt": iso(r.next_attempt_at) if r.status == "pending" else None,
            "sent": iso(r.sent_at), "last_error": r.last_error, **(sms.row_fields(r) if r.kind == sms.KIND else {})}
