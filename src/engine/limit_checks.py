"""The checks of time limits and timers in a BPMN file (part of `validate`): a limit must
be readable from the BPMN (constant name and unit; an amount constant or a DMN output whose
values are all whole numbers), a timer's expression must give an
ISO 8601 value or name a deadline some `deadline.start` starts."""

from __future__ import annotations

import ast
import re

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from .expressions import CheckedEnvironment, ExpressionRefused, check_expression, names_used
from .process_graph import quoted

_NOT_CONSTANT = object()
ISO_LIKE = re.compile(r"^(R\d*/)?P(\d|T)|^\d{4}-\d{2}-\d{2}")


class TimeLimitChecks:
    """Mixed into the file checker, which provides `problem`, `fold_into` and `check_code`,
    resets `deadline_starts`, `deadline_reminders` and `deadline_timers` for each process and
    keeps `misnamed_starts` (limit name -> the problem of a task whose handler is unknown)."""

    def check_deadline_task(self, node, handler, params):
        """Limits must be readable from the BPMN: constant name, unit and amount."""
        from .calendar import UNITS

        def constant(key):
            try:
                return ast.literal_eval((params.get(key) or "").strip())
            except (ValueError, SyntaxError):
                return _NOT_CONSTANT
        if handler in ("deadline.start", "deadline.stop", "deadline.extend"):
            name = constant("name")
            if not isinstance(name, str) or not name:
                self.problem(node, f"{handler} needs a parameter 'name' that is a quoted text, e.g. \"accept\"")
                return
        if handler == "deadline.start":
            self.check_rounds(node, name, params, constant("max_rounds"))
            if params.get("until"):
                if any(params.get(k) for k in ("unit", "amount", "from")):
                    self.problem(node, f"deadline '{name}': 'until' (a promised moment) replaces 'unit', 'amount' "
                                       "and 'from'; give one or the other")
                self.deadline_starts.add(name)
                return
            unit, amount = constant("unit"), constant("amount")
            if unit not in UNITS:
                self.problem(node, f"deadline '{name}': unit {params.get('unit')} is not one of "
                                   + ", ".join(f'"{u}"' for u in UNITS))
            if amount is _NOT_CONSTANT:
                self.check_computed_amount(node, name, (params.get("amount") or "").strip())
            elif not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
                self.problem(node, f"deadline '{name}': amount {params.get('amount')} must be a whole number (0 or more)")
            if unit == "at" and not params.get("from"):
                self.problem(node, f"deadline '{name}': unit \"at\" needs 'from', the moment it is due")
            self.deadline_starts.add(name)
            if params.get("remind_workdays"):
                self.deadline_reminders.add(name)

    def check_rounds(self, node, name, params, value):
        """`max_rounds`, the bound of a promise loop, is a constant whole number of at least 1."""
        if params.get("max_rounds") and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            self.problem(node, f"deadline '{name}': max_rounds {params.get('max_rounds')} must be a whole number "
                               "of at least 1 (the most rounds the promise may be renewed to)")

    def check_computed_amount(self, node, name, text):
        """A computed amount is a DMN output column whose every value is a whole number (0 or more)."""
        entries = self.dmn.output_entries(self.dmn_files, text) if text.isidentifier() else None
        if entries is None:
            self.problem(node, f"deadline '{name}': amount {text} must be a whole number (0 or more) "
                               "or the name of a DMN output of this process whose values are")
            return
        for entry in entries:
            try:
                value = ast.literal_eval(entry)
            except (ValueError, SyntaxError):
                value = None
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                self.problem(node, f"deadline '{name}': amount {text} comes from a DMN output, "
                                   f"whose value {entry or '(empty)'} is not a whole number (0 or more)")
                return

    def check_timer(self, node, tag, known_names):
        event = node.getparent().getparent()
        text = (node.text or "").strip()
        try:
            check_expression(text)
        except ExpressionRefused as err:
            self.problem(event, f"timer expression refused: {err}")
            return
        used = names_used(text)
        if used:
            iso_like = [n for n in used if ISO_LIKE.match(n)]
            if iso_like:
                self.problem(event, f"timer expression {text} is read as a variable name; "
                                    f"an ISO 8601 value needs quotes: \"{text}\"")
                return
            self.check_code(event, text, names=known_names, what="timer expression")
            from .runtime import deadline_name
            bound = deadline_name(text)
            if bound:
                self.deadline_timers.append((event, bound))
            return
        try:
            value = CheckedEnvironment().evaluate(text, {})
            if tag == "timeDate":
                TimerEventDefinition.get_datetime(value)
            elif tag == "timeDuration":
                TimerEventDefinition.parse_iso_duration(value)
            else:
                TimerEventDefinition.parse_iso_recurring_interval(value)
        except Exception:
            kind = {"timeDate": "date-time", "timeDuration": "duration",
                    "timeCycle": "repeating interval"}[tag]
            self.problem(event, f"timer expression {text} does not evaluate to an ISO 8601 {kind} "
                                "(e.g. \"P5D\", \"PT2H\", \"2026-05-06T09:00:00+08:00\")")

    def check_deadline_timers(self):
        """Every timer written deadlines["x"] waits for a limit that is started somewhere."""
        for event, name in self.deadline_timers:
            base = name[:-len(".remind")] if name.endswith(".remind") else name
            if name.endswith(".remind") and base not in self.deadline_reminders:
                self.problem(event, f"timer waits for the reminder of deadline '{base}', but no deadline.start "
                                    f"for '{base}' sets remind_workdays")
            elif base not in self.deadline_starts and base in self.misnamed_starts:
                self.fold_into(self.misnamed_starts[base], event,
                               f"so the timer {quoted(event)} waiting for deadline '{base}' would never fire")
            elif base not in self.deadline_starts:
                known = ", ".join(sorted(self.deadline_starts)) or "none"
                self.problem(event, f"timer waits for deadline '{base}', which no deadline.start service task "
                                    f"starts (started here: {known})")
