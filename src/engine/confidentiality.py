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
