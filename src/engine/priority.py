"""The case's priority (issue 14: "direct and widespread complaints first").

A procedure sets the case data `priority` to 1 (P1, 急), 2 (P2, 优先) or 3 (P3, normal; also
what a case without the variable has) — from a form field, a DMN output or a script
(docs/process-design.md, "Priority"). The service keeps it in step on the case's open task
rows (`human_tasks.priority`), and the inbox lists and task lists order by it before the due
time, so a P1 task due next week comes before a P3 task due tomorrow.

A form may not submit any other value: `form_problems` is checked with every submission
(engine/forms.py), whether or not the form declares the field, so a bad value is a field
error and nothing is stored. A DMN table or script that produces something else is the
designer's mistake: the task keeps the normal priority rather than the case stopping.
"""

from __future__ import annotations

from .errors import Field, Message, msg

FIELD = "priority"          # the case data variable
NORMAL = 3
LEVELS = (1, 2, 3)


def case_priority(data: dict | None) -> int:
    """The priority a task of the case gets from the case data it sees (3 when absent or not 1/2/3)."""
    value = (data or {}).get(FIELD)
    return value if _valid(value) else NORMAL


def form_problems(schema: dict | None, data: dict) -> list[tuple[str, Message]]:
    """[(field, message)] when a submission carries a priority other than 1, 2 or 3."""
    if FIELD not in data or _valid(data[FIELD]):
        return []
    prop = ((schema or {}).get("properties") or {}).get(FIELD)
    title = prop.get("title", FIELD) if isinstance(prop, dict) else FIELD
    return [(FIELD, msg("priority_value", field=Field(title), value=data[FIELD]))]


def _valid(value) -> bool:
    return type(value) is int and value in LEVELS      # not True/False, not "1", not 1.0
