"""`complaintflow compact`: convert cases closed before schema 0010 to what a case closing
now keeps (engine/compaction.py: the state's hash and the case page's view, no engine state;
the closing action does this itself now)."""

from __future__ import annotations

import click

from .cli_common import emit


@click.command("compact")
@click.option("--batch", default=200, show_default=True, type=click.IntRange(1, 10_000),
              help="Cases converted per transaction.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def compact_cmd(obj, batch, as_json):
    """Keep closed cases small: convert every closed case that still keeps its engine state."""
    from ..engine.compaction import compact_closed

    def progress(done, todo):
        if not as_json:
            click.echo(f"compacted {done} of {todo} closed case(s)", err=True)

    result = compact_closed(obj.service, batch=batch, progress=progress)

    def text(r):
        click.echo(f"compacted {r['compacted']} closed case(s); {r['closed']} closed case(s) in all, every one "
                   "compact (on SQLite the file keeps its size: the freed pages are reused; VACUUM returns them)")
    emit(result, as_json, text)
