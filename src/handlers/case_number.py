"""Human-readable case numbers, unique per process and year: PREFIX-YYYY-NNNNNN."""

from ..engine.clock import SHANGHAI


def assign(ctx):
    """Assign the next case number of this process for the current year (Asia/Shanghai)."""
    prefix = str(ctx.params.get("prefix") or ctx.process_id.upper()[:4])
    year = ctx.now().astimezone(SHANGHAI).year
    number = ctx.services.case_numbers.next(ctx.process_id, year, prefix)
    ctx.services.case.set_summary(case_number=number)
    return number


def register(registry):
    # the counter is a row of this database, taken in a short transaction of its own: a wait for
    # its lock is bounded by the database's own lock timeout, not by an outside system
    registry.register("case_number.assign", assign, params=("prefix",), may_hang=False)
