"""Task forms as HTML (src/web/formgen.py, templates/_form.html): every form file of every
procedure renders, and a filled-in form reads back to the data it was made from."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader
from werkzeug.datastructures import MultiDict

from complaintflow.engine.errors import InvalidInput
from complaintflow.engine.forms import validate_submission
from complaintflow.web.formgen import KINDS, conditions, explain, fields, parse, to_form_values

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "src" / "web" / "templates"
FORM_FILES = sorted((ROOT / "processes" / "forms").rglob("*.json")) + sorted(
    (ROOT / "tests" / "fixtures").glob("*/forms/**/*.json"))
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
PAGE = ENV.from_string('{% from "_form.html" import render_fields %}'
                       '<form method="post">{{ render_fields(fields, values, errors) }}</form>')


def render(schema, values=None, errors=None):
    return PAGE.render(fields=fields(schema, values), values=values, errors=errors)


class Controls(HTMLParser):
    """Collects the form controls and the text of each element with an id."""

    def __init__(self, html):
        super().__init__()
        self.controls, self.ids, self.text, self._open = [], set(), {}, []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag in ("input", "select", "textarea"):
            self.controls.append((tag, a))
        if tag in ("p", "textarea", "label"):
            self._open.append([a.get("id") or ("label:" + a["for"] if "for" in a else None), ""])

    def handle_data(self, data):
        for entry in self._open:
            entry[1] += data

    def handle_endtag(self, tag):
        if tag in ("p", "textarea", "label") and self._open:
            key, text = self._open.pop()
            if key:
                self.text[key] = text

    def names(self):
        return {a.get("name") for _, a in self.controls}

    def control(self, name):
        return [(t, a) for t, a in self.controls if a.get("name") == name]


def choice_values(prop):
    if isinstance(prop.get("enum"), list):
        return list(prop["enum"])
    for key in ("oneOf", "anyOf"):
        if isinstance(prop.get(key), list):
            return [v for alt in prop[key] for v in ([alt["const"]] if "const" in alt else choice_values(alt))]
    return [prop["const"]] if "const" in prop else []


def sample(prop, index=0):
    """A valid value for one property, built from its schema alone (its `examples` first)."""
    if prop.get("examples"):
        return prop["examples"][0]
    kind = prop.get("type")
    if kind == "boolean":
        return prop.get("const", True)
    if choice_values(prop):
        return choice_values(prop)[0]
    if kind == "array":
        items = prop.get("items") or {}
        count = max(1, prop.get("minItems", 1))
        if choice_values(items):
            return choice_values(items)[:count]
        if items.get("type") == "object" and not items.get("properties"):
            return [{"part": i + 1} for i in range(count)]
        return [sample(items, i) for i in range(count)]
    if kind == "object":
        return {n: sample(p) for n, p in (prop.get("properties") or {}).items()}
    if kind in ("integer", "number"):
        low = prop.get("minimum", prop.get("exclusiveMinimum", 0) + 1)
        value = low + index if kind == "integer" else low + 0.5 + index
        return min(value, prop.get("maximum", value))
    if prop.get("format") == "date-time":
        return f"2026-05-0{6 + index}T09:30:00+08:00"
    if prop.get("format") == "date":
        return f"2026-05-0{6 + index}"
    text = f"测试内容{index}行\n第二行" if (prop.get("maxLength") or 999) > 120 else f"测试{index}"
    text = text.ljust(prop.get("minLength", 0), "字")
    return text[: prop.get("maxLength", len(text))]


def sample_data(schema):
    return {n: sample(p) for n, p in schema["properties"].items() if not p.get("readOnly")}


def as_form(values: dict) -> MultiDict:
    pairs = []
    for key, value in values.items():
        pairs += [(key, v) for v in value] if isinstance(value, list) else [(key, value)]
    return MultiDict(pairs)


def expected_names(f):
    if f.kind != "rows":
        return {f.name}
    return {f"{f.name}.{i}" + (f".{c.name}" if c.name else "") for i in range(f.rows) for c in f.columns}


# --- every form file ------------------------------------------------------------------------

@pytest.fixture(params=FORM_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def schema(request):
    return json.loads(request.param.read_text(encoding="utf-8"))


def test_fields_cover_every_property_in_order(schema):
    got = fields(schema)
    assert [f.name for f in got] == list(schema["properties"])
    for f in got:
        prop = schema["properties"][f.name]
        assert f.kind in KINDS and f.title == prop.get("title", f.name)
        assert f.required == (f.name in schema.get("required", []))
        if f.kind in ("select", "radio", "checkboxes"):
            assert f.choices
        if f.kind == "rows":
            assert f.columns and f.rows >= max(3, prop.get("minItems", 0)) or f.rows == prop.get("maxItems")


def test_every_field_renders_with_its_inputs(schema):
    page = Controls(render(schema))
    for f in fields(schema):
        assert expected_names(f) <= page.names(), f.name
        assert f"f-{f.name}" in page.ids and f"e-{f.name}" in page.ids
        assert page.text[f"label:f-{f.name}"].startswith(f.title)


def test_round_trip_and_server_validation(schema):
    data = sample_data(schema)
    values = to_form_values(schema, data)
    parsed, errors = parse(schema, as_form(values))
    assert errors == {}
    assert parsed == data
    # the same values shown again: every control that has one carries it
    page = Controls(render(schema, values))
    for name, value in values.items():
        shown = page.control(name)
        assert shown, name
        if isinstance(value, str) and shown[0][0] == "input" and shown[0][1].get("type") not in ("radio", "checkbox"):
            assert shown[0][1]["value"] == value
    try:
        assert validate_submission(schema, parsed, "sample") is not None
    except InvalidInput as err:
        if "allOf" not in schema:   # conditional requirements may refuse a naive sample
            raise AssertionError(err.field_errors)


# --- targeted -------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "received_at": {"type": "string", "title": "收到时间", "format": "date-time"},
        "due": {"type": "string", "title": "日期", "format": "date"},
        "count": {"type": "integer", "title": "人数", "minimum": 1, "maximum": 9},
        "amount": {"type": "number", "title": "金额", "exclusiveMinimum": 0},
        "name": {"type": "string", "title": "姓名", "maxLength": 50, "minLength": 1},
        "note": {"type": "string", "title": "备注", "description": "可不填"},
        "short_note": {"type": "string", "title": "摘要", "maxLength": 500, "x-widget": "text"},
        "essay": {"type": "string", "title": "意见", "maxLength": 20, "x-widget": "textarea"},
        "kind": {"type": "string", "title": "类别", "oneOf": [{"const": "a", "title": "甲"}, {"const": "b", "title": "乙"}]},
        "level": {"type": "string", "title": "级别", "enum": ["一", "二", "三", "四", "五"]},
        "agreed": {"type": "boolean", "title": "同意"},
        "urgent": {"type": "boolean", "title": "紧急"},
        "signed": {"type": "boolean", "title": "已签字", "const": True},
        "tags": {"type": "array", "title": "标签", "items": {"enum": ["x", "y", "z"]}},
        "case_number": {"type": "string", "title": "编号", "maxLength": 30, "readOnly": True},
        "channel": {"type": "string", "title": "渠道", "maxLength": 20, "default": "热线"},
        "parts": {"type": "array", "title": "拆分", "minItems": 2, "items": {
            "type": "object", "required": ["content"],
            "properties": {"content": {"type": "string", "title": "内容", "maxLength": 100},
                           "weight": {"type": "integer", "title": "份数"}}}},
        "evidence": {"type": "array", "title": "证据", "maxItems": 3, "items": {"type": "string", "maxLength": 80}},
    },
    "required": ["name", "agreed", "kind", "level"],
    "additionalProperties": False,
}


def kinds():
    return {f.name: f for f in fields(SCHEMA)}


def test_control_rules():
    f = kinds()
    assert {n: x.kind for n, x in f.items()} == {
        "received_at": "datetime", "due": "date", "count": "integer", "amount": "number", "name": "text",
        "note": "textarea", "short_note": "text", "essay": "textarea", "kind": "radio", "level": "select",
        "agreed": "radio", "urgent": "checkbox", "signed": "checkbox", "tags": "checkboxes",
        "case_number": "text", "channel": "text", "parts": "rows", "evidence": "rows"}
    assert f["agreed"].choices == [("true", "是"), ("false", "否")]
    assert f["kind"].choices == [("a", "甲"), ("b", "乙")] and f["level"].choices[0] == ("一", "一")
    assert f["count"].attrs == {"min": 1, "max": 9, "step": 1}
    assert f["amount"].attrs == {"step": "any"}
    assert f["name"].attrs == {"minlength": 1, "data-maxlength": 50}      # counted, never cut by the browser
    assert f["case_number"].attrs["readonly"] is True
    assert [c.name for c in f["parts"].columns] == ["content", "weight"] and f["parts"].columns[0].required
    assert f["parts"].rows == 3 and f["evidence"].rows == 3 and f["evidence"].columns[0].name == ""
    four = fields(SCHEMA, {"parts": [{"content": str(i)} for i in range(4)], "evidence": ["a", "b", "c"]})
    assert four[-2].rows == 5 and four[-1].rows == 3      # evidence stops at maxItems


def test_datetime_with_and_without_seconds_is_shanghai_time():
    data, errors = parse(SCHEMA, MultiDict({"received_at": "2026-05-06T09:00"}))
    assert errors == {} and data == {"received_at": "2026-05-06T09:00:00+08:00", "urgent": False}
    data, _ = parse(SCHEMA, MultiDict({"received_at": "2026-05-06T09:00:30"}))
    assert data["received_at"] == "2026-05-06T09:00:30+08:00"
    data, _ = parse(SCHEMA, MultiDict({"received_at": "2026-05-06T01:00:00Z"}))
    assert data["received_at"] == "2026-05-06T09:00:00+08:00"
    assert to_form_values(SCHEMA, {"received_at": "2026-05-06T01:00:00+00:00"})["received_at"] == "2026-05-06T09:00"
    shown = to_form_values(SCHEMA, {"received_at": "2026-05-06T09:00:30+08:00"})
    assert shown["received_at"] == "2026-05-06T09:00:30"
    assert fields(SCHEMA, shown)[0].attrs == {"step": 1}       # seconds would fail the browser's step check
    _, errors = parse(SCHEMA, MultiDict({"received_at": "明天上午", "due": "2026-02-30"}))
    assert errors == {"received_at": ["请输入有效的日期时间，如 2026-05-06 09:00"], "due": ["请输入有效的日期，如 2026-05-06"]}


def test_unparsable_numbers_are_chinese_errors_not_exceptions():
    data, errors = parse(SCHEMA, MultiDict({"count": "三", "amount": "12元", "name": "张三"}))
    assert errors == {"count": ["请输入整数"], "amount": ["请输入数字"]}
    assert "count" not in data and "amount" not in data and data["name"] == "张三"
    data, errors = parse(SCHEMA, MultiDict({"count": " 3 ", "amount": "12.5"}))
    assert errors == {} and data["count"] == 3 and data["amount"] == 12.5
    _, errors = parse(SCHEMA, MultiDict({"count": "2.5", "amount": "nan", "kind": "c", "agreed": "maybe"}))
    assert errors == {"count": ["请输入整数"], "amount": ["请输入数字"], "kind": ["请从选项中选择"], "agreed": ["请选择“是”或“否”"]}


def test_empty_optional_inputs_are_omitted_and_booleans_typed():
    form = MultiDict({"note": "  ", "count": "", "due": "", "kind": "", "name": "张三", "agreed": "false",
                      "parts.0.content": "", "parts.0.weight": "", "evidence.0": ""})
    data, errors = parse(SCHEMA, form)
    assert errors == {}
    assert data == {"name": "张三", "agreed": False, "urgent": False}     # unchecked optional box: false
    data, _ = parse(SCHEMA, MultiDict({"agreed": "true", "urgent": "true", "signed": "true"}))
    assert data == {"agreed": True, "urgent": True, "signed": True}
    data, _ = parse(SCHEMA, MultiDict({"note": "第一行\r\n第二行"}))
    assert data["note"] == "第一行\n第二行"


def test_rows_blank_ones_dropped_values_typed():
    form = MultiDict({"parts.0.content": "退款", "parts.0.weight": "2", "parts.1.content": "", "parts.1.weight": "",
                      "parts.2.content": "道歉", "parts.2.weight": "", "parts.7.content": "补偿",
                      "evidence.0": "发票", "evidence.1": " ", "evidence.2": "照片"})
    data, errors = parse(SCHEMA, form)
    assert errors == {}
    assert data["parts"] == [{"content": "退款", "weight": 2}, {"content": "道歉"}, {"content": "补偿"}]
    assert data["evidence"] == ["发票", "照片"]
    _, errors = parse(SCHEMA, MultiDict({"parts.0.content": "", "parts.0.weight": "x", "parts.1.weight": "1"}))
    assert errors == {"parts": ["第1行「内容」必填", "第1行「份数」：请输入整数", "第2行「内容」必填"]}


def test_checkbox_groups_read_as_lists():
    data, _ = parse(SCHEMA, MultiDict([("tags", "x"), ("tags", "z")]))
    assert data["tags"] == ["x", "z"]
    data, _ = parse(SCHEMA, MultiDict())
    assert "tags" not in data
    _, errors = parse(SCHEMA, MultiDict([("tags", "x"), ("tags", "w")]))
    assert errors == {"tags": ["请从选项中选择"]}
    page = Controls(render(SCHEMA, to_form_values(SCHEMA, {"tags": ["z"]})))
    assert [("checked" in a) for _, a in page.control("tags")] == [False, False, True]


def test_grouped_checkboxes():
    schema = {"type": "object", "properties": {"grounds": {"type": "array", "title": "情形", "items": {"anyOf": [
        {"title": "第十六条", "oneOf": [{"const": "16-1", "title": "（一）"}, {"const": "16-2", "title": "（二）"}]},
        {"title": "第十三条", "oneOf": [{"const": "13-1", "title": "（一）"}]}]}}}}
    [f] = fields(schema)
    assert f.kind == "checkboxes" and [v for v, _ in f.choices] == ["16-1", "16-2", "13-1"]
    assert [title for title, _ in f.groups] == ["第十六条", "第十三条"]
    assert "<legend>第十三条</legend>" in render(schema)
    assert parse(schema, MultiDict([("grounds", "13-1")]))[0] == {"grounds": ["13-1"]}


def test_read_only_fields_are_shown_but_not_submitted():
    values = to_form_values(SCHEMA, {"case_number": "KH-2026-000001"})
    page = Controls(render(SCHEMA, values))
    [(_, attrs)] = page.control("case_number")
    assert attrs["value"] == "KH-2026-000001" and "readonly" in attrs
    data, _ = parse(SCHEMA, MultiDict({"case_number": "FORGED"}))
    assert "case_number" not in data


def test_defaults_fill_the_first_display_only():
    assert to_form_values(SCHEMA, {})["channel"] == "热线"
    assert to_form_values(SCHEMA, {"channel": "来访"})["channel"] == "来访"


def test_failed_submission_keeps_what_was_typed_and_shows_errors_beside_fields():
    form = MultiDict([("name", "<张三>"), ("count", "三个"), ("note", "\n第一行"), ("kind", "b"), ("level", "三"),
                      ("tags", "y"), ("urgent", "true"), ("parts.0.content", "退款"), ("parts.0.weight", "x"),
                      ("received_at", "2026-05-06T09:00")])
    data, errors = parse(SCHEMA, form)
    try:
        validate_submission(SCHEMA, data, "t")
    except InvalidInput as err:
        for name, messages in err.field_errors.items():
            errors.setdefault(name, []).extend(messages)
    assert set(errors) == {"count", "parts", "agreed"}
    errors["parts.0.weight"] = ["请输入整数"]          # a nested key lands in its table cell
    html = render(SCHEMA, form, errors)
    page = Controls(html)
    assert page.control("name")[0][1]["value"] == "<张三>" and "&lt;张三&gt;" in html
    assert page.control("count")[0][1]["value"] == "三个"
    assert page.text["f-note"] == "\n\n第一行"     # browsers drop the first newline after <textarea>
    assert page.control("received_at")[0][1]["value"] == "2026-05-06T09:00"
    assert [("checked" in a) for _, a in page.control("kind")] == [False, True]
    assert re.search(r'<option value="三" selected>', html)
    assert "checked" in page.control("tags")[1][1] and "checked" in page.control("urgent")[0][1]
    assert page.control("parts.0.content")[0][1]["value"] == "退款"
    assert page.text["e-count"] == "请输入整数"
    assert page.text["e-parts"] == "第1行「份数」：请输入整数"      # parse keys it by the top-level name
    assert page.text["e-parts.0.weight"] == "请输入整数"
    assert page.text["e-agreed"] and page.text["e-name"] == ""
    blocks = {re.search(r'<label for="f-([^"]+)"', b).group(1): b for b in html.split('<div class="field ')[1:]}
    for name in ("count", "parts", "agreed"):      # each error sits in its own field's block
        assert "field-error" in blocks[name].split(">")[0] and f'id="e-{name}"' in blocks[name]
        assert re.search(rf'aria-describedby="(h-{name} )?e-{name}"', blocks[name])
    assert '<div class="field field-text" data-field="name">\n  <label for="f-name">' in html


def test_other_shapes_fall_back_to_json_text():
    schema = {"type": "object", "properties": {"parts": {"type": "array", "title": "拆分", "items": {"type": "object"}}}}
    [f] = fields(schema)
    assert f.kind == "textarea" and "JSON" in f.description
    assert parse(schema, MultiDict({"parts": '[{"a": 1}]'})) == ({"parts": [{"a": 1}]}, {})
    assert parse(schema, MultiDict({"parts": "[{a: 1}"})) == ({}, {"parts": ["请填写有效的 JSON"]})


# --- control sizes, limits and conditional requirements (issue 12) ---------------------------

def shipped(path):
    return json.loads((ROOT / "processes" / "forms" / path).read_text(encoding="utf-8"))


def test_short_texts_are_single_line_inputs_sized_by_their_limit_and_phones_are_tel():
    intake = {f.name: f for f in fields(shipped("tourism/intake.json"))}
    assert (intake["contact"].kind, intake["contact"].size) == ("tel", "m")          # 联系电话, maxLength 200
    assert (intake["postcode"].kind, intake["postcode"].size) == ("text", "s")       # maxLength 20
    assert (intake["complainant"].kind, intake["complainant"].size) == ("text", "m")  # maxLength 100
    assert (intake["address"].kind, intake["address"].size) == ("text", "l")         # maxLength 500
    check = {f.name: f for f in fields(shipped("enterprise_customer/preliminary_check.json"))}
    assert check["department"].kind == "text" and check["notes"].kind == "textarea"  # 200 vs 2000
    page = Controls(render(shipped("tourism/intake.json")))
    [(tag, attrs)] = page.control("contact")
    assert tag == "input" and attrs["type"] == "tel" and attrs["class"] == "w-m"
    assert parse(shipped("tourism/intake.json"), MultiDict({"contact": "138 0000 0000"}))[0]["contact"] == "138 0000 0000"


def test_a_limit_is_counted_not_cut():
    schema = shipped("market_regulator/intake.json")
    html = render(schema, MultiDict({"content": "字" * 4100}))
    page = Controls(html)
    [(_, attrs)] = page.control("content")
    assert "maxlength" not in attrs and attrs["data-maxlength"] == "4000"
    assert page.text["c-content"] == "4100 / 4000" and 'class="counter over"' in html
    data, errors = parse(schema, MultiDict({"content": "字" * 4100}))
    assert errors == {} and len(data["content"]) == 4100        # read back whole; the schema refuses it
    with pytest.raises(InvalidInput) as refused:
        validate_submission(schema, dict(data, request_type="inquiry", channel="phone", requester_name="王",
                                         contact="1"), "t")
    assert set(refused.value.field_errors) == {"content"}


def test_conditional_requirements_in_words_and_for_the_script():
    when = conditions(shipped("tourism/intake.json"))
    assert [c.words for c in when["address"]] == ["「投诉形式」选择「书面投诉（一式两份，第十一条）」"]
    assert when["address"][0].test == [[{"field": "complaint_form", "op": "in", "values": ["written"], "absent": False}]]
    assert [c.words for c in when["same_cause"]] == ["「投诉人数」不少于 4"]
    market = conditions(shipped("market_regulator/intake.json"))
    assert [c.words for c in market["complaint_request"]] == ["「类别」选择「投诉」，或「涉及的类别（分别处理）」包括「投诉」"]
    assert [c.words for c in market["contact"]] == ["未勾选「举报人要求匿名」"]          # an else branch
    assert market["contact"][0].test == [[{"field": "anonymous", "op": "not_in", "values": ["true"], "absent": True}]]
    assert [c.words for c in market["forwarded_by"]] == ["勾选「上级交办」，或「受理渠道」选择「相关部门移交」"]
    # each condition holds exactly when JSON Schema says the field is required
    assert market["contact"][0].holds({"anonymous": False}) and not market["contact"][0].holds({"anonymous": True})
    assert market["address"][0].holds({"mixed_types": ["report", "complaint"]})
    assert not market["address"][0].holds({"request_type": "inquiry"})


def test_a_conditional_field_is_starred_with_its_condition_without_script():
    schema = shipped("tourism/intake.json")
    html = render(schema)
    block = html.split('data-field="address"')[1].split('<div class="field ')[0]
    assert '<span class="req req-when"' in block and "*" in block
    assert "「投诉形式」选择「书面投诉（一式两份，第十一条）」时必填" in Controls(html).text["w-address"]
    assert 'data-required-when="[[{&#34;field&#34;: &#34;complaint_form&#34;' in block


def test_the_servers_required_error_says_why():
    schema = shipped("tourism/intake.json")
    data = {"complaint_form": "written", "complainant": "王"}
    with pytest.raises(InvalidInput) as refused:
        validate_submission(schema, data, "t")
    explained = explain(schema, data, refused.value.field_errors)
    assert explained["address"] == ["「投诉形式」选择「书面投诉（一式两份，第十一条）」时必填"]
    assert explained["postcode"] == ["「投诉形式」选择「书面投诉（一式两份，第十一条）」时必填"]
    for name, messages in refused.value.field_errors.items():        # other errors are left as they were
        if name not in conditions(schema):
            assert explained[name] == messages
