"""A receipt or a withdrawal typed with a moment still to come is refused (`x-not-future`):
it would move a limit by days. The message names the field and the present minute, and
nothing is stored."""

from __future__ import annotations

import pytest

from complaintflow.engine.errors import InvalidInput
from test_tourism import INTAKE, STAFF, WITHDRAWAL, accept, at, deadline, file_and_serve, ly  # noqa: F401


def test_a_receipt_later_than_now_is_refused_and_nothing_is_registered(ly, clock):
    clock.set(at("2026-04-28T09:00"))
    with pytest.raises(InvalidInput) as err:
        ly.start("tourism", dict(INTAKE, received_at="2026-04-29T09:00"), "registrar_chen")
    (message,) = err.value.field_texts("zh")["received_at"]
    assert message == "「接到投诉时间（北京时间）」不能晚于现在（2026-04-28 09:00），现为 2026-04-29 09:00"
    assert ly.list_cases() == []
    case = ly.start("tourism", dict(INTAKE, received_at="2026-04-28T09:00"), "registrar_chen")   # now itself is fine
    assert deadline(ly, case, "accept")["last_day"] == "2026-05-08"


def test_a_withdrawal_dated_later_than_now_is_refused_and_changes_nothing(ly, clock):
    clock.set(at("2026-04-28T09:00"))
    case = ly.start("tourism", INTAKE, "registrar_chen")
    accept(ly, case)
    file_and_serve(ly, clock, case, "2026-04-30T10:00")
    clock.set(at("2026-05-06T09:00"))
    before = (ly.show(case.instance_id), len(ly.history(case.instance_id)))
    with pytest.raises(InvalidInput) as err:
        ly.send_message(case.instance_id, "withdrawal", WITHDRAWAL, STAFF)       # dated 09:30
    assert err.value.field_texts("zh")["withdrawn_at"] == ["「撤回时间」不能晚于现在（2026-05-06 09:00），现为 2026-05-06 09:30"]
    assert (ly.show(case.instance_id), len(ly.history(case.instance_id))) == before
    clock.set(at("2026-05-06T09:30"))
    ly.send_message(case.instance_id, "withdrawal", WITHDRAWAL, STAFF)
    assert ly.show(case.instance_id)["legal_state"] == "withdrawn"
