"""The what-if's candidate (engine/whatif.py): the BPMN file of a process — a file, a
directory holding it, or the file its latest version was deployed from — checked as `deploy`
checks it (`diff` finds it the same way, engine/procdiff.py), and the `Sandbox`, a throwaway
service with the candidate deployed in it.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

from lxml import etree
from sqlalchemy import select

from .clock import FixedClock
from .definitions import check_paths
from .element_checks import NS
from .errors import InvalidInput, ValidationFailed
from .models import ProcessVersion


def process_ids_in(path: Path) -> set[str] | None:
    """The ids of the processes a BPMN file defines, or None if it cannot be read as XML."""
    try:
        root = etree.parse(str(path)).getroot()
    except (etree.LxmlError, OSError):
        return None
    return {p.get("id") for p in root.findall("bpmn:process", NS)}


def candidate_file(service, process_id: str, path=None) -> Path:
    """The BPMN file of `process_id`: `path` (a file, or a directory holding it), else the file
    its latest version was deployed from, else the one in processes/."""
    if path is None:
        with service.sessions() as s:
            source = s.execute(select(ProcessVersion.source_path).where(ProcessVersion.process_id == process_id)
                               .order_by(ProcessVersion.version.desc()).limit(1)).scalar_one_or_none()
        if source and Path(source).is_file() and process_id in (process_ids_in(Path(source)) or ()):
            return Path(source)
        path = Path("processes")
    path = Path(path)
    if path.is_file():
        if process_id not in (process_ids_in(path) or ()):
            raise InvalidInput(f"{path} does not define process '{process_id}'")
        return path
    if not path.is_dir():
        raise InvalidInput(f"the candidate '{path}' is not a BPMN file or a directory of them")
    found, unreadable = [], []
    for f in sorted(path.glob("*.bpmn")):
        ids = process_ids_in(f)
        if ids is None:
            unreadable.append(f.name)
        elif process_id in ids:
            found.append(f)
    if len(found) > 1:
        raise InvalidInput(f"process '{process_id}' is defined in {len(found)} files in {path}: "
                           f"{', '.join(f.name for f in found)}")
    if not found:
        also = f" ({', '.join(unreadable)} could not be read as XML)" if unreadable else ""
        raise InvalidInput(f"no BPMN file in {path} defines process '{process_id}'{also}")
    return found[0]


def load_candidate(service, process_id: str, path=None):
    """(file, package): the candidate checked as `deploy` checks it; ValidationFailed if not."""
    source = candidate_file(service, process_id, path)
    result = check_paths([source], service.handlers)
    if not result.ok:
        raise ValidationFailed(result.problems)
    for pkg in result.packages:
        if pkg.process_id == process_id:
            return source, pkg
    raise InvalidInput(f"{source} defines process '{process_id}', but it is not marked isExecutable=\"true\"")


class _NoNotices:
    """Notices of the what-if go nowhere."""

    def send(self, kind, to, message, case_number=None):
        return {"kind": kind, "to": to, "message": message, "case_number": case_number, "channel": "what-if"}


class Sandbox:
    """A ComplaintService on a temporary SQLite file with the candidate deployed in it; its
    clock is a FixedClock the replay moves. Use as a context manager (the file is removed)."""

    def __init__(self, service, package):
        from .service import ComplaintService
        self.dir = tempfile.mkdtemp(prefix="complaintflow-whatif-")
        self.clock = FixedClock(service.clock.now())
        self.service = ComplaintService(f"sqlite:///{Path(self.dir) / 'whatif.sqlite3'}", clock=self.clock,
                                        handlers=service.handlers, notifier=_NoNotices(),
                                        calendar=service.calendar, handler_timeout=service.handler_timeout,
                                        chain_key=secrets.token_bytes(32))
        (self.deployed,) = self.service._deploy_packages([package])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.service.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)
