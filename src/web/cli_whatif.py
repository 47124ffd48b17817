"""`complaintflow whatif` and `complaintflow diff`: a candidate definition against past cases and
against deployed versions — being built."""

from __future__ import annotations

import click


@click.command("whatif")
@click.argument("process_id")
def whatif_cmd(process_id):
    """Replay past cases against a candidate definition (not built yet)."""
    raise click.ClickException("not built yet")


@click.command("diff")
@click.argument("process_id")
def diff_cmd(process_id):
    """Compare two versions of a process (not built yet)."""
    raise click.ClickException("not built yet")
