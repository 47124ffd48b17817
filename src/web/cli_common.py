"""Output helpers shared by the command modules."""

from __future__ import annotations

import click

from ..engine.clock import local_iso, parse_instant
from .schemas import dump_json


def emit(obj, as_json: bool, text_fn):
    """Print `obj` as JSON (documented keys) or as text."""
    if as_json:
        click.echo(dump_json(obj))
    else:
        text_fn(obj)


def _t(value):
    """An ISO moment in Beijing time for the text output."""
    return local_iso(parse_instant(value)) if value else "-"
