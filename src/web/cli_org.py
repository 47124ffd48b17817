"""`complaintflow org check [FILE]`: the organisation file (engine/org.py, docs/operations.md),
and the organisation the other commands use, checked against the users file."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..engine.org import OrgFileError, load_org, org_path, users_problems


def checked_org(path=None):
    """The organisation file read and checked, its people's logins against the users file
    (COMPLAINTFLOW_USERS_FILE, else the demo users): OrgFileError when anything is wrong."""
    from .users import DEMO_USERS, UsersFileError, load_users
    org = load_org(path)
    try:
        users = load_users(os.environ.get("COMPLAINTFLOW_USERS_FILE") or None)
    except UsersFileError as err:
        raise OrgFileError([f"the logins of organisation file '{org.source}' cannot be checked: {err}"]) from None
    problems = users_problems(org, set(users.users), users.source, Path(users.source) == DEMO_USERS)
    if problems:
        raise OrgFileError(problems)
    return org


@click.group("org")
def org_cmd():
    """The organisation file: units, people, who reports to whom (tasks for a person)."""


@org_cmd.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def check_cmd(file):
    """Check FILE (default: COMPLAINTFLOW_ORG_FILE, else data/org/demo.toml) and its logins."""
    try:
        org = checked_org(file)
    except OrgFileError as err:
        for line in err.problems:
            click.echo(line, err=True)
        click.echo(f"{len(err.problems)} problem(s) in organisation file '{org_path(file)}'", err=True)
        raise SystemExit(1) from None
    click.echo(f"OK: {org.source}: {org.counts()}")
