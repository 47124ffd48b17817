"""`complaintflow token create|list|revoke`: the bearer tokens of the integration API (docs/api.md)."""

from __future__ import annotations

import click

from ..engine.errors import InvalidInput
from ..engine.tokens import create_token, expiry, list_tokens, revoke_token
from .cli_common import _t, emit


@click.group("token")
def token_cmd():
    """API tokens for other systems (a hotline, a web form): create, list, revoke."""


@token_cmd.command("create")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True,
              help="A role the token acts in (repeat for several); registering needs the procedure's start role.")
@click.option("--expires", help="Last day it works (YYYY-MM-DD, Beijing time) or a moment with its offset.")
@click.option("--roles-file", type=click.Path(dir_okay=False),
              help="roles.json naming the known roles (default: COMPLAINTFLOW_PROCESSES or processes/roles.json).")
@click.pass_obj
def create_cmd(obj, name, roles, expires, roles_file):
    """Create token NAME and print its secret — once: only its hash is stored."""
    from pathlib import Path
    from .app import load_roles
    known = load_roles(Path(roles_file).parent) if roles_file else load_roles()
    unknown = sorted(set(roles) - set(known)) if known else []
    if unknown:
        raise InvalidInput(f"unknown role(s) {', '.join(unknown)}; roles.json names: {', '.join(sorted(known))}")
    secret = create_token(obj.service, name, roles, expires_at=expiry(expires))
    click.echo(secret)
    click.echo(f"token '{name}' created for role(s) {', '.join(sorted(set(roles)))}; it acts as 'api:{name}'. "
               "Keep the secret above: it is not shown again.", err=True)


@token_cmd.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(obj, as_json):
    """Every token: name, roles, created, expires, status (active, expired, revoked)."""
    def text(rows):
        for r in rows:
            click.echo(f"{r['name']:20} {r['status']:8} {','.join(r['roles']):30} created {_t(r['created'])}"
                       f"  expires {_t(r['expires'])}" + (f"  revoked {_t(r['revoked'])}" if r["revoked"] else ""))
        if not rows:
            click.echo("no tokens (complaintflow token create NAME --role ROLE)")
    emit(list_tokens(obj.service), as_json, text)


@token_cmd.command("revoke")
@click.argument("name")
@click.pass_obj
def revoke_cmd(obj, name):
    """Revoke token NAME at once: its next call is refused (401). It stays listed."""
    done = revoke_token(obj.service, name)
    click.echo(f"token '{name}' revoked at {_t(done['revoked'])}")
