"""Form definitions are JSON Schema (draft 2020-12) files; submissions are checked here.

`jsonschema` does the validation. Its `date-time` format check needs an optional package
and otherwise passes anything, so we register our own: an ISO 8601 date-time, with or
without offset (without one it is Asia/Shanghai wall time). Accepted date-times are
normalised to ISO 8601 with offset, so timers and deadlines never see a naive value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from jsonschema import Draft202012Validator, FormatChecker

from .clock import ensure_aware, parse_instant
from .errors import InvalidInput

_checker = FormatChecker()


@_checker.checks("date-time", raises=ValueError)
def _is_datetime(value):
    if not isinstance(value, str):
        return True
    parse_instant(value)
    return True


@_checker.checks("date", raises=ValueError)
def _is_date(value):
    if not isinstance(value, str):
        return True
    from datetime import date
    date.fromisoformat(value)
    return True


def _messages(schema, error) -> tuple[str, str]:
    """(field, message) for one jsonschema error, in words staff understand."""
    path = list(error.absolute_path)
    field = str(path[0]) if path else ""
    props = schema.get("properties", {})
    v = error.validator
    if len(path) > 1 or (path and v == "required"):
        # inside a list or object field: the error belongs to that field, naming the row
        title = props.get(field, {}).get("title", field)
        row = f"第{path[1] + 1}行" if len(path) > 1 and isinstance(path[1], int) else ""
        what = error.message.split("'")[1] if v == "required" and "'" in error.message else error.message
        item = (props.get(field, {}).get("items") or {}).get("properties", {})
        if v == "required":
            column = item.get(what, {}).get("title", what)
            return field, f"{title}: {row}「{column}」is required (必填)"
        return field, f"{title}: {row} {what}".replace(":  ", ": ")
    if v == "required":
        field = error.message.split("'")[1] if "'" in error.message else field
    title = props.get(field, {}).get("title", field) if field else ""
    if v == "required":
        msg = f"{title or field} is required (必填)"
    elif v == "additionalProperties":
        extra = error.message.split("'")[1] if "'" in error.message else "?"
        field, msg = extra, f"'{extra}' is not a field of this form"
    elif v == "format":
        msg = f"{title}: '{error.instance}' is not a valid {error.validator_value} (e.g. 2026-05-06T17:00:00+08:00)"
    elif v in ("oneOf", "enum", "const"):
        choices = [c.get("const") for c in props.get(field, {}).get("oneOf", []) if isinstance(c, dict)]
        choices = choices or props.get(field, {}).get("enum", [])
        msg = f"{title}: '{error.instance}' is not one of the choices" + (f" ({', '.join(map(str, choices))})" if choices else "")
    elif v == "type":
        msg = f"{title}: expected {error.validator_value}, got {type(error.instance).__name__}"
    elif v == "minLength" and error.validator_value == 1:
        msg = f"{title} must not be empty (必填)"
    else:
        msg = f"{title}: {error.message}" if title else error.message
    return field, msg


def validate_submission(schema: dict | None, data, form_name: str = "") -> dict:
    """Check `data` against the form; return it normalised or raise InvalidInput with field errors."""
    if not isinstance(data, dict):
        raise InvalidInput("the submitted data must be a JSON object, e.g. {\"field\": \"value\"}")
    if schema is None:
        return dict(data)
    validator = Draft202012Validator(schema, format_checker=_checker)
    errors = sorted(validator.iter_errors(data), key=lambda e: ([str(x) for x in e.absolute_path], e.validator or ""))
    if errors:
        field_errors: dict[str, list[str]] = {}
        for err in errors:
            field, msg = _messages(schema, err)
            field_errors.setdefault(field or "_form", []).append(msg)
        lines = "; ".join(m for msgs in field_errors.values() for m in msgs)
        raise InvalidInput(f"form {form_name or schema.get('title', '')} has errors: {lines}", field_errors)
    out = dict(data)
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("format") == "date-time" and isinstance(out.get(name), str):
            out[name] = ensure_aware(parse_instant(out[name])).isoformat()
    return out


# --- choices: read once here, for the web's form controls and the readable history -------

def _choice_text(value) -> str:
    """A choice's value as text, when the schema gives it no title."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def choice_options(prop: dict) -> list[tuple[str, list[tuple[object, str]]]]:
    """The property's choices as [(group title, [(raw value, title)])]; [] when it has none."""
    if isinstance(prop.get("enum"), list):
        return [("", [(v, str(v)) for v in prop["enum"]])]
    for key in ("oneOf", "anyOf"):
        alts = prop.get(key)
        if not (isinstance(alts, list) and alts and all(isinstance(a, dict) for a in alts)):
            continue
        if all("const" in a for a in alts):
            return [("", [(a["const"], a.get("title") or _choice_text(a["const"])) for a in alts])]
        nested = [(a.get("title", ""), choice_options(a)) for a in alts]
        if all(len(opts) == 1 for _, opts in nested):
            return [(title, opts[0][1]) for title, opts in nested]
    if "const" in prop:
        return [("", [(prop["const"], prop.get("title") or _choice_text(prop["const"]))])]
    return []


