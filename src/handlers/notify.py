"""Messages to complainants and staff. The notifier service decides how they travel
(SMS, e-mail, letter); handlers only say what is sent to whom."""

from ..engine.deadline_text import notice_text

# a limit as the complainant reads it (engine/deadline_text.py, the one place limits are worded):
# the last day for day-based limits (2026年12月02日), else the moment (2026年05月08日 17:00)
_limit_text = _when = notice_text


def acknowledge(ctx):
    """Acknowledge a complaint: the case number and each time limit that applies, by label
    (`limits`: {"作出是否受理的决定": accept_limit, ...} with deadline.start records or ISO moments)."""
    p = ctx.params
    limits = p.get("limits") or {}
    if not isinstance(limits, dict):
        raise ValueError("parameter 'limits' must map a label to a deadline record or a moment")
    parts = [f"{label}：最迟于{_limit_text(value)}" for label, value in limits.items()]
    lead = str(p.get("text") or "您的投诉已登记")
    message = f"{lead}，编号 {p.get('case_number')}。" + "；".join(parts) + ("。" if parts else "")
    return ctx.services.notifier.send("acknowledgement", p.get("contact"), message, p.get("case_number"))


def receipt(ctx):
    """Send the complainant a receipt with the tracking number and the promised resolution time."""
    p = ctx.params
    message = (f"您的投诉已受理，受理编号 {p.get('case_number')}。"
               f"我们承诺在 {_when(p.get('promised_resolution_at'))} 前给您答复。")
    return ctx.services.notifier.send("receipt", p.get("contact"), message, p.get("case_number"))


def refusal(ctx):
    """Tell the complainant the complaint is not accepted, with the reason."""
    p = ctx.params
    message = f"您的投诉（编号 {p.get('case_number')}）不予受理，理由：{p.get('reason')}。"
    return ctx.services.notifier.send("refusal", p.get("contact"), message, p.get("case_number"))


def report_major(ctx):
    """Report a major complaint to management at once."""
    p = ctx.params
    message = f"重大投诉 {p.get('case_number')} 需立即处理：{p.get('content')}"
    return ctx.services.notifier.send("report_major", "role:manager", message, p.get("case_number"))


def complainant(ctx):
    """Tell the complainant something the procedure requires (e.g. that a limit was extended)."""
    p = ctx.params
    return ctx.services.notifier.send("complainant", p.get("contact"), str(p.get("message")), p.get("case_number"))


def staff(ctx):
    """Tell the holders of a role something at once (a major complaint, a transfer, a breach)."""
    p = ctx.params
    role = str(p.get("role") or "").strip()
    if not role:
        raise ValueError("parameter 'role' must name the role to notify")
    return ctx.services.notifier.send("staff", f"role:{role}", str(p.get("message")), p.get("case_number"))


def external(ctx):
    """Send a matter to a body outside the institution (police, another authority, a court)."""
    p = ctx.params
    to = str(p.get("to") or "").strip()
    if not to:
        raise ValueError("parameter 'to' must name the body the matter goes to")
    return ctx.services.notifier.send("external", to, str(p.get("message")), p.get("case_number"))


def register(registry):
    registry.register("notify.complainant", complainant, params=("case_number", "contact", "message"))
    registry.register("notify.acknowledge", acknowledge, params=("case_number", "contact", "text", "limits"))
    registry.register("notify.staff", staff, params=("role", "case_number", "message"))
    registry.register("notify.external", external, params=("to", "case_number", "message"))
    registry.register("notify.receipt", receipt, params=("case_number", "contact", "promised_resolution_at"))
    registry.register("notify.refusal", refusal, params=("case_number", "contact", "reason"))
    registry.register("notify.report_major", report_major, params=("case_number", "content"))
