"""Who may read a complainant's identity (投诉人、举报人信息保密).

* Identity fields are marked in the forms: `"x-identity": true` on a property (name,
  contact, address, ID number ...).
* Roles that need them to do their work say so in processes/roles.json:
  `"sees_identity": true` (the receiving desk, the unit that mediates between the parties).
* A reporter who asked for anonymity (`anonymous: true` in the case data, seed 004 Art. 8)
  is shown to nobody but the role that registers cases (the start event's lane); handling
  units never see who reported (004 Art. 28(五)).

Everything else sees the field with its value replaced by a mask.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

IDENTITY_KEYWORD = "x-identity"


def identity_fields(forms: dict[str, dict]) -> set[str]:
    """Property names marked as identity in any form of a process version."""
    names = set()
    for schema in forms.values():
        _collect(schema, names)
    return names


def _collect(schema, names):
    if not isinstance(schema, dict):
        return
    for name, prop in (schema.get("properties") or {}).items():
        if isinstance(prop, dict):
            if prop.get(IDENTITY_KEYWORD) is True:
                names.add(name)
            _collect(prop.get("items"), names)
            _collect(prop, names)


def may_see_identity(viewer_roles: set[str], roles_config: dict, case_data: dict, start_role: str | None) -> bool:
    if case_data.get("anonymous") is True:
        return start_role is not None and start_role in viewer_roles
    return any((roles_config.get(r) or {}).get("sees_identity") is True for r in viewer_roles)


def identity_values(data: dict, fields: set[str]) -> set[str]:
    """The identity strings of a case (the values of its identity fields, at any depth)."""
    found = set()

    def walk(value, key=None):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif key in fields and isinstance(value, (str, int)) and len(str(value)) >= 2:
            found.add(str(value))
    walk(data)
    return found


def redact(value: Any, fields: set[str], mask: str, values: set[str] = frozenset()) -> Any:
    """A copy of `value` with every key in `fields` (at any depth) masked, and every identity
    string in `values` masked wherever else it appears (a notice's addressee, a message)."""
    if isinstance(value, dict):
        return {k: (mask if k in fields and v not in (None, "", []) else redact(v, fields, mask, values))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, fields, mask, values) for v in value]
    if isinstance(value, str) and values:
        for secret in sorted(values, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, mask)
    return value


# --- a task that needs the identity (revealFields) ------------------------------------------
# A user task may grant the person doing it sight of the identity fields its work needs, e.g.
# the department that negotiates a solution with the customer needs the customer's name and
# contact:  <spiffworkflow:property name="revealFields" value="complainant,contact" />
# Shown on that task's page only, to a user holding the task's role, while it is open; each
# showing is logged by the page. A reporter who asked for anonymity is never revealed.

REVEAL_PROPERTY = "revealFields"
_SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"


@lru_cache(maxsize=64)
def _reveal_properties(bpmn_xml: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Element id -> (element tag, the field names of its `revealFields` property)."""
    from lxml import etree
    root = etree.fromstring(bpmn_xml.encode("utf-8"))
    out = {}
    for prop in root.iter(f"{{{_SPIFF}}}property"):
        if prop.get("name") != REVEAL_PROPERTY:
            continue
        element = prop.getparent().getparent().getparent()
        names = tuple(n.strip() for n in (prop.get("value") or "").split(",") if n.strip())
        out[element.get("id")] = (etree.QName(element).localname, names)
    return out


def task_reveals(bpmn_xml: str, task_spec: str) -> set[str]:
    """The field names the user task's `revealFields` property declares (none: empty)."""
    tag, names = _reveal_properties(bpmn_xml).get(task_spec, ("", ()))
    return set(names) if tag == "userTask" else set()


def revealed_fields(bpmn_xml: str, task: dict, case_data: dict, identity: set[str],
                    user: str | None = None) -> set[str]:
    """The identity fields the open `task` (a task dict) shows to `user`, who holds its role:
    nothing once a colleague has claimed the task (the one holding it is the one who needs them)."""
    if task.get("status") != "open" or case_data.get("anonymous") is True:
        return set()
    if task.get("claimed_by") and task.get("claimed_by") != user:
        return set()
    return task_reveals(bpmn_xml, task.get("task")) & identity


def reveal_problems(bpmn_xml: str, forms: dict[str, dict]) -> list[tuple[str, str]]:
    """(element id, message) for each `revealFields` that `validate` should refuse: on an
    element other than a user task, empty, or naming a field no form of the process marks
    `"x-identity": true` (a typo would silently reveal nothing)."""
    identity = identity_fields(forms)
    problems = []
    for element, (tag, names) in _reveal_properties(bpmn_xml).items():
        if tag != "userTask":
            problems.append((element, f"property '{REVEAL_PROPERTY}' is only read on a user task, not on a {tag}"))
        elif not names:
            problems.append((element, f"property '{REVEAL_PROPERTY}' names no field; list identity fields, "
                                      "e.g. \"complainant,contact\""))
        for name in names:
            if name not in identity:
                known = ", ".join(sorted(identity)) or "(none)"
                problems.append((element, f"property '{REVEAL_PROPERTY}' names '{name}', which no form of this "
                                          f"process marks \"{IDENTITY_KEYWORD}\": true; identity fields: {known}"))
    return problems


# --- the identity hidden from one named person (hideIdentityFrom) ----------------------------
# A procedure names the case-data field holding the person id (organisation file, org.py) of
# the person complained about:  <spiffworkflow:property name="hideIdentityFrom" value="respondent_id"/>
# on its <bpmn:process>. The user linked to that person never sees the complainant's identity,
# whatever their roles (`sees_identity`) or tasks (`revealFields`) would show.

HIDE_PROPERTY = "hideIdentityFrom"


def hidden_from(meta: dict, case_data: dict, org, login: str | None) -> bool:
    """True when `login` is the person the case's identity is hidden from."""
    field = (meta or {}).get("hide_identity_from")
    if not field or not login or case_data.get(field) in (None, ""):
        return False
    person = org.person_of_user(login)
    return person is not None and str(case_data.get(field)) == person.id
