"""Output helpers shared by the command modules."""

from __future__ import annotations

import click

from ..engine.clock import local_iso, parse_instant
from ..engine.errors import InvalidInput


def emit(obj, as_json: bool, text_fn):
    """Print `obj` as JSON (documented keys) or as text."""
    if as_json:
        from .schemas import dump_json     # marshmallow: only for --json
        click.echo(dump_json(obj))
    else:
        text_fn(obj)


def _t(value):
    """An ISO moment in Beijing time for the text output."""
    return local_iso(parse_instant(value)) if value else "-"


def echo_outbox_rows(rows, describe, empty: str) -> None:
    """Outbox rows (webhook deliveries, SMS) one a line: id, status, attempts, `describe(row)`,
    the next attempt or when it was sent, and the last error under it."""
    for r in rows:
        when = {"pending": f"next {_t(r['next_attempt'])}", "sent": f"sent {_t(r['sent'])}"}.get(r["status"], "given up")
        click.echo(f"{r['id']:>6} {r['status']:8} {r['attempts']:>2}x {describe(r)}  {when}"
                   + (f"\n       last error: {r['last_error']}" if r["last_error"] else ""))
    if not rows:
        click.echo(empty)


def outbox_options(limit_help: str | None = None):
    """--limit and --json of the outbox commands: `list` (no `limit_help`: the newest 100 rows,
    at most 10,000) and `deliver` (send at most --limit rows, `limit_help` says what)."""
    def wrap(command):
        command = click.option("--json", "as_json", is_flag=True)(command)
        if limit_help is None:
            return click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))(command)
        return click.option("--limit", type=click.IntRange(1), help=limit_help)(command)
    return wrap


def echo_delivered(counts) -> None:
    """What one delivery run of the outbox did (outbox.deliver's counts)."""
    click.echo(f"sent {counts['sent']}, to retry {counts['retrying']}, given up {counts['failed']}")


def report_cases(result, skipped_note: str) -> None:
    """The cases a run over many cases (tick, calendar recompute) skipped, refused or failed."""
    for f in result["skipped"]:
        click.echo(f"  skipped {f['instance_id']}: {f['reason']} ({skipped_note})", err=True)
    for f in result["refused"]:
        click.echo(f"  refused {f['instance_id']}: {f['error']}", err=True)
    for f in result["failed"]:
        click.echo(f"  failed {f['instance_id']}: {f['error']}", err=True)


def system_work_exit(ctx, result) -> None:
    """Exit code of a run over many cases: 1 if a case failed, 2 if one was refused (a moment
    before its last event), else 0 — a case skipped because another process was handling it
    is normal."""
    if result["failed"]:
        ctx.exit(1)
    if result["refused"]:
        ctx.exit(InvalidInput.exit_code)


def since_day(since: str | None):
    """`--since YYYY-MM-DD` as a date (None when not given); a clear error otherwise."""
    from datetime import date
    if not since:
        return None
    try:
        return date.fromisoformat(since)
    except ValueError:
        raise InvalidInput(f"--since must be a day such as 2026-05-01, not '{since}'") from None
