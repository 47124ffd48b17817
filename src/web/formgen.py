"""Task forms as HTML: a form's JSON Schema -> fields to render; a submitted form -> typed JSON.

`fields(schema, values)` gives one `Field` per property, in order, for the `render_fields`
macro of `templates/_form.html`; `parse(schema, request.form)` gives (typed data, Chinese
error messages per field) and never raises for bad input; `to_form_values(schema, data)` gives
the strings the controls show. `engine.forms.validate_submission` still decides validity
(required, `allOf`/`if`/`then`, ranges): the HTML carries min/max/minlength/maxlength as
hints but no `required`, and empty inputs are left out of the data, never sent as "".

Controls (`Field.kind`), in this order of precedence:

* boolean: required -> `radio` 是/否 ("true"/"false"); optional -> one `checkbox` whose
  unchecked state submits false (so "no" can be answered even when an `if`/`then` makes the
  field required); with a `const` (a confirmation, e.g. 已签字) -> one `checkbox` whose
  unchecked state submits nothing;
* array: of choices -> `checkboxes` (grouped under headings, `Field.groups`, when the items
  are an `anyOf` of titled `oneOf`s); of objects with `properties` -> `rows`, a table with
  one column per item property and inputs NAME.INDEX.COLUMN; of strings/numbers -> `rows`
  with one column named "" and inputs NAME.INDEX; blank rows are dropped;
* choices (`oneOf`/`anyOf` of `const`s, `enum`, a lone `const`): `radio` when required with
  at most 4 choices, else `select` (first option empty, "请选择");
* integer / number -> `integer` / `number`;
* string: format date-time -> `datetime` (datetime-local, Asia/Shanghai wall time, parsed to
  ISO 8601 with +08:00); format date -> `date`; `"x-widget": "textarea"`, `"text"` or `"tel"`
  wins; otherwise `textarea` when `maxLength` > 500 or there is no `maxLength` (the shipped
  forms allow 20-500 characters for names, units, phones and addresses, 1,000 and more for
  prose), `tel` for a phone (电话/手机 in the title, phone/mobile/tel in the name), else
  `text`; `Field.size` ("s", "m", "l") sets a single-line input's width from its `maxLength`;
* anything else (nested objects, arrays of bare objects) -> `textarea` holding JSON.

A text's `maxLength` becomes `data-maxlength` (never HTML's `maxlength`, which silently cuts
pasted text): the page's script (static/form.js) counts and refuses to submit beyond it, the
server refuses it again. A field that an `if`/`then` (or `else`) of the form requires gets
`Field.conditions` (`Condition`: the condition in words from field titles and choice labels,
and the test the script runs to star it as the condition becomes true); `explain` turns the
server's "required" error for such a field into "「投诉形式」选择「书面投诉」时必填".

`readOnly` fields are shown (readonly/disabled) and never read back. `to_form_values` fills
in `default`s: use it for the first display; after a failed submission pass `request.form`
itself as the values, so nothing typed is lost. `parse` keys errors by top-level name, as
`validate_submission` does; a table cell's problem names row and column ("第2行「金额」：
请输入数字"). The macro also shows errors keyed `parts.1.content` or `parts/1/content` in
that cell.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date

from jsonschema import Draft202012Validator

from ..engine.clock import SHANGHAI, parse_instant
# one reader of choices (oneOf/anyOf/enum/const) for the web forms and the engine's readable history
from ..engine.forms import choice_options as _options, choice_titles  # noqa: F401  (choice_titles re-exported)

KINDS = ("text", "tel", "textarea", "select", "radio", "checkbox", "checkboxes",
         "integer", "number", "datetime", "date", "rows")
YES_NO = [("true", "是"), ("false", "否")]
LONG_TEXT = 500          # a string allowing more characters than this gets a textarea
PHONE = re.compile(r"phone|mobile|(^|_)tel(_|$)|电话|手机", re.IGNORECASE)   # a phone field: <input type=tel>
SIZES = ((20, "s"), (100, "m"))   # maxLength up to 20: a short input; up to 100: medium; else full width
RADIO_MAX = 4            # a required choice with at most this many options gets radio buttons
_MISSING = object()


@dataclass
class Field:
    name: str            # property name; for a table column the item property ("" for scalar items)
    title: str
    kind: str            # one of KINDS
    required: bool = False
    description: str | None = None
    choices: list[tuple[str, str]] = field(default_factory=list)    # (value, title)
    columns: list["Field"] = field(default_factory=list)            # kind == "rows"
    rows: int = 0                                                   # kind == "rows"
    attrs: dict = field(default_factory=dict)                       # min max minlength maxlength step readonly
    groups: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)  # headed checkboxes
    size: str = "l"                                                 # a single-line input's width: s m l
    blank: str | None = None        # what an untouched control means ("false": an optional yes/no box)
    conditions: list["Condition"] = field(default_factory=list)     # required when one of these holds

    @property
    def maxlength(self):
        return self.attrs.get("data-maxlength")

    @property
    def when(self) -> str:
        """The conditions in words ("…时必填"), "" when there are none."""
        return "；".join(f"{c.words}时必填" for c in self.conditions)

    @property
    def when_test(self) -> str:
        """JSON for the page's script: the conditions as alternatives of clauses; "" when one
        of them is beyond what the script reads (the star then stays, with the words)."""
        tests = [c.test for c in self.conditions]
        if not tests or any(t is None for t in tests):
            return ""
        return json.dumps([alt for t in tests for alt in t], ensure_ascii=False)


@dataclass
class Condition:
    """A condition under which a form requires a field: the `if` (negated for an `else`)."""
    schema: dict                 # the `if` subschema
    negated: bool                # required by the `else`
    words: str                   # 「投诉形式」选择「书面投诉」
    test: list | None            # [[{"field", "op", "values", "absent"}]]: alternatives of clauses, or None

    def holds(self, data: dict) -> bool:
        return Draft202012Validator(self.schema).is_valid(data) != self.negated


class _Bad(Exception):
    """Bad user input; `args` are the messages."""


def _s(value) -> str:
    """A choice or value as the string a control carries."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _is_phone(name: str, prop: dict) -> bool:
    return bool(PHONE.search(name or "") or PHONE.search(str(prop.get("title") or "")))


