"""`complaintflow calendar ...`: the business calendar (working days, holidays, due moments)."""

from __future__ import annotations

import click

from ..engine.clock import parse_instant
from .cli_common import _t, emit, report_cases, system_work_exit


@click.group()
def calendar():
    """The business calendar: working days, holidays, due moments."""


@calendar.command("deadline")
@click.option("--from", "start", required=True, help="Start moment (ISO 8601; no offset = Asia/Shanghai).")
@click.option("--workdays", type=int)
@click.option("--days", type=int, help="Calendar days, rolled forward over holidays and rest days.")
@click.option("--days-strict", type=int, help="Calendar days, not rolled forward.")
@click.option("--hours", type=int)
@click.option("--minutes", type=int)
@click.option("--months", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def calendar_deadline(obj, start, workdays, days, days_strict, hours, minutes, months, as_json):
    """When a limit counted from --from ends."""
    from ..engine.calendar import CalendarError
    given = {"workdays": workdays, "days": days, "days_strict": days_strict, "hours": hours,
             "minutes": minutes, "months": months}
    chosen = {k: v for k, v in given.items() if v is not None}
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --workdays, --days, --days-strict, --hours, --minutes, --months")
    (unit, amount), = chosen.items()
    try:
        begin = parse_instant(start)
        due = obj.service_calendar().deadline(begin, unit, amount)
    except (ValueError, CalendarError) as err:
        raise click.BadParameter(str(err))
    result = due.as_dict()

    def text(r):
        last = f" (end of {r['last_day']})" if r["last_day"] else ""
        flag = "  PROVISIONAL: a year in this period has no published holiday arrangement" if r["provisional"] else ""
        click.echo(f"{r['due']}{last}{flag}")
    emit(result, as_json, text)


@calendar.command("show")
@click.argument("year", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def calendar_show(obj, year, as_json):
    """The year's holidays and make-up working days (调休)."""
    listing = obj.service_calendar().year_listing(year)

    def text(r):
        click.echo(f"{r['year']}: {'official' if r['official'] else 'PROVISIONAL'} — {r['source']}")
        click.echo("holidays (not working days):")
        for h in r["holidays"]:
            click.echo(f"  {h['date']}  {h['name']}")
        click.echo("make-up working days (weekend days that are working days):")
        for d in r["workdays"] or ["(none)"]:
            click.echo(f"  {d}")
    emit(listing, as_json, text)


@calendar.command("recompute")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def calendar_recompute(obj, as_json):
    """Recompute open provisional deadlines after loading a year's arrangement; re-arms timers."""
    def progress(n, total):
        if not as_json and total >= 20 and (n % 50 == 0 or n == total):
            click.echo(f"  {n}/{total} cases", err=True)
    result = obj.service.recompute_provisional(progress=progress)

    def text(r):
        click.echo(f"{r['cases_checked']} case(s) with provisional deadlines, {r['cases_changed']} changed")
        for c in r["changes"]:
            for name, ch in c["changes"].items():
                flag = " (still provisional)" if ch["provisional"] else ""
                click.echo(f"  {c['case_number'] or c['instance_id']} {name}: {_t(ch['from'])} -> {_t(ch['to'])}{flag}")
        report_cases(r, "run `calendar recompute` again for it")
    emit(result, as_json, text)
    system_work_exit(click.get_current_context(), result)


# --- output helpers -------------------------------------------------------------

