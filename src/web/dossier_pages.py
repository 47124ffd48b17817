"""The case dossier (归档) from the case page: `/cases/<ref>/dossier.pdf` and `.html`.

Same access as the case page, decided by the same code (pages.CaseView): a user whose roles
do not work on the case gets the same 404 as for a case that does not exist, and the refusal
is logged; reviewers — a role marked `"reviews": true` in roles.json — may download any case. The complainant's
identity is masked in the history exactly as on the case page for that user. Every download
is recorded in the access log. The case is verified (`replay --verify`) at download time and
that result, stored as the case's newest, is the one printed.
"""

from __future__ import annotations

from flask import Blueprint, Response, g

from . import dossier
from .pages import CaseView, svc

dossier_pages = Blueprint("dossier", __name__)


def _names(login: str):
    user = g.ctx.users.get(login)
    return (user.name, next(iter(sorted(user.roles)), None)) if user else None


def _dossier(ref: str, fmt: str) -> dict:
    view = CaseView(ref, "download_dossier")   # 404 (and logged) unless the user may see the case
    number = view.summary["case_number"] or view.id
    doc = dossier.build(svc(), view.id, may_see_identity=view.sees_identity, exported_by=g.user.login,
                        names=_names, roles=g.ctx.roles, verify=True)
    svc().log_access(g.user.login, "download_dossier", number, True, f"dossier as {fmt}")
    return doc


@dossier_pages.get("/cases/<ref>/dossier.pdf")
def dossier_pdf(ref):
    doc = _dossier(ref, "pdf")
    pdf = dossier.render_pdf(dossier.render_html(doc))
    return _send(pdf, "application/pdf", f"{dossier.file_stem(doc)}.pdf", attachment=True)


@dossier_pages.get("/cases/<ref>/dossier.html")
def dossier_html(ref):
    doc = _dossier(ref, "html")
    return _send(dossier.render_html(doc).encode("utf-8"), "text/html; charset=utf-8",
                 f"{dossier.file_stem(doc)}.html", attachment=False)


def _send(content: bytes, mimetype: str, filename: str, *, attachment: bool) -> Response:
    response = Response(content, content_type=mimetype)
    response.headers["Content-Disposition"] = f'{"attachment" if attachment else "inline"}; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"      # a complainant's case: not kept by browsers or proxies
    return response
