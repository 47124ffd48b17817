"""Case life-cycle facts kept on the case summary."""

from ..engine.clock import iso


def close(ctx):
    """Mark the case closed (结案) now; returns the closing time."""
    at = ctx.now()
    ctx.services.case.set_summary(closed_at=at)
    return {"closed_at": iso(at)}


def register(registry):
    registry.register("case.close", close)
