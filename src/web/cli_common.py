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