def _kind(prop: dict, required: bool, nested: bool = False, name: str = "") -> str:
    """The control for a property: one of KINDS, or "json" (a textarea holding JSON)."""
    t = prop.get("type")
    if t == "boolean":
        return "radio" if required and "const" not in prop else "checkbox"
    if t == "array":
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        if _options(items):
            return "checkboxes"
        if nested:
            return "json"
        if items.get("type") == "object" and items.get("properties"):
            return "rows"
        return "rows" if items.get("type") in ("string", "integer", "number") else "json"
    opts = _options(prop)
    if opts:
        return "radio" if required and sum(len(g) for _, g in opts) <= RADIO_MAX else "select"
    if t in ("integer", "number"):
        return t
    if t in ("string", None) and (t or not prop.get("properties")):
        fmt, widget = prop.get("format"), prop.get("x-widget")
        if fmt in ("date-time", "date"):
            return {"date-time": "datetime", "date": "date"}[fmt]
        if widget in ("textarea", "text", "tel"):
            return widget
        limit = prop.get("maxLength")
        if limit is None or limit > LONG_TEXT:
            return "textarea"
        return "tel" if _is_phone(name, prop) else "text"
    return "json"


def _attrs(prop: dict, kind: str) -> dict:
    attrs: dict = {}
    if kind in ("integer", "number"):
        for bound, key, exclusive, nudge in (("min", "minimum", "exclusiveMinimum", 1),
                                             ("max", "maximum", "exclusiveMaximum", -1)):
            if key in prop:
                attrs[bound] = prop[key]
            elif exclusive in prop and kind == "integer":
                attrs[bound] = (math.floor if nudge > 0 else math.ceil)(prop[exclusive]) + nudge
        attrs["step"] = 1 if kind == "integer" else "any"
    if kind in ("text", "tel", "textarea"):
        if "minLength" in prop:
            attrs["minlength"] = prop["minLength"]
        if "maxLength" in prop:              # counted by static/form.js, never cut by the browser
            attrs["data-maxlength"] = prop["maxLength"]
    if prop.get("readOnly"):
        attrs["readonly"] = True
    return attrs


def _row_indexes(name: str, values) -> list[int]:
    """Indexes of the rows present as NAME.INDEX[.COLUMN] keys."""
    pattern = re.compile(re.escape(name) + r"\.(\d+)(?:\.|$)")
    keys = values.keys() if hasattr(values, "keys") else []
    return sorted({int(m.group(1)) for k in keys if (m := pattern.match(str(k)))})


