"""Time limits stated in BPMN: start, pause, resume, extend and stop a named deadline.

Each returns `Updates(record, deadlines=...)`: the task's result variable gets a record of
what happened; `deadlines` (name -> ISO due moment) is what timers use:
`<bpmn:timeDate>deadlines["accept"]</bpmn:timeDate>`. Changing it re-arms those timers.
See docs/time-limits.md.
"""

from __future__ import annotations

from ..engine.calendar import ALWAYS_OPEN
from ..engine.clock import local_iso, parse_instant
from . import Updates


def _book(ctx):
    return ctx.services.deadlines


def _int(ctx, key, default=None):
    value = ctx.params.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"parameter '{key}' must be a whole number, not {value!r}")
    return int(value)


def start(ctx):
    """Start a named limit: unit and amount from `from` (default: now), on the business calendar,
    or `until`, a promised moment (承诺时间) that must lie after now.
    `label` (optional) is the limit's name for people; engine/deadline_text.py reads it from the BPMN.

    Started before for the case, it is a new round (a promise renewed until the matter is
    resolved, 003:235): the record gives `round`, how the previous round ended (`previous`:
    met or breached, when), and with `max_rounds` the bound and `rounds_left` (0 on the last
    round allowed; a round beyond the bound is started all the same — the BPMN routes on it)."""
    p = ctx.params
    name = str(p["name"])
    max_rounds = _int(ctx, "max_rounds")
    if max_rounds is not None and max_rounds < 1:
        raise ValueError(f"parameter 'max_rounds' must be a whole number of at least 1, not {max_rounds}")
    until, origin = p.get("until"), p.get("from")
    if until is not None:
        if "unit" in p or "amount" in p or origin:
            raise ValueError("give either 'until' (a promised moment) or 'unit' and 'amount', not both")
        begin, unit, amount = parse_instant(str(until)), "at", 0
        if begin <= ctx.now():
            raise ValueError(f"the promised moment {local_iso(begin)} for limit '{name}' is not after now "
                             f"({local_iso(ctx.now())}); a promise must lie in the future")
    else:
        begin = parse_instant(str(origin)) if origin else ctx.now()
        unit, amount = str(p.get("unit", "workdays")), _int(ctx, "amount", 0)
    due, row, previous = _book(ctx).start(name, unit, amount, begin, rule=p.get("rule"), seed=p.get("seed"),
                                          remind_workdays=_int(ctx, "remind_workdays"))
    record = {"name": name, **due.as_dict(), "round": row.round}
    if previous is not None:
        record["previous"] = previous
    if max_rounds is not None:
        record["max_rounds"] = max_rounds
        record["rounds_left"] = max(max_rounds - row.round, 0)
    return Updates(record, deadlines=_book(ctx).as_variable())


def stop(ctx):
    """The step the limit is about is done: met if in time, breached if late.

    `done` False (or, left out, a case whose legal state is withdrawn or deemed withdrawn):
    the case ends without that step being done — the limit is `stopped`, neither met nor
    breached (still breached if it had already run out)."""
    done = ctx.params.get("done")
    if done is not None and not isinstance(done, bool):
        raise ValueError(f"parameter 'done' must be True or False, not {done!r}")
    row = _book(ctx).stop(str(ctx.params["name"]), done=done)
    return Updates({"name": row.name, "status": row.status}, deadlines=_book(ctx).as_variable())


def pause(ctx):
    """Stop the clocks (e.g. while a product is tested or appraised: 检验、检测、鉴定的时间不计算在内)."""
    names = ctx.params.get("names") or "*"
    paused = _book(ctx).pause(names)
    return Updates({"paused": paused, "reason": ctx.params.get("reason")}, deadlines=_book(ctx).as_variable())


def resume(ctx):
    """Restart the clocks; each paused limit moves out by exactly the paused time."""
    names = ctx.params.get("names") or "*"
    resumed = _book(ctx).resume(names)
    return Updates({"resumed": resumed}, deadlines=_book(ctx).as_variable())


def extend(ctx):
    """Extend a limit after an approval: refused (with the reason) when not approved, over the
    cap (`max_total`), or, with `before_due`, approved after the limit ran out."""
    p = ctx.params
    name = str(p["name"])
    if not p.get("approved", True):
        granted, reason = False, "the extension was not approved"
    else:
        granted, reason = _book(ctx).extend(name, _int(ctx, "amount"), _int(ctx, "max_total"),
                                            bool(p.get("before_due", True)))
    variable = _book(ctx).as_variable()
    row = _book(ctx).get(name)
    return Updates({"name": name, "granted": granted, "reason": reason, "due": variable.get(name),
                    "last_day": row.last_day, "provisional": row.provisional}, deadlines=variable)


def period(ctx):
    """Compute a period on the business calendar without making it a deadline of the case
    (e.g. whether a complaint came within 90 days of the contract's end): the same record as
    deadline.start (`due`, `last_day`, `provisional`, ...).

    The period counts from `from` as given: reception hours say when a complaint counts as
    received, not when a contract ended, so they never move the start of such a period."""
    p = ctx.params
    origin = p.get("from")
    begin = parse_instant(str(origin)) if origin else ctx.now()
    calendar = _book(ctx).calendar.with_hours(ALWAYS_OPEN)
    return calendar.deadline(begin, str(p.get("unit", "days")), _int(ctx, "amount", 0)).as_dict()


def working_time(ctx):
    """Is it working time now for this procedure (its calendar and its `receptionHours`)?

    Returns `{"working_time": bool, "next_opening": ISO}`; `next_opening` is now itself in
    working time, else the next moment the office opens. Reception hours `always` are open at
    every moment (rest days and holidays too); a procedure without reception hours works whole
    working days: on a rest day its next opening is 00:00 of the next working day."""
    working, opening = _book(ctx).calendar.working_time(ctx.now())
    return {"working_time": working, "next_opening": opening.isoformat()}


def register(registry):
    # all of them compute on the business calendar and the case's own deadline rows
    registry.register("deadline.start", start,
                      params=("name", "unit", "amount", "from", "until", "max_rounds", "rule", "seed", "remind_workdays",
                              "label"),
                      may_hang=False)
    registry.register("deadline.stop", stop, params=("name", "done"), may_hang=False)
    registry.register("calendar.period", period, params=("unit", "amount", "from"), may_hang=False)
    registry.register("calendar.working_time", working_time, params=(), may_hang=False)
    registry.register("deadline.pause", pause, params=("names", "reason"), may_hang=False)
    registry.register("deadline.resume", resume, params=("names",), may_hang=False)
    registry.register("deadline.extend", extend, params=("name", "amount", "max_total", "before_due", "approved"),
                      may_hang=False)
