"""Verification of cases, kept for the reviewer's badge (docs/review.md).

verify_case(service, instance_id, *, actor: str) -> dict
    Runs the same check as `replay --verify`, stores a `Verification` row and returns
    {"instance_id", "case_number", "consistent": bool, "checked_at": ISO, "checked_by",
     "events": int, "chain_head": str | None, "summary": plain-words first difference or None,
     "first_difference": the replay's first difference (dict) or None}.

verify_all(service, *, actor: str, process_id: str | None = None, since: date | None = None,
           progress: Callable[[int, int], None] | None = None) -> dict
    {"checked": n, "consistent": n, "inconsistent": [{"instance_id", "case_number", "summary"}]}
    Cases are read in id batches (one case's engine state at a time, never all at once);
    `since` selects cases received on or after that day (Asia/Shanghai).

last_verification(service, instance_id) -> dict | None     # the newest stored result
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Callable

from sqlalchemy import func, select

from ..clock import SHANGHAI, iso
from ..models import Instance, Verification

BATCH = 200


def verify_case(service, instance_id: str, *, actor: str) -> dict:
    with service.sessions() as s:
        case_id = service._find_case(s, instance_id).id
    return record_verification(service, service.replay(case_id), actor=actor)


def record_verification(service, report, *, actor: str) -> dict:
    """Store the result of a full replay (`service.replay(id)`, no `until`) as a Verification."""
    consistent = report.consistent is True
    head = ((report.chain or {}).get("head") or {}).get("hash")
    summary = None if consistent else describe_difference(report.first_difference)
    row = Verification(instance_id=report.instance_id, checked_at=service.clock.now(),
                       checked_by=actor or "system", consistent=consistent, events=report.events,
                       chain_head=head, summary=summary)
    with service.uow() as s:
        case_number = s.execute(select(Instance.case_number).where(Instance.id == report.instance_id)).scalar()
        s.add(row)
        s.flush()
        out = _row_dict(row, case_number)
    out["first_difference"] = report.first_difference
    return out


def verify_all(service, *, actor: str, process_id: str | None = None, since: date | None = None,
               progress: Callable[[int, int], None] | None = None) -> dict:
    def selected(q):
        if process_id:
            q = q.where(Instance.process_id == process_id)
        if since is not None:
            q = q.where(Instance.received_at >= datetime.combine(since, time(0), SHANGHAI))
        return q

    with service.sessions() as s:
        total = s.execute(selected(select(func.count()).select_from(Instance))).scalar()
    out = {"checked": 0, "consistent": 0, "inconsistent": []}
    last = ""
    while True:
        with service.sessions() as s:      # the next batch of ids only: states load one by one
            ids = list(s.execute(selected(select(Instance.id)).where(Instance.id > last)
                                 .order_by(Instance.id).limit(BATCH)).scalars())
        if not ids:
            break
        last = ids[-1]
        for instance_id in ids:
            try:
                result = verify_case(service, instance_id, actor=actor)
            except Exception as err:        # one unreadable case must not stop the run
                result = {"instance_id": instance_id, "case_number": None, "consistent": False,
                          "summary": f"无法校验：{type(err).__name__}: {err}"}
            out["checked"] += 1
            if result["consistent"]:
                out["consistent"] += 1
            else:
                out["inconsistent"].append({"instance_id": result["instance_id"],
                                            "case_number": result["case_number"], "summary": result["summary"]})
            if progress:
                progress(out["checked"], max(total, out["checked"]))
    return out


def last_verification(service, instance_id: str) -> dict | None:
    with service.sessions() as s:
        inst = service._find_case(s, instance_id)
        row = s.execute(select(Verification).where(Verification.instance_id == inst.id)
                        .order_by(Verification.checked_at.desc(), Verification.id.desc()).limit(1)).scalar_one_or_none()
        return None if row is None else _row_dict(row, inst.case_number)


def describe_difference(diff: dict | None) -> str | None:
    """The first difference of a replay in plain words (Chinese lead, the engine's reason kept)."""
    if not diff:
        return "未能完成校验"
    parts = []
    if diff.get("event") is not None:
        parts.append(f"第 {diff['event']} 条事件")
    reason = diff.get("reason") or "与日志不一致"
    text = ("：".join(parts + [reason])) if parts else reason
    if diff.get("path"):
        text += f"（位置 {diff['path']}：重建值 {diff.get('rebuilt')}，存储值 {diff.get('stored')}）"
    if diff.get("key"):
        text += "（用当前密钥无法校验）"
    return text


def _row_dict(row: Verification, case_number) -> dict:
    return {"instance_id": row.instance_id, "case_number": case_number, "consistent": bool(row.consistent),
            "checked_at": iso(row.checked_at), "checked_by": row.checked_by, "events": row.events,
            "chain_head": row.chain_head, "summary": row.summary}
