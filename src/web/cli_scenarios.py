"""`complaintflow test`: run the designers' scenario files (processes/tests/) — being built."""

from __future__ import annotations

import click


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
def test_cmd(paths):
    """Run process scenario files (not built yet)."""
    raise click.ClickException("not built yet")
