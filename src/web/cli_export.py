"""`complaintflow export REF --pdf FILE --html FILE`: the case dossier (归档, dossier.py).

Exit codes (docs/cli.md): 3 for an unknown case, 2 for a path that cannot be written or no
output named. Each file is written to a temporary file beside it and renamed, after the
whole dossier has been rendered: a failure leaves no partial file behind.
"""

from __future__ import annotations

import click

from ..engine.errors import InvalidInput


@click.command("export")
@click.argument("ref")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False), help="Write the dossier as PDF (A4) here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write the dossier as HTML here.")
@click.option("--user", default="cli", show_default=True,
              help="Who exports: named in the dossier and as the verification's checker.")
@click.option("--show-identity", is_flag=True,
              help="Show the complainant's identity in the history (default: masked as （保密）).")
@click.option("--no-verify", is_flag=True,
              help="Show the newest stored verification instead of checking the case now.")
@click.pass_obj
def export_cmd(obj, ref, pdf_path, html_path, user, show_identity, no_verify):
    """The case dossier (归档) of REF (instance id or case number) as PDF and/or HTML."""
    from . import dossier
    from .app import load_roles        # COMPLAINTFLOW_PROCESSES or ./processes; else the history
                                       # reads the roles.json beside the process's source file
    if not pdf_path and not html_path:
        raise InvalidInput("name at least one output: --pdf FILE and/or --html FILE")
    service = obj.service
    if show_identity and user != "cli":
        _refuse_the_person_complained_about(service, ref, user)
    doc = dossier.build(service, ref, may_see_identity=show_identity, exported_by=user,
                        names=_names(), roles=load_roles() or None, verify=not no_verify)
    html = dossier.render_html(doc)
    outputs = []
    if pdf_path:
        outputs.append((pdf_path, dossier.render_pdf(html)))
    if html_path:
        outputs.append((html_path, html.encode("utf-8")))
    for path, content in outputs:
        dossier.write_atomically(path, content)
        click.echo(f"wrote {path} ({len(content):,} bytes)")
    v = doc["verification"]
    state = "not verified" if v is None else ("consistent" if v["consistent"] else "INCONSISTENT")
    click.echo(f"case {doc['number']}: {len(doc['history'])} event(s), chain head {doc['head']['seq']}, {state}")


def _refuse_the_person_complained_about(service, ref, user):
    """--show-identity for the person the procedure hides the complainant from (`hideIdentityFrom`,
    docs/process-design.md): refused, nothing written."""
    from ..engine.confidentiality import hidden_from
    from ..engine.errors import NotAllowed
    detail = service.case_detail(ref)
    if hidden_from(detail["meta"], detail["data"], service.org, user):
        raise NotAllowed(f"the complainant's identity in case {ref} is hidden from {user}, the person complained "
                         "about (hideIdentityFrom); export without --show-identity")


def _names():
    """Display names from the users file (COMPLAINTFLOW_USERS_FILE or the demo users); none
    when it cannot be read — the history then shows login ids."""
    from .users import UsersFileError, load_users
    try:
        users = load_users()
    except (UsersFileError, OSError):
        return None

    def names(login):
        u = users.get(login)
        return (u.name, next(iter(sorted(u.roles)), None)) if u else None
    return names
