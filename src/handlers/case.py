"""Case life-cycle facts kept on the case summary."""

from ..engine.clock import iso


def close(ctx):
    """Mark the case closed (结案) now; returns the closing time."""
    at = ctx.now()
    ctx.services.case.set_summary(closed_at=at)
    return {"closed_at": iso(at)}


def set_state(ctx):
    """Record a change of the case's legal state (e.g. deemed_accepted: 视为受理)."""
    state = str(ctx.params["state"])
    ctx.services.case.set_summary(legal_state=state)
    return {"legal_state": state, "at": iso(ctx.now())}


def split(ctx):
    """Split one record into separate cases (投诉、举报、咨询分别处理): one new case per part,
    each checked against the target process's intake form and given `split_from`."""
    parts = ctx.params.get("parts")
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        raise ValueError("parameter 'parts' must be a non-empty list of objects (one intake record per new case)")
    process = str(ctx.params.get("process") or ctx.process_id)
    parent = ctx.data.get("case_number")
    cases = ctx.services.cases.start_all(process, parts, {"split_from": parent})
    return {"cases": cases, "process": process}


def register(registry):
    registry.register("case.close", close, may_hang=False)
    registry.register("case.set_state", set_state, params=("state",), may_hang=False)
    # the new cases' own handlers are called each by its own flag
    registry.register("case.split", split, params=("parts", "process"), may_hang=False)
