"""`complaintflow compact`: pack the engine state of cases closed before schema 0009
(engine/compaction.py; cases closing now are packed by the closing action itself)."""

from __future__ import annotations

import click

from .cli_common import emit


@click.command("compact")
@click.option("--batch", default=200, show_default=True, type=click.IntRange(1, 10_000),
              help="Cases packed per transaction.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def compact_cmd(obj, batch, as_json):
    """Keep closed cases small: pack the state of every closed case not packed yet."""
    from ..engine.compaction import compact_closed

    def progress(done, todo):
        if not as_json:
            click.echo(f"packed {done} of {todo} closed case(s)", err=True)

    result = compact_closed(obj.service, batch=batch, progress=progress)

    def text(r):
        click.echo(f"packed {r['compacted']} closed case(s); {r['closed']} closed case(s) in all, every one packed "
                   "(on SQLite the file keeps its size: the freed pages are reused; VACUUM returns them)")
    emit(result, as_json, text)
