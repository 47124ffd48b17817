"""What a case's dossier (归档, src/web/dossier.py) states beyond `show` and `case_detail`:
the case columns kept for review (department) and the head of the case's event chain — the
last event's sequence number, hash and chain key fingerprint — as stored. The head lets a
reader of a printed dossier check later that the log has not grown or changed since."""

from __future__ import annotations

from sqlalchemy import select

from .clock import iso
from .models import Event


def chain_head(service, ref: str) -> dict:
    """{"instance_id", "seq", "hash", "key_id", "at", "department"} of the case `ref`
    (instance id or case number); seq 0 and hash None for a case without events."""
    with service.sessions() as s:
        inst = service._find_case(s, ref)
        last = s.execute(select(Event).where(Event.instance_id == inst.id)
                         .order_by(Event.seq.desc()).limit(1)).scalar_one_or_none()
        return {"instance_id": inst.id, "department": inst.department,
                "seq": last.seq if last else 0, "hash": last.hash if last else None,
                "key_id": last.key_id if last else None, "at": iso(last.at) if last else None}