def _field(name: str, prop: dict, required: bool, values, nested: bool = False) -> Field:
    kind = _kind(prop, required, nested, name)
    f = Field(name=name, title=prop.get("title") or name, kind="textarea" if kind == "json" else kind,
              required=required, description=prop.get("description"), attrs=_attrs(prop, kind))
    if kind == "json":
        f.description = ((f.description or "") + " 以 JSON 格式填写。").strip()
    elif kind in ("radio", "checkbox") and prop.get("type") == "boolean":
        f.choices = list(YES_NO) if kind == "radio" else []
    elif kind in ("radio", "select", "checkboxes"):
        opts = _options(prop["items"] if kind == "checkboxes" else prop)
        f.choices = [(_s(v), t) for _, group in opts for v, t in group]
        if kind == "checkboxes" and any(title for title, _ in opts):
            f.groups = [(title, [(_s(v), t) for v, t in group]) for title, group in opts]
    elif kind == "rows":
        items = prop["items"]
        if items.get("type") == "object":
            wanted = set(items.get("required") or [])
            f.columns = [_field(c, p, c in wanted, {}, nested=True) for c, p in items["properties"].items()]
        else:
            column = _field("", items, False, {}, nested=True)
            column.title = items.get("title") or f.title
            f.columns = [column]
        current = values.get(name) if hasattr(values, "get") else None
        count = len(current) if isinstance(current, list) else len(_row_indexes(name, values))
        f.rows = max(3, prop.get("minItems", 0), count + 1)
        if prop.get("maxItems"):
            f.rows = max(min(f.rows, prop["maxItems"]), count)
    if kind in ("text", "tel"):
        limit = prop.get("maxLength")
        f.size = "m" if kind == "tel" else next((size for most, size in SIZES if limit is not None and limit <= most), "l")
    if kind == "checkbox" and "const" not in prop:
        f.blank = "false"
    if kind == "datetime" and re.search(r"T\d\d:\d\d:\d\d", str(values.get(name) or "") if values else ""):
        f.attrs["step"] = 1          # a value with seconds must not fail the browser's step check
    return f


def fields(schema: dict, values: dict | None = None) -> list[Field]:
    """One Field per property of the form, in the schema's order."""
    values = values if values is not None else {}
    wanted = set(schema.get("required") or [])
    out = [_field(n, p, n in wanted, values) for n, p in (schema.get("properties") or {}).items()]
    when = conditions(schema)
    for f in out:
        if not f.required:
            f.conditions = when.get(f.name, [])
    return out


# --- conditional requirements (if/then/else) -------------------------------------------------

def conditions(schema: dict) -> dict[str, list[Condition]]:
    """Field -> the conditions under which the form requires it: each `if` (top level or in
    `allOf`) whose `then` lists the field in `required`, and the negated `if` for an `else`."""
    props = schema.get("properties") or {}
    out: dict[str, list[Condition]] = {}
    for part in [schema] + [p for p in schema.get("allOf") or [] if isinstance(p, dict)]:
        test = part.get("if")
        if not isinstance(test, dict):
            continue
        for branch, negated in (("then", False), ("else", True)):
            needs = (part.get(branch) or {}).get("required") if isinstance(part.get(branch), dict) else None
            if not needs:
                continue
            alternatives = _alternatives(test)
            if negated and alternatives is not None:
                alternatives = _negate(alternatives)
            cond = Condition(test, negated, _words(test, negated, alternatives, props), alternatives)
            for name in needs:
                out.setdefault(name, []).append(cond)
    return out


def _alternatives(test: dict) -> list[list[dict]] | None:
    """An `if` as alternatives of clauses ({"field", "op", "values", "absent"}: op is in,
    not_in, contains, min, filled or empty; `absent` is what an unanswered field gives), or
    None when it uses more of JSON Schema than this reads."""
    keys = set(test) - {"title", "description", "$comment"}
    if keys == {"anyOf"} and isinstance(test["anyOf"], list):
        parts = [_alternatives(t) if isinstance(t, dict) else None for t in test["anyOf"]]
        return None if any(p is None for p in parts) else [alt for p in parts for alt in p]
    if not keys or not keys <= {"properties", "required"}:
        return None
    required = test.get("required") or []
    clauses = []
    for name, sub in (test.get("properties") or {}).items():
        clause = _clause(name, sub, name in required)
        if clause is None:
            return None
        clauses.append(clause)
    clauses += [{"field": n, "op": "filled", "values": [], "absent": False}
                for n in required if n not in (test.get("properties") or {})]
    return [clauses]


