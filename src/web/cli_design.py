"""Design-time commands: lay out a BPMN file's diagram and draw it as SVG. They read and
write files only; no database."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..engine import drawing, layout
from ..engine.errors import InvalidInput


def _bpmn_files(paths) -> list[Path]:
    files = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += sorted(p.glob("*.bpmn"))
        elif p.is_file() and p.suffix == ".bpmn":
            files.append(p)
        else:
            raise InvalidInput(f"'{raw}' is not a BPMN file or a directory of them")
    return files


@click.command("layout")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file's diagram is not the computed one.")
def layout_cmd(paths, check):
    """Compute the diagram (BPMN DI) of BPMN files and write it into them.

    Only the bpmndi:BPMNDiagram element is replaced; the rest of each file stays byte for byte."""
    stale = []
    for path in _bpmn_files(paths):
        raw = path.read_bytes()
        try:
            new, diagram = layout.apply(raw)
        except (layout.LayoutError, ValueError) as err:
            raise InvalidInput(f"{path}: {err}")
        crossing = layout.crossings(diagram)
        note = f"{len(diagram.shapes)} shapes, {len(diagram.edges)} flows, {len(diagram.lanes)} lanes"
        if crossing:
            note += f"; {len(crossing)} flow(s) cross a shape: " + ", ".join(f"{f}×{s}" for f, s in crossing[:5])
        if new == raw:
            click.echo(f"{path}: up to date ({note})")
        elif check:
            stale.append(str(path))
            click.echo(f"{path}: diagram differs from the computed layout ({note})")
        else:
            path.write_bytes(new)
            click.echo(f"{path}: laid out ({note})")
    if stale:
        raise click.exceptions.Exit(1)


@click.command("draw")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="SVG file to write (default: beside the BPMN file).")
def draw_cmd(path, output):
    """Draw a BPMN file's diagram as SVG (lanes labelled with the role names of roles.json)."""
    path = Path(path)
    roles_file = path.parent / "roles.json"
    roles = json.loads(roles_file.read_text(encoding="utf-8")) if roles_file.is_file() else {}
    try:
        svg = drawing.render(path.read_bytes(), role_names={k: v.get("zh", k) for k, v in roles.items()})
    except layout.LayoutError as err:
        raise InvalidInput(f"{path}: {err}")
    target = Path(output) if output else path.with_suffix(".svg")
    target.write_text(svg, encoding="utf-8")
    click.echo(f"{path}: drawn to {target}")


@click.command("hash-password")
@click.password_option("--password", prompt="Password", help="Read from a prompt (typed twice) when omitted.")
def hash_password_cmd(password):
    """Print the hash of a password for the users file (COMPLAINTFLOW_USERS_FILE)."""
    from werkzeug.security import generate_password_hash
    if len(password) < 8:
        raise InvalidInput("a password must have at least 8 characters")
    click.echo(generate_password_hash(password))
