"""`complaintflow webhooks check|list|deliver|resend`: the outbound webhooks (docs/api.md, "Webhooks")."""

from __future__ import annotations

import click

from ..engine import outbox
from .cli_common import _t, echo_delivered, echo_outbox_rows, emit, outbox_options


@click.group("webhooks")
def webhooks_cmd():
    """Webhooks to other systems: check the file, list, deliver now, resend."""


@webhooks_cmd.command("check")
def check_cmd():
    """Read the webhooks file (COMPLAINTFLOW_WEBHOOKS_FILE, default var/webhooks.json) and say what it sends."""
    found = outbox.load_config()
    for r in found:
        procs = "every procedure" if r.processes is None else ", ".join(sorted(r.processes))
        click.echo(f"{r.url}: {', '.join(sorted(r.events))} of {procs}")
    if not found:
        click.echo(f"no receivers ({outbox.config_path()} does not exist or is empty)")


@webhooks_cmd.command("list")
@click.option("--failed", is_flag=True, help="Only deliveries given up or waiting for a retry after an error.")
@outbox_options()
@click.pass_obj
def list_cmd(obj, failed, limit, as_json):
    """The newest deliveries: id, status, attempts, kind, case, receiver, next attempt, last error."""
    emit(outbox.list_rows(obj.service, failed=failed, limit=limit), as_json, lambda rows: echo_outbox_rows(
        rows, lambda r: f"{r['kind']:18} {r['instance_id']}  {r['url']}",
        "no failed deliveries" if failed else "no webhook deliveries"))


@webhooks_cmd.command("deliver")
@outbox_options("Send at most this many rows.")
@click.pass_obj
def deliver_cmd(obj, limit, as_json):
    """Send the due deliveries now (what the scheduler of `serve` does each tick)."""
    emit(outbox.deliver(obj.service, limit=limit, channel="webhooks"), as_json, echo_delivered)


@webhooks_cmd.command("resend")
@click.argument("row_id", metavar="ID", type=int)
@click.pass_obj
def resend_cmd(obj, row_id):
    """Queue delivery ID to be sent again (same body and event id) at the next delivery."""
    row = outbox.resend(obj.service, row_id)
    click.echo(f"delivery {row['id']} ({row['kind']} to {row['url']}) queued for {_t(row['next_attempt'])}")