def _clause(name: str, sub, present: bool) -> dict | None:
    if not isinstance(sub, dict) or len(sub) != 1:
        return None
    (key, value), = sub.items()
    if key == "const":
        op, values = "in", [_s(value)]
    elif key == "enum" and isinstance(value, list):
        op, values = "in", [_s(v) for v in value]
    elif key == "contains" and isinstance(value, dict) and set(value) == {"const"}:
        op, values = "contains", [_s(value["const"])]
    elif key == "minimum" and isinstance(value, (int, float)):
        op, values = "min", [value]
    else:
        return None
    return {"field": name, "op": op, "values": values, "absent": not present}


def _negate(alternatives: list[list[dict]]) -> list[list[dict]] | None:
    """The opposite of a single clause (the only `else` the shipped forms have); else None."""
    if len(alternatives) != 1 or len(alternatives[0]) != 1:
        return None
    c = alternatives[0][0]
    opposite = {"in": "not_in", "filled": "empty"}.get(c["op"])
    return [[dict(c, op=opposite, absent=not c["absent"])]] if opposite else None


def _words(test: dict, negated: bool, alternatives, props: dict) -> str:
    """The condition as staff read it, from the field titles and choice labels."""
    if alternatives is None:
        return "按已填内容（" + ("不" if negated else "") + "符合本表规定的情形）"
    return "，或".join("且".join(_clause_words(c, props) for c in alt) for alt in alternatives)


def _clause_words(c: dict, props: dict) -> str:
    prop = props.get(c["field"]) or {}
    title = f"「{prop.get('title') or c['field']}」"
    titles = {_s(v): t for v, t in choice_titles(prop).items()}
    labels = "或".join(f"「{titles.get(v, v)}」" for v in c["values"])
    box = prop.get("type") == "boolean" and c["values"] in (["true"], ["false"])
    if c["op"] in ("in", "not_in") and box:
        checked = (c["values"] == ["true"]) == (c["op"] == "in")
        return ("勾选" if checked else "未勾选") + title
    return {"in": f"{title}选择{labels}", "not_in": f"{title}未选择{labels}", "contains": f"{title}包括{labels}",
            "min": f"{title}不少于 {c['values'][0] if c['values'] else ''}", "filled": f"填写了{title}",
            "empty": f"未填写{title}"}[c["op"]]


