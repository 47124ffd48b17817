"""Verification of cases, kept for the reviewer's badge (docs/review.md). INTERFACE — being implemented.

verify_case(service, instance_id, *, actor: str) -> dict
    Runs the same check as `replay --verify`, stores a `Verification` row and returns
    {"instance_id", "case_number", "consistent": bool, "checked_at": ISO, "checked_by",
     "events": int, "chain_head": str | None, "summary": plain-words first difference or None}.

verify_all(service, *, actor: str, process_id: str | None = None, since: date | None = None,
           progress: Callable[[int, int], None] | None = None) -> dict
    {"checked": n, "consistent": n, "inconsistent": [{"instance_id", "case_number", "summary"}]}

last_verification(service, instance_id) -> dict | None     # the newest stored result
"""
