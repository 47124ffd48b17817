"""Closed cases kept small on disk (docs/performance.md, "Closed cases on disk").

A closed case never acts again (`ComplaintService._load` refuses it), so its engine state
is only ever read: by the case page and the dossier (its data and its path through the
diagram) and by `replay --verify`. Since schema 0010 the closing action, in its own
transaction, deletes the case's `instance_states` row and keeps in `closed_cases` only the
state's hash and what those readers show of it (`inbox.case_view`: the data, the elements
reached, the steps taken), zlib-compressed — a few hundred bytes in a table of small rows,
instead of a state row laid out while the case was open. Nothing is lost: the state is the
replay of the event log, and replay compares the state it rebuilds with the hash kept (as it
does at every step with the hash on the step's driver event) and the view it derives from
that state with the view kept.

Before 0010 the closing action packed the state into `instance_states.packed` (0009: the
task ids as their counter numbers, then zlib); readers still read such a row, and any
unpacked one, as they are. `compact_closed` (`complaintflow compact`) turns every closed
case that still has a state row into a `closed_cases` row, in batches, each batch one
transaction: a case is converted whole or not at all. `restore_states` does the reverse
(replay) for the migration's downgrade.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Callable

from sqlalchemy import delete, func, insert, select

from .clock import IdSequence
from .models import ClosedCase, Event, Instance, InstanceState
from .serializer import canonical_json

LEVEL = 9          # closed states are written once and read seldom: the smallest zlib gives
# A task id inside a packed state, written as its number in the case's id sequence
# (clock.IdSequence: uuid5 of the case id and the counter), between two NUL characters,
# which JSON text never holds unescaped.
_TOKEN = re.compile(r"\x00(\d+)\x00")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class UnreadableState(Exception):
    """A packed state that does not unpack (edited or damaged bytes)."""


def pack(text: str, instance_id: str, id_counter: int) -> bytes:
    """A closed case's state text, small: its task ids (a third of the text, and random to
    zlib) as their numbers in the case's id sequence, then zlib-compressed."""
    draw = IdSequence(instance_id)
    numbers = {str(draw()): draw.counter for _ in range(id_counter)}
    short = _UUID.sub(lambda m: f"\x00{numbers[m.group(0)]}\x00" if m.group(0) in numbers else m.group(0), text)
    return zlib.compress(short.encode("utf-8"), LEVEL)


def unpack(packed: bytes, instance_id: str) -> str:
    try:
        short = zlib.decompress(packed).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as err:
        raise UnreadableState(f"the stored state of the closed case cannot be unpacked ({err})") from err
    return _TOKEN.sub(lambda m: str(IdSequence(instance_id, int(m.group(1)) - 1)()), short)


# A kept view: this mark, the number N of the case's events whose payloads are its zlib
# dictionary (big-endian, 4 bytes), then the view compressed against them. The case data in
# the view is mostly what those payloads already hold (the intake, the forms, the handlers'
# outputs), so it costs a few hundred bytes instead of about 900.
_WITH_EVENTS = b"\x01"


def _dictionary(payloads) -> bytes:
    """The zlib dictionary of a case's view: its events' payloads as canonical JSON, in order
    (the same bytes however the payloads are stored); zlib uses the last 32 KB."""
    return "".join(canonical_json(p) for p in payloads).encode("utf-8")[-32768:]


def pack_view(view: dict, payloads: list) -> bytes:
    """A closed case's `inbox.case_view`, as kept: compact UTF-8 JSON, zlib-compressed against
    the payloads of the case's first len(payloads) events."""
    text = json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    packer = zlib.compressobj(LEVEL, zdict=_dictionary(payloads)) if payloads else zlib.compressobj(LEVEL)
    return _WITH_EVENTS + len(payloads).to_bytes(4, "big") + packer.compress(text) + packer.flush()


def events_used(packed: bytes) -> int:
    """How many of the case's first events `unpack_view` needs the payloads of."""
    return int.from_bytes(packed[1:5], "big") if packed[:1] == _WITH_EVENTS else 0


def unpack_view(packed: bytes, payloads: list) -> dict:
    """The view kept of a closed case; `payloads`: those of its first `events_used` events."""
    try:
        if packed[:1] != _WITH_EVENTS:
            raise ValueError("not a kept view")
        n = events_used(packed)
        if len(payloads) != n:
            raise ValueError(f"it needs {n} event(s), the log has {len(payloads)}")
        unpacker = zlib.decompressobj(zdict=_dictionary(payloads)) if n else zlib.decompressobj()
        return json.loads((unpacker.decompress(packed[5:]) + unpacker.flush()).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError) as err:
        raise UnreadableState(f"what was kept of the closed case cannot be unpacked ({err})") from err


