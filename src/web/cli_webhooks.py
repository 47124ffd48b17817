"""`complaintflow webhooks check|list|deliver|resend`: the outbound webhooks (docs/api.md, "Webhooks")."""

from __future__ import annotations

import click

from ..engine import outbox
from .cli_common import _t, emit


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
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(obj, failed, limit, as_json):
    """The newest deliveries: id, status, attempts, kind, case, receiver, next attempt, last error."""
    def text(rows):
        for r in rows:
            when = f"next {_t(r['next_attempt'])}" if r["status"] == "pending" else f"sent {_t(r['sent'])}" \
                if r["status"] == "sent" else "given up"
            click.echo(f"{r['id']:>6} {r['status']:8} {r['attempts']:>2}x {r['kind']:18} {r['instance_id']}  "
                       f"{r['url']}  {when}" + (f"\n       last error: {r['last_error']}" if r["last_error"] else ""))
        if not rows:
            click.echo("no failed deliveries" if failed else "no webhook deliveries")
    emit(outbox.list_rows(obj.service, failed=failed, limit=limit), as_json, text)


@webhooks_cmd.command("deliver")
@click.option("--limit", type=click.IntRange(1), help="Send at most this many rows.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def deliver_cmd(obj, limit, as_json):
    """Send the due deliveries now (what the scheduler of `serve` does each tick)."""
    emit(outbox.deliver(obj.service, limit=limit), as_json,
         lambda r: click.echo(f"sent {r['sent']}, to retry {r['retrying']}, given up {r['failed']}"))


@webhooks_cmd.command("resend")
@click.argument("row_id", metavar="ID", type=int)
@click.pass_obj
def resend_cmd(obj, row_id):
    """Queue delivery ID to be sent again (same body and event id) at the next delivery."""
    row = outbox.resend(obj.service, row_id)
    click.echo(f"delivery {row['id']} ({row['kind']} to {row['url']}) queued for {_t(row['next_attempt'])}")
