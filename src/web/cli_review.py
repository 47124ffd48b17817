"""The compliance reviewer's commands beside the rest (`replay --verify --all`, `history
--readable`): the bulk check with its progress bar and summary, and what the readable
history needs from the web side (users' names, roles.json)."""

from __future__ import annotations

import os
import sys

import click

from ..engine.review.verify import verify_all
from .cli_common import emit, since_day


def verify_all_cases(service, process_id, since, user, as_json):
    """`replay --verify --all`: every selected case, a progress bar on a terminal, a summary."""
    day = since_day(since)
    bar = None
    show_bar = not as_json and sys.stderr.isatty()

    def progress(n, total):
        nonlocal bar
        if not show_bar:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="verifying", file=sys.stderr)
            bar.__enter__()
        bar.update(1)

    try:
        result = verify_all(service, actor=user, process_id=process_id, since=day, progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)

    def text(r):
        click.echo(f"checked {r['checked']} case(s): {r['consistent']} consistent, "
                   f"{len(r['inconsistent'])} inconsistent")
        for c in r["inconsistent"]:
            click.echo(f"  INCONSISTENT {c['case_number'] or c['instance_id']}: {c['summary']}")
    emit(result, as_json, text)
    if result["inconsistent"]:
        sys.exit(7)


def user_names():
    """(display name, role) of a login from the users file (or the demo users), for the
    readable history; None when the directory cannot be read."""
    try:
        from .users import load_users
        directory = load_users(os.environ.get("COMPLAINTFLOW_USERS_FILE") or None)
    except Exception:          # a readable history without names still reads
        return None

    def names(login):
        user = directory.get(login)
        if user is None:
            return None
        return user.name, (sorted(user.roles)[0] if user.roles else None)
    return names


def roles_file():
    from .app import load_roles      # Flask is imported only when it is needed
    return load_roles() or None


def print_readable(rows):
    for e in rows:
        click.echo(f"{e['seq']:>4}  {e['at_local']}  {e['sentence']}")
        for f in e["fields"]:
            click.echo(f"        {f['title']}：{f['value']}")
        for c in e["changes"]:
            click.echo(f"        变更 {c['title']}：{c['before']} → {c['after']}")
