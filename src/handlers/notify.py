"""Messages to complainants and staff. The notifier service decides how they travel
(SMS, e-mail, letter); handlers only say what is sent to whom."""

from ..engine.clock import SHANGHAI, parse_instant


def _when(text):
    """A moment as complainants read it: 2026年05月08日 17:00 (Beijing time)."""
    try:
        return parse_instant(str(text)).astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M")
    except ValueError:
        return str(text)


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


def register(registry):
    registry.register("notify.complainant", complainant, params=("case_number", "contact", "message"))
    registry.register("notify.receipt", receipt, params=("case_number", "contact", "promised_resolution_at"))
    registry.register("notify.refusal", refusal, params=("case_number", "contact", "reason"))
    registry.register("notify.report_major", report_major, params=("case_number", "content"))
