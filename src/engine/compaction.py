"""Closed cases kept small on disk (docs/performance.md, "Closed cases on disk").

A closed case never acts again (`ComplaintService._load` refuses it), so its engine state
is only ever read: by the case page (its data and its path through the diagram), by the
dossier, and by `replay --verify`, which compares the state rebuilt from the log with the
stored one. So when a case closes, in the closing action's own transaction, its state JSON
moves into `instance_states.packed`, zlib-compressed, and `state` becomes the empty text
(schema 0009). Nothing is lost: `state_text` gives back the same text, byte for byte; its
hash stays in `state_hash` and on the closing action's driver event (`state_after`), and
replay still compares the whole stored state with the rebuilt one.

Cases closed before schema 0009 are packed by `compact_closed` (`complaintflow compact`),
in batches, each batch one transaction; a case is one row, packed by one UPDATE, so a
crash leaves every case either packed or as it was — never half of one.
"""

from __future__ import annotations

import re
import zlib
from typing import Callable

from sqlalchemy import bindparam, func, select, update

from .clock import IdSequence
from .models import Instance, InstanceState

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


def pack_state(state_row: InstanceState, inst: Instance) -> None:
    """Move a closed case's state text into `packed` (once, in the closing action)."""
    if state_row.state:
        state_row.packed = pack(state_row.state, inst.id, inst.id_counter)
        state_row.state = ""


def state_text(state_row: InstanceState) -> str:
    """The engine state's JSON text of a case, whether it is packed or not. A row whose
    `state` text is set is read as it is (an open case, or one edited after packing, which
    replay then finds different)."""
    if state_row.state or state_row.packed is None:
        return state_row.state
    return unpack(state_row.packed, state_row.instance_id)


def compact_closed(service, *, batch: int = 200, progress: Callable[[int, int], None] | None = None) -> dict:
    """Pack the state of every closed case not packed yet. Returns {"compacted", "closed"}:
    how many were packed now, and how many closed cases there are. `progress(done, todo)`
    is called after each batch is committed."""
    t = InstanceState.__table__
    with service.sessions() as s:
        closed = s.execute(select(func.count()).select_from(Instance).where(Instance.status == "completed")).scalar_one()
        todo = s.execute(select(func.count()).select_from(InstanceState)
                         .join(Instance, Instance.id == InstanceState.instance_id)
                         .where(Instance.status == "completed", InstanceState.packed.is_(None))).scalar_one()
    done, after = 0, ""
    while True:
        with service.sessions() as s, s.begin():
            rows = s.execute(select(InstanceState.instance_id, InstanceState.state, Instance.id_counter)
                             .join(Instance, Instance.id == InstanceState.instance_id)
                             .where(Instance.status == "completed", InstanceState.packed.is_(None),
                                    InstanceState.instance_id > after)
                             .order_by(InstanceState.instance_id).limit(batch)).all()
            if not rows:
                break
            params = [{"iid": iid, "packed": pack(text, iid, counter)} for iid, text, counter in rows]
            s.execute(update(t).where(t.c.instance_id == bindparam("iid"), t.c.packed.is_(None))
                      .values(packed=bindparam("packed"), state=""), params)
            after = rows[-1][0]
        done += len(rows)
        if progress:
            progress(done, todo)
    return {"compacted": done, "closed": closed}
