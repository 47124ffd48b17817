"""The readable history of a case (docs/review.md). INTERFACE — being implemented.

readable_history(service, instance_id, *, may_see_identity: bool,
                 names: Callable[[str], tuple[str, str | None] | None] | None = None) -> list[dict]

One dict per event, oldest first:
    {"seq": int, "step": int, "kind": str, "at": ISO UTC, "at_local": "2026年05月06日 10:00",
     "actor": login id | "system", "actor_name": display name (names(login)[0], or 系统),
     "actor_role": role's Chinese name or None,
     "sentence": "李客服（客服接待）完成了「初步核实」", (Chinese; identity masked as （保密）
                 unless may_see_identity)
     "fields": [{"title": form field title, "value": label as shown (choice titles, 是/否,
                 dates in Chinese format)}],
     "changes": [{"title": ..., "before": ..., "after": ...}],   # case data changed at this step
     "raw": the event as stored (dict), for the 原始数据 toggle}
`names(login)` returns (display name, role id) from the web's users directory, or None.
"""
