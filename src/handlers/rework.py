"""Counting rework rounds (a dissatisfied complainant's case is handled again, a bounded number of times)."""


def count(ctx):
    """Return the current rework count plus one."""
    return int(ctx.params.get("current") or 0) + 1


def register(registry):
    registry.register("rework.count", count, params=("current",), may_hang=False)