def explain(schema: dict, data: dict, errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The server's errors with each missing, conditionally required field's message saying
    why: "「投诉形式」选择「书面投诉」时必填". A field absent from `data` can only be in error
    for being required, so its messages are replaced; every other error is kept as it is."""
    wanted = set(schema.get("required") or [])
    out = dict(errors)
    for name, conds in conditions(schema).items():
        if name in errors and name not in data and name not in wanted:
            why = [f"{c.words}时必填" for c in conds if c.holds(data)]
            if why:
                out[name] = why
    return out


# --- reading a submitted form -------------------------------------------------------------

def _getlist(form, key: str) -> list[str]:
    if hasattr(form, "getlist"):
        return [str(v) for v in form.getlist(key)]
    value = form.get(key)
    return [] if value is None else [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _number(text: str, kind: str):
    try:
        return int(text)
    except ValueError:
        if kind == "integer":
            raise
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


_PARSERS = {   # kind -> (stripped text -> value, message when it raises ValueError)
    "integer": (lambda t: _number(t, "integer"), "请输入整数"),
    "number": (lambda t: _number(t, "number"), "请输入数字"),
    "datetime": (lambda t: parse_instant(t).astimezone(SHANGHAI).isoformat(timespec="seconds"),
                 "请输入有效的日期时间，如 2026-05-06 09:00"),
    "date": (lambda t: date.fromisoformat(t).isoformat(), "请输入有效的日期，如 2026-05-06"),
    "json": (json.loads, "请填写有效的 JSON"),
}


def _convert(prop: dict, kind: str, raw: str):
    """One non-empty submitted string -> its typed value; raises _Bad with a Chinese message."""
    text = raw.strip()
    if kind in ("text", "tel", "textarea"):
        return raw.replace("\r\n", "\n")
    if kind in _PARSERS:
        reader, message = _PARSERS[kind]
        try:
            return reader(text)
        except ValueError:
            raise _Bad(message) from None
    if prop.get("type") == "boolean":            # radio 是/否
        if text in ("true", "false"):
            return text == "true"
        raise _Bad("请选择“是”或“否”")
    known = {_s(v): v for _, group in _options(prop) for v, _t in group}
    if text not in known:
        raise _Bad("请从选项中选择")
    return known[text]


def _read(key: str, prop: dict, kind: str, form):
    """The typed value submitted under `key`, or _MISSING when left empty."""
    raws = _getlist(form, key)
    if kind == "checkboxes":
        picked = [r for r in raws if r.strip()]
        return [_convert(prop["items"], "select", r) for r in picked] if picked else _MISSING
    if kind == "rows":
        return _read_rows(key, prop, form)
    if kind == "checkbox":
        checked = any(r.strip() and r.strip() not in ("false", "off") for r in raws)
        if "const" in prop:
            return prop["const"] if checked else _MISSING
        return checked
    raw = raws[0] if raws else ""
    return _convert(prop, kind, raw) if raw.strip() else _MISSING


def _read_rows(name: str, prop: dict, form):
    items = prop["items"]
    is_object = items.get("type") == "object"
    columns = items["properties"] if is_object else {"": items}
    wanted = set(items.get("required") or []) if is_object else set()
    rows, problems = [], []
    for i in _row_indexes(name, form):
        keys = {c: f"{name}.{i}.{c}" if c else f"{name}.{i}" for c in columns}
        if not any(r.strip() for k in keys.values() for r in _getlist(form, k)):
            continue                                         # a blank row
        row = {}
        for c, cprop in columns.items():
            where = f"第{i + 1}行" + (f"「{cprop.get('title') or c}」" if c else "")
            try:
                value = _read(keys[c], cprop, _kind(cprop, c in wanted, nested=True), form)
            except _Bad as bad:
                problems += [f"{where}：{m}" for m in bad.args]
                continue
            if value is not _MISSING:
                row[c] = value
            elif c in wanted:
                problems.append(f"{where}必填")
        rows.append(row if is_object else row.get(""))
    if problems:
        raise _Bad(*problems)
    return rows or _MISSING


def parse(schema: dict, form) -> tuple[dict, dict[str, list[str]]]:
    """Submitted form -> (typed data, {field: [messages]}). Empty inputs are left out."""
    data: dict = {}
    errors: dict[str, list[str]] = {}
    wanted = set(schema.get("required") or [])
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("readOnly"):
            continue
        try:
            value = _read(name, prop, _kind(prop, name in wanted), form)
        except _Bad as bad:
            errors.setdefault(name, []).extend(bad.args)
            continue
        if value is not _MISSING:
            data[name] = value
    return data, errors


# --- showing stored data -------------------------------------------------------------------

def _display(key: str, prop: dict, kind: str, value) -> dict:
    if kind == "checkboxes":
        return {key: [_s(v) for v in value] if isinstance(value, list) else [_s(value)]}
    if kind == "rows" and isinstance(value, list):
        items, out = prop["items"], {}
        for i, row in enumerate(value):
            if items.get("type") == "object" and isinstance(row, dict):
                wanted = set(items.get("required") or [])
                for c, v in row.items():
                    cprop = items["properties"].get(c)
                    if cprop is not None and v is not None:
                        out.update(_display(f"{key}.{i}.{c}", cprop, _kind(cprop, c in wanted, True), v))
            elif row is not None:
                out.update(_display(f"{key}.{i}", items, _kind(items, False, True), row))
        return out
    if kind in ("json", "rows"):
        return {key: json.dumps(value, ensure_ascii=False, indent=2)}
    if kind == "datetime" and isinstance(value, str):
        try:
            local = parse_instant(value).astimezone(SHANGHAI)
        except ValueError:
            return {key: value}
        return {key: local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")}
    return {key: _s(value)}


def to_form_values(schema: dict, data: dict) -> dict:
    """Typed data -> {input name: string (or list of strings for checkboxes)}; fills `default`s."""
    out: dict = {}
    data = data or {}
    wanted = set(schema.get("required") or [])
    for name, prop in (schema.get("properties") or {}).items():
        value = data[name] if name in data else prop.get("default")
        if value is not None:
            out.update(_display(name, prop, _kind(prop, name in wanted), value))
    return out