def choice_titles(prop: dict) -> dict:
    """Value -> title of a property's choices (of its items' choices for a list)."""
    items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
    return {value: title for source in (prop, items) for _, group in choice_options(source) for value, title in group}


# --- facts for statistics (docs/process-design.md, "Facts for statistics") -------------------

FACT_KEY = "x-fact"
# The facts statistics know (engine/review/stats.py); a new name needs a figure there first.
FACT_NAMES = {"satisfaction": "满意度", "mediation": "调解结果"}


@dataclass(frozen=True)
class FactDeclaration:
    """A form field that records a fact: its value kept in `case_facts` when the task is done.
    `positive` values count as satisfied / mediation succeeded; `negative` ones as not; any
    other value is kept but counted in neither (None: every value not positive is negative)."""

    field: str
    name: str
    positive: frozenset
    negative: frozenset | None

    def judge(self, value) -> bool | None:
        if value in self.positive:
            return True
        if self.negative is None or value in self.negative:
            return False
        return None


# A version's forms never change, so each schema's declarations are read once (by identity;
# the schema is kept with them, so its id cannot be reused while the entry lives).
_declared: dict[int, tuple[dict, tuple[FactDeclaration, ...]]] = {}


def fact_declarations(schema: dict | None) -> tuple[FactDeclaration, ...]:
    if not schema:
        return ()
    hit = _declared.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    found = []
    for field, prop in (schema.get("properties") or {}).items():
        decl = prop.get(FACT_KEY) if isinstance(prop, dict) else None
        if isinstance(decl, dict) and decl.get("name") in FACT_NAMES:
            negative = decl.get("negative")
            found.append(FactDeclaration(field, decl["name"], frozenset(_hashable(decl.get("positive") or [])),
                                         None if negative is None else frozenset(_hashable(negative))))
    if len(_declared) > 10_000:          # many short-lived services (tests): start afresh
        _declared.clear()
    _declared[id(schema)] = (schema, tuple(found))
    return tuple(found)


def _hashable(values) -> list:
    return [v for v in values if isinstance(v, (str, int, float, bool))] if isinstance(values, list) else []


def field_choices(prop: dict) -> list | None:
    """The values a field allows, or None when it is not a choice (free text, numbers)."""
    values = [value for _, group in choice_options(prop) for value, _ in group]
    if values:
        return values
    return [True, False] if prop.get("type") == "boolean" else None


def fact_problems(schema: dict) -> list[str]:
    """What is wrong with the form's fact declarations, in words a designer understands."""
    problems, seen = [], {}
    for field, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict) or FACT_KEY not in prop:
            continue
        decl = prop[FACT_KEY]
        where = f"field '{field}': {FACT_KEY}"
        if not isinstance(decl, dict) or set(decl) - {"name", "positive", "negative"}:
            problems.append(f"{where} must be an object with \"name\", \"positive\" and optionally \"negative\"")
            continue
        name = decl.get("name")
        if name not in FACT_NAMES:
            problems.append(f"{where} names fact '{name}', which statistics do not know "
                            f"(known: {', '.join(sorted(FACT_NAMES))})")
            continue
        if name in seen:
            problems.append(f"{where} records fact '{name}' already recorded by field '{seen[name]}' of this form")
        seen[name] = field
        choices = field_choices(prop)
        if choices is None:
            problems.append(f"{where}: the field is not a choice (oneOf, enum or boolean), so no value can be "
                            "judged positive")
            continue
        for key in ("positive", "negative"):
            values = decl.get(key)
            if key == "negative" and values is None:
                continue
            if not isinstance(values, list) or (key == "positive" and not values):
                problems.append(f"{where}: \"{key}\" must be a list of the field's choice values")
                continue
            unknown = [v for v in values if not any(v == c and type(v) is type(c) for c in choices)]
            if unknown:
                problems.append(f"{where}: {key} value(s) {', '.join(map(repr, unknown))} are not among the "
                                f"field's choices ({', '.join(map(repr, choices))})")
        both = set(_hashable(decl.get("positive"))) & set(_hashable(decl.get("negative")))
        if both:
            problems.append(f"{where}: {', '.join(map(repr, sorted(both, key=str)))} is both positive and negative")
    return problems
