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


def register(registry):
    registry.register("case.close", close)
    registry.register("case.set_state", set_state, params=("state",))
