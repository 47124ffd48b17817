"""`complaintflow sms check|list|deliver|resend`: the SMS notice channel (docs/notices.md)."""

from __future__ import annotations

import click

from ..engine import outbox, sms
from ..engine.errors import InvalidInput
from .cli_common import _t, echo_delivered, echo_outbox_rows, emit, outbox_options


@click.group("sms")
def sms_cmd():
    """SMS notices: the gateway in use, undelivered SMS, deliver now, resend."""


@sms_cmd.command("check")
@click.pass_obj
def check_cmd(obj):
    """Say where notices to mobile numbers go (COMPLAINTFLOW_SMS_URL, _TOKEN, _TIMEOUT)."""
    gateway = sms.gateway_of(obj.service)
    if gateway is None:
        click.echo(f"{sms.URL_SETTING} is not set: every notice goes to the log")
    else:
        click.echo(f"notices to mobile numbers are sent by SMS through {gateway.url} "
                   f"({'with' if gateway.token else 'without'} a bearer token, timeout {gateway.timeout:g} s); "
                   "other notices go to the log")


@sms_cmd.command("list")
@click.option("--undelivered", is_flag=True, help="Only SMS not sent: queued, waiting for a retry or given up.")
@outbox_options()
@click.pass_obj
def list_cmd(obj, undelivered, limit, as_json):
    """The newest SMS: id, status, attempts, case, number, notice, next attempt, last error."""
    emit(outbox.list_rows(obj.service, undelivered=undelivered, limit=limit, channel=sms.KIND), as_json,
         lambda rows: echo_outbox_rows(rows, lambda r: f"{r['case_number'] or r['instance_id']}  {r['to']}  {r['notice']}",
                                       "every SMS was delivered" if undelivered else "no SMS"))


@sms_cmd.command("deliver")
@outbox_options("Send at most this many SMS.")
@click.pass_obj
def deliver_cmd(obj, limit, as_json):
    """Send the SMS due now through the gateway (what the scheduler of `serve` does each tick)."""
    if sms.gateway_of(obj.service) is None:
        raise InvalidInput(f"{sms.URL_SETTING} is not set, so there is no gateway to send SMS through; "
                           "queued SMS stay queued (see `complaintflow sms list --undelivered`)")
    emit(outbox.deliver(obj.service, limit=limit, channel=sms.KIND), as_json, echo_delivered)


@sms_cmd.command("resend")
@click.argument("row_id", metavar="ID", type=int)
@click.pass_obj
def resend_cmd(obj, row_id):
    """Queue SMS ID to be sent again (same text and message id) at the next delivery."""
    row = outbox.resend(obj.service, row_id, channel=sms.KIND)
    click.echo(f"SMS {row['id']} ({row['notice']} to {row['to']}) queued for {_t(row['next_attempt'])}")
