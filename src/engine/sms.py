"""The SMS notice channel (docs/notices.md): notices to a mainland mobile number go out
through an HTTP SMS gateway; every other notice goes to the log, as before.

A notifier is anything with `send(kind, to, message, case_number=None) -> dict` (the
`Notifier` protocol in handlers/__init__.py). `LogNotifier` (case_services.py) is the default;
`SmsGatewayNotifier` is used when COMPLAINTFLOW_SMS_URL is set (`notifier_from_env`).

Why the notifier does not call the gateway itself: a handler runs inside the case's action,
before its commit. Sending there would tie the action to the gateway (a gateway that hangs
turns the task into an incident after the handler timeout; one that is down loses the
notice), and an action rolled back afterwards (a lost race) would still have sent its SMS.
So `send` only answers with a record whose channel is "sms"; that record is the handler's
output, written in the case's event log. When the action commits, `queue` (called by
`outbox.record`) turns each such record of the action into a row of the outbox, in the same
transaction: committed with the action or not at all. The rows are sent after commit by the
outbox's deliverer (the scheduler of `serve` each tick, `complaintflow sms deliver`), with the
outbox's retries and backoff; an operator lists what is not delivered (`complaintflow sms
list --undelivered`) and sends a row again (`complaintflow sms resend ID`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass

from .case_services import LogNotifier
from .errors import InvalidInput
from .models import Outbox

log = logging.getLogger("complaintflow")

KIND = "sms"                                  # outbox.kind of an SMS row (webhook rows carry event kinds)
URL_SETTING = "COMPLAINTFLOW_SMS_URL"
TOKEN_SETTING = "COMPLAINTFLOW_SMS_TOKEN"
TIMEOUT_SETTING = "COMPLAINTFLOW_SMS_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0

# a mainland mobile number, written with spaces or hyphens and an optional +86 / 0086 / 86 prefix
_MOBILE = re.compile(r"(?:\+86|0086|86)?(1[3-9]\d{9})")


def mobile_number(to) -> str | None:
    """The 11-digit mainland mobile number `to` is (13800000000, +86 138-0000-0000), else None."""
    if not isinstance(to, str):
        return None
    found = _MOBILE.fullmatch(re.sub(r"[\s-]", "", to))
    return found.group(1) if found else None


@dataclass(frozen=True)
class Gateway:
    """Where and how SMS are sent: the gateway's URL, an optional bearer token, the timeout
    of one request in seconds."""

    url: str
    token: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls, env=None) -> "Gateway | None":
        """The gateway the environment names; None when COMPLAINTFLOW_SMS_URL is not set. A
        value that is not understood stops the start with the setting's name."""
        env = os.environ if env is None else env
        url = (env.get(URL_SETTING) or "").strip()
        if not url:
            return None
        if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url):
            raise InvalidInput(f"{URL_SETTING} must be an http:// or https:// address, not '{url}'")
        raw = (env.get(TIMEOUT_SETTING) or "").strip()
        timeout = DEFAULT_TIMEOUT
        if raw:
            try:
                timeout = float(raw)
            except ValueError:
                timeout = -1.0
            if not 1 <= timeout <= MAX_TIMEOUT:
                raise InvalidInput(f"{TIMEOUT_SETTING} must be a number of seconds from 1 to {MAX_TIMEOUT:g}, "
                                   f"not '{raw}'")
        return cls(url, (env.get(TOKEN_SETTING) or "").strip() or None, timeout)

    def headers(self, message_id: str) -> dict:
        out = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "complaintflow-sms",
               "X-Complaintflow-Message-Id": message_id}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out


class SmsGatewayNotifier:
    """Notices to a mobile number become SMS (queued with the action, sent after commit by
    the outbox); any other recipient (a role, a body outside, no contact) goes to `fallback`,
    the log by default."""

    def __init__(self, gateway: Gateway, fallback=None):
        self.gateway = gateway
        self.fallback = fallback or LogNotifier()

    def send(self, kind, to, message, case_number=None):
        if mobile_number(to) is None:
            return self.fallback.send(kind, to, message, case_number)
        log.info("notify %s to %s by SMS (queued): %s", kind, to, message)
        return {"kind": kind, "to": to, "message": message, "case_number": case_number, "channel": KIND}


def notifier_from_env(env=None):
    """The notifier the environment asks for: SMS through the gateway when COMPLAINTFLOW_SMS_URL
    is set, else the log."""
    gateway = Gateway.from_env(env)
    return SmsGatewayNotifier(gateway) if gateway is not None else LogNotifier()


def gateway_of(service) -> Gateway | None:
    """The gateway of the service's notifier; None when it sends no SMS."""
    return getattr(service.notifier, "gateway", None)


def queue(s, inst, effects, now) -> None:
    """Add an outbox row to session `s` for each SMS notice a handler of this action gave
    (its output is a notifier record with channel "sms"): committed with the action or not at all."""
    for effect in effects:
        out = effect.payload.get("outputs") if effect.kind == "handler_called" else None
        phone = mobile_number(out.get("to")) if isinstance(out, dict) and out.get("channel") == KIND else None
        if phone is None:
            continue
        message_id = str(uuid.uuid4())
        body = json.dumps({"id": message_id, "to": phone, "text": str(out.get("message") or ""),
                           "case_number": out.get("case_number"), "kind": out.get("kind")},
                          ensure_ascii=False, separators=(",", ":"))
        s.add(Outbox(event_id=message_id, kind=KIND, instance_id=inst.id, process_id=inst.process_id,
                     url=f"sms:{phone}", body=body, created_at=now, status="pending", attempts=0,
                     next_attempt_at=now))


def row_fields(row) -> dict:
    """What an SMS row says, for listings: the number, the text, the notice kind, the case number."""
    body = json.loads(row.body)
    return {"to": body.get("to"), "text": body.get("text"), "notice": body.get("kind"),
            "case_number": body.get("case_number")}
