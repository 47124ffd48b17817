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
from .errors import Field, InvalidInput, Message, Term, msg
from .priority import form_problems as priority_problems

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


def _messages(schema, error) -> list[tuple[str, Message]]:
    """[(top-level field, message)] for one jsonschema error: one `Message` per JSON Schema
    keyword, naming the field (or table cell) by its title and stating the limit. Built from
    the error's structured parts (keyword, its value, the instance), never from its English."""
    path = list(error.absolute_path)
    props = schema.get("properties") or {}
    field = str(path[0]) if path else ""
    prop = props.get(field) if isinstance(props.get(field), dict) else {}
    items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
    row = path[1] + 1 if len(path) > 1 and isinstance(path[1], int) else None
    columns = items.get("properties") or {}
    column = str(path[2]) if len(path) > 2 else None

    def where(column_name=None):
        name = column_name or column
        col = (columns.get(name) or {}).get("title", name) if name else None
        return Field(prop.get("title", field) if field else "", row, col)

    v, limit, value = error.validator, error.validator_value, error.instance
    inner = (columns.get(column) if column else items if row else prop) or {}
    if v == "required":
        missing = [n for n in limit if isinstance(value, dict) and n not in value]
        if path:            # a column of a table row (or a key of an object field)
            return [(field, msg("required", field=where(n))) for n in missing]
        return [(n, msg("required", field=Field((props.get(n) or {}).get("title", n)))) for n in missing]
    if v == "dependentRequired":
        out = []
        for name, needed in (limit or {}).items():
            if isinstance(value, dict) and name in value:
                out += [(n, msg("dependent_required", field=Field((props.get(name) or {}).get("title", name)),
                                other=Field((props.get(n) or {}).get("title", n)))) for n in needed if n not in value]
        return out
    if v == "additionalProperties":
        known = set(props) if not path else set(columns)
        extra = [k for k in (value if isinstance(value, dict) else {}) if k not in known]
        return [(k if not path else field, msg("unknown_field", field=k)) for k in extra]
    if not field:
        return [("", msg("form_rule", detail=error.message))]
    f = where()
    if v == "minLength":
        return [(field, msg("min_length_empty", field=f) if limit == 1 else
                 msg("min_length", field=f, limit=limit, count=len(value)))]
    if v == "maxLength":
        return [(field, msg("max_length", field=f, limit=limit, count=len(value)))]
    numeric = {"minimum": "minimum", "maximum": "maximum", "exclusiveMinimum": "exclusive_minimum",
               "exclusiveMaximum": "exclusive_maximum", "multipleOf": "multiple_of"}
    if v in numeric:
        return [(field, msg(numeric[v], field=f, limit=limit, value=value))]
    if v in ("minItems", "maxItems"):
        verb = Term("choose" if choice_options(items) else "fill")
        return [(field, msg("min_items" if v == "minItems" else "max_items", field=f, verb=verb, limit=limit,
                            count=len(value)))]
    titles = choice_titles(inner)
    if v == "uniqueItems":
        seen, twice = [], []
        for item in value:
            (twice if item in seen and item not in twice else seen).append(item)
        return [(field, msg("unique_items", field=f, value=[titles.get(x, x) for x in twice]))]
    if v == "contains":
        wanted = limit.get("const") if isinstance(limit, dict) else None
        return [(field, msg("contains", field=f, choice=titles.get(wanted, wanted)))]
    if v == "format":
        code = {"date-time": "format_datetime", "date": "format_date"}.get(limit, "format_other")
        return [(field, msg(code, field=f, value=value, format=limit))]
    if v == "pattern":
        return [(field, msg("pattern", field=f, value=value))]
    if v in ("oneOf", "anyOf", "enum"):
        choices = [title for _, group in choice_options(inner) for _, title in group]
        return [(field, msg("choice", field=f, value=value, choices=choices) if choices else
                 msg("choice_any", field=f, value=value))]
    if v == "const":
        if "const" in inner and limit is True:          # a confirmation (已签字): tick it
            return [(field, msg("confirm", field=f))]
        choice = limit if isinstance(limit, bool) or "const" in inner else titles.get(limit, limit)
        return [(field, msg("const", field=f, choice=choice))]
    if v == "not":
        return [(field, msg("not_here", field=f))]
    if v == "type":
        expected = limit if isinstance(limit, list) else [limit]
        return [(field, msg("type", field=f, expected=[Term(str(t)) for t in expected]))]
    return [(field, msg("invalid_value", field=f, detail=error.message))]


