"""The case dossier (归档): one printable document per case, as HTML and as PDF.

It holds the case summary, the deadlines with their rules and seed references, the readable
history (engine.review.history), the diagram with the path taken, the verification result
(engine.review.verify) and the head of the case's event chain (docs/review.md, "The dossier").
The CLI (`complaintflow export`, cli_export.py) and the case page's download
(dossier_pages.py) both call `build` then `render_html` / `render_pdf`.

The PDF is rendered by WeasyPrint from the same HTML (a real layout engine with paged media:
A4, running headers, page numbers, embedded font subsets) rather than by a hand-made PDF
writer. Chinese text is set in the system's Noto CJK font (Debian: fonts-noto-cjk), which
WeasyPrint finds through fontconfig and embeds as a subset.

The template is rendered with a Jinja environment of its own, not Flask's, so that the CLI
needs no application or request context.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from jinja2 import Environment, PackageLoader, select_autoescape

from ..engine import drawing, legal_states
from ..engine.archive import chain_head
from ..engine.clock import SHANGHAI, iso, parse_instant
from ..engine.errors import InvalidInput
from ..engine.review.history import readable_history
from ..engine.review.verify import last_verification, verify_case
from . import formgen
from .i18n import translate

Names = Callable[[str], "tuple[str, str | None] | None"]

UNITS = {"minutes": "分钟", "hours": "小时", "same_day": "当日", "workdays": "个工作日", "days": "日",
         "days_strict": "日（不顺延）", "months": "个月"}

_env = Environment(loader=PackageLoader("complaintflow.web", "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


# --- building ---------------------------------------------------------------------------------

def build(service, ref: str, *, may_see_identity: bool, exported_by: str, names: Names | None = None,
          roles: dict | None = None, verify: bool = True) -> dict:
    """Everything the dossier shows, for one reader. `may_see_identity` masks the complainant
    in the history as for the person exporting; `names(login)` gives (display name, role id)
    for the history; `roles` is roles.json (Chinese role names in the history and the
    diagram's lanes); `verify` runs `replay --verify` now and stores the result as the case's
    newest (else the newest stored result is shown, or none). Raises NotFound for an
    unknown case."""
    summary = service.show(ref)
    instance_id = summary["instance_id"]
    detail = service.case_detail(instance_id)
    meta = detail["meta"]
    if verify:
        checked = verify_case(service, instance_id, actor=exported_by)
    else:
        checked = last_verification(service, instance_id)
    head = chain_head(service, instance_id)          # after the check: the head it speaks of
    now = service.clock.now()
    return {
        "case": summary,
        "number": summary["case_number"] or instance_id,
        "procedure": meta.get("name") or summary["process_id"],
        "status": translate(f"status_{summary['status']}", "zh"),
        "received": _local(summary["received"]),
        "closed": _local(summary["closed"]),
        "category": _category_title(detail, summary["category"]),
        "department": head["department"] or detail["data"].get("department"),
        "legal_state": legal_states.label(meta, summary.get("legal_state")),
        "deadlines": [_deadline(d) for d in summary["deadlines"]],
        "history": readable_history(service, instance_id, may_see_identity=may_see_identity, names=names,
                                    roles=roles),
        "identity_masked": not may_see_identity,
        "diagram": _diagram(detail, {k: v.get("zh") or k for k, v in (roles or {}).items()}),
        "verification": checked,
        "verified_now": verify,
        "verification_at": _local(checked["checked_at"]) if checked else None,
        "head": head,
        "head_at": _local(head["at"], seconds=True),
        "exported_by": exported_by,
        "exported_at": _local(iso(now), seconds=True),
    }


def _local(value, seconds: bool = False) -> str:
    """An ISO moment in Beijing time, the Chinese way: 2026年05月06日 10:00."""
    if not value:
        return ""
    at = parse_instant(value) if isinstance(value, str) else value
    return at.astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M:%S" if seconds else "%Y年%m月%d日 %H:%M")


def _category_title(detail: dict, code: str | None) -> str | None:
    if not code:
        return None
    form = detail["forms"].get(detail["meta"].get("start_form") or "") or {}
    titles = formgen.choice_titles((form.get("properties") or {}).get("category") or {})
    return titles.get(code, code)


def _deadline(d: dict) -> dict:
    if d["unit"] == "at":
        size = "约定时间"
    else:
        size = f"{d['amount']}{UNITS.get(d['unit'], d['unit'])}"
    notes = []
    if d["extended_by"]:
        notes.append(f"延长 {d['extended_by']}")
    if d["paused_days"]:
        notes.append(f"中止计算 {d['paused_days']} 日")
    elif d["paused_seconds"]:
        notes.append(f"中止计算 {d['paused_seconds']} 秒")
    if d["paused_since"]:
        notes.append(f"自 {_local(d['paused_since'])} 起中止计算")
    if d["provisional"]:
        notes.append(translate("provisional", "zh"))
    return dict(d, size=size, notes=notes, status_zh=translate(f"deadline_{d['status']}", "zh"),
                due_local=_local(d["due"]), start_local=_local(d["start"]),
                breached_local=_local(d["breached_at"]), completed_local=_local(d["completed"]))


def _diagram(detail: dict, role_names: dict | None) -> str:
    path = detail["path"]
    try:
        return drawing.render(detail["bpmn_xml"].encode("utf-8"), role_names=role_names or {},
                              done=set(path["done"]), current=set(path["current"]),
                              taken_flows=set(path["flows"]))
    except ValueError:           # no diagram layout in the deployed file
        return ""


# --- rendering --------------------------------------------------------------------------------

def render_html(dossier: dict) -> str:
    return _env.get_template("dossier.html").render(d=dossier)


def render_pdf(html: str) -> bytes:
    # imported here: WeasyPrint loads Pango through cffi, which only exports need
    from weasyprint import HTML
    return HTML(string=html).write_pdf()


def write_atomically(path: str | os.PathLike, content: bytes) -> Path:
    """Write `content` to `path` through a temporary file in the same folder and a rename, so
    that a failure leaves no half-written file (and an older file at `path` untouched).
    An unwritable path is an InvalidInput naming it."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InvalidInput(f"cannot write '{target}': it is a directory")
    if not folder.is_dir():
        raise InvalidInput(f"cannot write '{target}': the folder '{folder}' does not exist")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp's mode 0600 is kept: a dossier holds a complainant's case
        os.replace(tmp, target)
        tmp = None
    except OSError as err:
        raise InvalidInput(f"cannot write '{target}': {err.strerror or err}") from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return target


def file_stem(dossier: dict) -> str:
    """A download name: dossier-KH-2026-000001 (ASCII: only the case number's letters, digits and dashes)."""
    safe = "".join(ch for ch in str(dossier["number"]) if ch.isalnum() or ch in "-_")
    return f"dossier-{safe}"
