"""Facts a procedure's forms declare for statistics (`"x-fact"` on a field; forms.py,
docs/process-design.md): kept in `case_facts` with the task that records them.

One row per case and fact — the latest value. Written in the action's own transaction
(service._complete_in), so a completed task and its fact are stored together or not at all.
"""

from __future__ import annotations

from datetime import datetime

from ..forms import fact_declarations
from ..models import CaseFact, Instance


def record_facts(session, inst: Instance, schema: dict | None, data: dict, now: datetime) -> None:
    """Keep the facts the form declares from the submitted `data` (a field left empty keeps
    nothing: e.g. no revisit, no satisfaction)."""
    for decl in fact_declarations(schema):          # () for nearly every form: no query
        if data.get(decl.field) is None:
            continue
        value = data[decl.field]
        row = session.get(CaseFact, (inst.id, decl.name))
        if row is None:
            row = CaseFact(instance_id=inst.id, name=decl.name)
            session.add(row)
        row.process_id = inst.process_id
        row.value = str(value)[:100]
        row.positive = decl.judge(value)
        row.recorded_at = now