NOT_FUTURE = "x-not-future"      # on a date or date-time field: it may not be later than now
FUTURE = "x-future"              # on a date-time field: it must be later than now (a promised time)


def _future_values(schema: dict, data: dict, now) -> list[tuple[str, Message]]:
    """Dates and moments marked `x-not-future` that lie after `now` (a receipt typed a day
    ahead), and moments marked `x-future` that do not (a promised time already past)."""
    from .clock import SHANGHAI, local_minute
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        value = data.get(name)
        if not (isinstance(prop, dict) and (prop.get(NOT_FUTURE) or prop.get(FUTURE)) and isinstance(value, str)):
            continue
        try:
            if prop.get("format") == "date":
                from datetime import date
                late, shown = date.fromisoformat(value) > now.astimezone(SHANGHAI).date(), value
            else:
                moment = ensure_aware(parse_instant(value))
                late, shown = moment > now, local_minute(moment)
        except ValueError:
            continue                     # the format check names it
        if prop.get(NOT_FUTURE) and late:
            out.append((name, msg("not_future", field=Field(prop.get("title", name)), value=shown,
                                  now=local_minute(now))))
        elif prop.get(FUTURE) and not late:
            out.append((name, msg("must_be_future", field=Field(prop.get("title", name)), value=shown,
                                  now=local_minute(now))))
    return out


ORG_PERSON = "x-org-person"      # on a string field: a person id of the organisation file (org.py)


def _org_people(schema: dict, data: dict, org) -> list[tuple[str, Message]]:
    """Fields marked `x-org-person` whose value is no person of the organisation file."""
    marked = [(name, prop) for name, prop in (schema.get("properties") or {}).items()
              if isinstance(prop, dict) and prop.get(ORG_PERSON) is True and isinstance(data.get(name), str)
              and data[name] != ""]
    people = org().people if marked else {}
    return [(name, msg("not_org_person", field=Field(prop.get("title", name)), value=data[name]))
            for name, prop in marked if data[name] not in people]


_validators: dict[int, tuple[dict, Draft202012Validator]] = {}


def _validator(schema: dict) -> Draft202012Validator:
    """The form's validator, made once per form (a deployed version's forms never change)."""
    hit = _validators.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    if len(_validators) >= 512:         # forms of many versions: forget the oldest
        del _validators[next(iter(_validators))]
    validator = Draft202012Validator(schema, format_checker=_checker)
    _validators[id(schema)] = (schema, validator)
    return validator


def validate_submission(schema: dict | None, data, form_name: str = "", now=None, org=None) -> dict:
    """Check `data` against the form; return it normalised or raise InvalidInput with field errors.
    `now` (the action's moment) checks the fields marked `x-not-future`; `org` (a function giving
    the organisation, engine/org.py, called only when the form needs it) those marked `x-org-person`."""
    if not isinstance(data, dict):
        raise InvalidInput(msg("not_an_object"))
    if schema is None:
        return dict(data)
    validator = _validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: ([str(x) for x in e.absolute_path], e.validator or ""))
    found = [pair for err in errors for pair in _messages(schema, err)]
    if now is not None:
        found += _future_values(schema, data, now)
    if org is not None:
        found += _org_people(schema, data, org)
    # the case's priority: 1, 2 or 3 (engine/priority.py), unless the form's own rule said so already
    found += [p for p in priority_problems(schema, data) if p[0] not in {name for name, _ in found}]
    if found:
        field_errors: dict[str, list[Message]] = {}
        for field, message in found:
            shown = field_errors.setdefault(field or "_form", [])
            if message not in shown:
                shown.append(message)
        lines = [m for msgs in field_errors.values() for m in msgs]
        raise InvalidInput(msg("form_invalid", form=form_name or schema.get("title", ""), errors=lines), field_errors)
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