def read_view(s, kept: ClosedCase) -> dict:
    """The view kept of a closed case, its events' payloads read with session `s`."""
    return unpack_view(kept.view, _payloads(s, kept.instance_id, events_used(kept.view)))


def _payloads(s, instance_id: str, last_seq: int) -> list:
    return s.execute(select(Event.payload).where(Event.instance_id == instance_id, Event.seq <= last_seq)
                     .order_by(Event.seq)).scalars().all()


def pack_state(s, case) -> None:
    """At close (`ComplaintService._finish`, once the state's hash is set and before the
    action's own events are appended): keep the case's view, compressed against the events
    written before this action, and the state hash in `closed_cases`; delete its state row."""
    from .inbox import case_view

    row, inst = case.state_row, case.inst
    if row in s.new:             # started and closed by one action: the row was never written
        s.expunge(row)
    else:
        s.delete(row)
    payloads = _payloads(s, inst.id, inst.last_event_seq) if inst.last_event_seq else []
    s.add(ClosedCase(instance_id=inst.id, state_hash=row.state_hash, view=pack_view(case_view(case.wf), payloads)))


def state_text(state_row: InstanceState) -> str:
    """The engine state's JSON text of a case that keeps its state row, whether it is packed
    (0009) or not. A row whose `state` text is set is read as it is."""
    if state_row.state or state_row.packed is None:
        return state_row.state
    return unpack(state_row.packed, state_row.instance_id)


def compact_closed(service, *, batch: int = 200, progress: Callable[[int, int], None] | None = None) -> dict:
    """Turn every closed case that still has an engine state row (closed before schema 0010,
    packed by 0009 or not) into a `closed_cases` row, as the closing action does now.
    Returns {"compacted", "closed"}: how many were converted now, and how many closed cases
    there are. `progress(done, todo)` is called after each batch is committed."""
    from .inbox import case_view

    still = (select(InstanceState.instance_id).join(Instance, Instance.id == InstanceState.instance_id)
             .where(Instance.status == "completed"))
    with service.sessions() as s:
        closed = s.execute(select(func.count()).select_from(Instance).where(Instance.status == "completed")).scalar_one()
        todo = s.execute(select(func.count()).select_from(still.subquery())).scalar_one()
    done, after = 0, ""
    while True:
        with service.sessions() as s, s.begin():
            rows = s.execute(select(InstanceState, Instance.version_id, Instance.last_event_seq)
                             .join(Instance, Instance.id == InstanceState.instance_id)
                             .where(Instance.status == "completed", InstanceState.instance_id > after)
                             .order_by(InstanceState.instance_id).limit(batch)).all()
            if not rows:
                break
            kept = []
            for row, version_id, last_seq in rows:
                pv = service.version_info(s, version_id)
                wf = service.serializer.state_from_dict(json.loads(state_text(row)), *pv.specs)
                kept.append({"instance_id": row.instance_id, "state_hash": row.state_hash,
                             "view": pack_view(case_view(wf), _payloads(s, row.instance_id, last_seq))})
            s.execute(insert(ClosedCase.__table__), kept)
            s.execute(delete(InstanceState.__table__)
                      .where(InstanceState.__table__.c.instance_id.in_([k["instance_id"] for k in kept])))
            after = rows[-1][0].instance_id
        done += len(rows)
        if progress:
            progress(done, todo)
    return {"compacted": done, "closed": closed}


def restore_states(conn) -> int:
    """The engine state of every case in `closed_cases` rebuilt from its log and put back
    into `instance_states`, packed as schema 0009 kept it (the downgrade of 0010). The
    rebuilt state must have the hash kept, or nothing is changed. Returns how many."""
    from sqlalchemy.orm import Session

    from .replay import replay_instance
    from .runtime import matches_state_after, state_text as text_of
    from .service import ComplaintService
    from .serializer import Serializer

    class Versions:             # what replay needs of a service: the versions, the serializer
        version_info = ComplaintService.version_info

        def __init__(self):
            self.serializer, self._versions = Serializer(), {}

    service, rows = Versions(), []
    with Session(bind=conn) as s:
        for kept, inst in s.execute(select(ClosedCase, Instance).join(Instance, Instance.id == ClosedCase.instance_id)):
            wf = replay_instance(service, s, inst, until=inst.last_event_seq).workflow
            state = service.serializer.state_to_dict(wf) if wf is not None else {}
            text = text_of(state)
            if wf is None or not matches_state_after(kept.state_hash, text, state):
                raise RuntimeError(f"the state of closed case {inst.case_number or inst.id} cannot be rebuilt from its "
                                   "log with the hash kept for it; nothing was changed")
            rows.append({"instance_id": inst.id, "state": "", "state_hash": kept.state_hash,
                         "packed": pack(text, inst.id, inst.id_counter)})
    if rows:
        conn.execute(insert(InstanceState.__table__), rows)
    return len(rows)
