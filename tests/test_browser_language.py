"""One language on the page: every page and every message a Chinese user meets, in headless
Chromium with locale zh-CN, is Chinese — form errors from JSON Schema, error pages (403, 404,
409, 413), conflicts, deadlines, names — and every time is Beijing time to the minute.

A page fails on any Latin-script word that is not on the allow-list below. The list is kept
tight and each entry says why a Chinese user would still see it:
  * case numbers (KH-2026-000001: the procedure's prefix, printed on every letter);
  * what the user typed themselves (TYPED; the test types Chinese, so it is empty unless a
    value is echoed back);
  * the product's name in the header (complaintflow), the language switch labelled in the
    language it switches to (English), file formats on download links (PDF, HTML, XLSX, CSV, Excel),
    and sizes (2 MB: Chinese writes the unit so too);
  * file names (docs/statistics.md, where a page points to the definitions it uses).
User names and file names are Chinese in the demo data, so they need no entry.

Also: every form error message of every JSON Schema keyword the shipped forms use, rendered in
Chinese from a real jsonschema error, with the limit stated and no Latin word.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from complaintflow.engine.errors import InvalidInput
from complaintflow.engine.forms import validate_submission
from conftest import PROCESSES
from test_browser import live, page, shot, sign_in, sign_out  # noqa: F401  (fixtures and helpers)

CASE_NUMBER = re.compile(r"^[A-Z]{2}-\d{4}-\d{6}$")
ALLOWED = {"complaintflow", "English", "PDF", "HTML", "XLSX", "CSV", "Excel", "MB", "KB"}
FILE_NAME = re.compile(r"[\w/.-]+\.(md|pdf|xlsx|csv|html)\b")
LATIN = re.compile(r"[A-Za-z][A-Za-z0-9_'.-]*")


def latin_words(text: str, typed=()) -> list[str]:
    words = []
    for word in LATIN.findall(FILE_NAME.sub(" ", text)):
        word = word.strip(".-'")
        if word and not CASE_NUMBER.match(word) and word not in ALLOWED and word not in typed:
            words.append(word)
    return words


def check(page, where: str, typed=()):
    """The page's visible text has no Latin word that is not allowed, and no UTC time."""
    text = page.inner_text("body")
    found = latin_words(text, typed)
    assert found == [], f"{where}: {found} in " + " | ".join(text[max(0, text.find(w) - 60):text.find(w) + 40]
                                                              for w in found[:3])
    assert not re.search(r"\d{2}:\d{2}:\d{2}|\+00:00|T\d{2}:\d{2}", text), f"{where}: a machine time in {text!r}"


def submit(page):
    page.click("form button.primary")
    page.wait_for_load_state("domcontentloaded")


def force(page, selector, value, type_="text"):
    """Put a value in a control as a hand-made request could, past the browser's own checks
    (the page's script counts characters, a datetime input takes only valid moments)."""
    page.evaluate("""([s, v, t]) => { const e = document.querySelector(s); e.removeAttribute('data-maxlength');
                     e.removeAttribute('maxlength'); if (e.tagName === 'INPUT') e.type = t; e.value = v; }""",
                  [selector, value, type_])


def test_every_page_and_message_a_chinese_user_meets_is_chinese(live, page):
    base, service = live
    page.goto(f"{base}/login")
    check(page, "login")
    page.fill("#login", "reception")
    page.fill("#password", "wrong")
    page.click("button[type=submit]")
    check(page, "wrong password")
    sign_in(page, base, "reception")
    check(page, "empty inbox")
    page.goto(f"{base}/new")
    check(page, "choose a procedure")

    # the intake form: required, maxLength, format — each message names the field and the limit
    page.goto(f"{base}/new/enterprise_customer")
    check(page, "intake")
    submit(page)
    errors = page.inner_text("main")
    assert "「投诉渠道」必填" in errors and "「投诉人」必填" in errors
    check(page, "intake, required")
    page.select_option("#f-channel", "hotline")
    page.fill("#f-complainant", "王女士")
    page.fill("#f-contact", "13800000000")
    page.select_option("#f-category", "product_quality")
    page.fill("#f-promised_resolution_at", "2026-05-08T17:00")
    force(page, "#f-content", "漏" * 4001)
    submit(page)
    assert "「投诉内容」最多 4000 字，现为 4001 字" in page.inner_text("main")
    check(page, "intake, maxLength")
    page.fill("#f-content", "新买的电水壶漏水")
    force(page, "#f-promised_resolution_at", "明天下午")
    submit(page)
    assert "承诺解决时间" in page.inner_text(".field-error")
    check(page, "intake, a date-time that is not one", typed={"明天下午"})
    force(page, "#f-promised_resolution_at", "2026-05-08T17:00", "datetime-local")
    submit(page)
    page.wait_for_selector("#registered")
    number = page.inner_text("#registered-number")
    check(page, "registered case")
    summary = page.inner_text("dl.summary")
    assert "企业客户投诉处理" in summary                            # the procedure by name, not its id

    # the reception's task: a required choice missing, then done
    page.goto(f"{base}/")
    assert "无期限" in page.locator("table.tasks tr", has_text=number).inner_text()
    check(page, "reception's inbox")
    page.click("a.task-link:has-text('初步核实')")
    page.check("input[name=outcome][value=accepted]")
    submit(page)
    assert "「投诉等级」必填" in page.inner_text("main")
    check(page, "task, required")
    page.check("input[name=severity][value=general]")
    page.fill("#f-department", "品质部")
    submit(page)
    page.wait_for_selector("text=任务已办结")
    sign_out(page)

    # the department: a claim shows who holds it by name; the task header reads the limit
    sign_in(page, base, "department")
    page.locator("table.tasks tr", has_text=number).locator("button:has-text('认领')").click()
    page.wait_for_selector("text=已认领")
    row = page.locator("table.tasks tr", has_text=number).inner_text()
    assert "部门" in row and "department" not in row
    assert "05月08日（周五）17:00" in row and "还剩 2 天 8 小时" in row
    check(page, "department's inbox with a claim")
    page.click("a.task-link:has-text('调查核实')")
    assert "05月08日（周五）17:00" in page.inner_text(".due-line")
    check(page, "task page")
    page.fill("#f-findings", "密封圈缺陷")
    page.check("input[name=responsible_party][value=company]")
    submit(page)
    page.wait_for_selector("text=任务已办结")

    # minimum: a negative amount
    page.click("a.task-link:has-text('协商解决方案')")
    task_url = page.url
    page.fill("#f-solution", "退货退款")
    page.select_option("#f-solution_type", "refund")
    page.fill("#f-amount", "-50")
    submit(page)
    assert "「金额（元）」不能小于 0，现为 -50" in page.inner_text("main")
    check(page, "task, minimum")

    # 409: a colleague completes the task while this page is open
    page.goto(task_url)
    task_id = task_url.rsplit("/", 1)[1]
    form = service.task_form(task_id)
    data = {k: v for k, v in {"solution_type": _first_choice(form, "solution_type"), "solution": "换新",
                              "customer_agreed": True}.items() if k in form["properties"]}
    service.complete_task(task_id, "department", data)
    page.fill("#f-solution", "退货退款")
    page.select_option("#f-solution_type", "refund")
    response = page.request.post(task_url, form={"csrf_token": page.input_value("input[name=csrf_token]")})
    assert response.status == 409
    submit(page)
    assert "未作任何更改" in page.inner_text("main")
    check(page, "409 conflict")

    # 404 and 403
    response = page.goto(f"{base}/tasks/doesnotexist")
    assert response.status == 404
    check(page, "404 task")
    response = page.goto(f"{base}/new/enterprise_customer")
    assert response.status == 403
    assert "客服接待" in page.inner_text("main")                   # which role registering needs, by name
    check(page, "403 register")
    response = page.goto(f"{base}/new/no_such_procedure")
    assert response.status == 404
    check(page, "404 procedure")

    # 413: a submission larger than the server takes
    page.goto(f"{base}/cases/{number}")
    check(page, "case page")
    deadlines = page.inner_text("table.deadlines")
    assert "承诺时限" in deadlines and "promised" not in deadlines and "000:" not in deadlines
    page.goto(task_url)
    page.goto(f"{base}/")
    page.evaluate("""() => { const f = document.createElement('form'); f.method = 'post'; f.action = '/tasks/x';
        const t = document.createElement('textarea'); t.name = 'big'; t.value = 'x'.repeat(3 * 1024 * 1024);
        f.appendChild(t); document.body.appendChild(f); f.submit(); }""")
    page.wait_for_selector("text=请求内容过大")
    check(page, "413")
    page.goto(f"{base}/")
    sign_out(page)

    # the reviewer: search, the case, its replay, the statistics
    sign_in(page, base, "reviewer")
    check(page, "review search")
    page.goto(f"{base}/cases/{number}")
    check(page, "case as the reviewer")
    page.click("#replay-link")
    page.wait_for_load_state("domcontentloaded")
    check(page, "replay")
    page.goto(f"{base}/stats")
    check(page, "statistics")


def _first_choice(schema, name):
    prop = (schema.get("properties") or {}).get(name) or {}
    alts = prop.get("oneOf") or []
    return alts[0]["const"] if alts else (prop.get("enum") or [None])[0]


# --- every JSON Schema keyword the shipped forms use, in Chinese ----------------------------

def shipped_keywords() -> set[str]:
    found = set()

    def walk(node):
        if isinstance(node, dict):
            found.update(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    for path in PROCESSES.glob("forms/*/*.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return found


SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "channel": {"type": "string", "title": "投诉渠道", "oneOf": [{"const": "hotline", "title": "热线电话"},
                                                                 {"const": "visit", "title": "来访"}]},
        "level": {"type": "string", "title": "等级", "enum": ["一般", "重大"]},
        "content": {"type": "string", "title": "投诉内容", "minLength": 1, "maxLength": 10},
        "reason": {"type": "string", "title": "理由", "minLength": 5},
        "amount": {"type": "number", "title": "金额（元）", "minimum": 0, "maximum": 100},
        "count": {"type": "integer", "title": "人数", "exclusiveMinimum": 0},
        "received_at": {"type": "string", "title": "接到时间", "format": "date-time",
                        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T"},
        "day": {"type": "string", "title": "日期", "format": "date"},
        "investigators": {"type": "array", "title": "调查核实人员（至少两人）", "minItems": 2, "maxItems": 3,
                          "uniqueItems": True, "items": {"type": "string", "minLength": 1}},
        "types": {"type": "array", "title": "诉求类型", "items": {"oneOf": [{"const": "complaint", "title": "投诉"},
                                                                          {"const": "report", "title": "举报"}]},
                  "contains": {"const": "complaint"}},
        "signed": {"type": "boolean", "title": "已签字", "const": True},
        "parts": {"type": "array", "title": "拆分", "items": {"type": "object", "required": ["content"],
                                                              "properties": {"content": {"type": "string", "title": "内容"}}}},
        "anonymous": {"type": "boolean", "title": "匿名"},
        "name": {"type": "string", "title": "姓名"},
    },
    "required": ["channel"],
    "allOf": [{"if": {"properties": {"anonymous": {"const": True}}, "required": ["anonymous"]},
               "then": {"properties": {"name": {"not": {}}}},
               "else": {"required": ["name"]}}],
}

CASES = [  # (keyword, data, the Chinese message expected for the field)
    ("required", {}, "「投诉渠道」必填"),
    ("oneOf", {"channel": "mail"}, "「投诉渠道」只能从所列选项中选择（热线电话、来访）"),
    ("enum", {"level": "特别"}, "「等级」只能从所列选项中选择（一般、重大）"),
    ("minLength", {"content": ""}, "「投诉内容」不能为空"),
    ("minLength", {"reason": "太短"}, "「理由」至少 5 字，现为 2 字"),
    ("maxLength", {"content": "一" * 12}, "「投诉内容」最多 10 字，现为 12 字"),
    ("minimum", {"amount": -50}, "「金额（元）」不能小于 0，现为 -50"),
    ("maximum", {"amount": 150}, "「金额（元）」不能大于 100，现为 150"),
    ("exclusiveMinimum", {"count": 0}, "「人数」必须大于 0，现为 0"),
    ("type", {"count": "三个"}, "「人数」应为整数"),
    ("format", {"received_at": "5月6日25点"}, "「接到时间」应为日期和时间，例如 2026-05-06 17:00，现为 5月6日25点"),
    ("format", {"day": "明天"}, "「日期」应为日期，例如 2026-05-06，现为 明天"),
    ("pattern", {"received_at": "明天"}, "「接到时间」的格式不对：明天"),
    ("minItems", {"investigators": ["王主任"]}, "「调查核实人员（至少两人）」至少填写 2 项，现为 1 项"),
    ("maxItems", {"investigators": ["甲", "乙", "丙", "丁"]}, "「调查核实人员（至少两人）」最多填写 3 项，现为 4 项"),
    ("uniqueItems", {"investigators": ["王主任", "王主任"]}, "「调查核实人员（至少两人）」有重复的项：王主任"),
    ("contains", {"types": ["report"]}, "「诉求类型」须包含「投诉」"),
    ("const", {"signed": False}, "「已签字」须勾选确认"),
    ("required", {"parts": [{}]}, "「拆分」第1行「内容」必填"),
    ("items", {"investigators": ["王主任", ""]}, "「调查核实人员（至少两人）」第2行不能为空"),
    ("not", {"anonymous": True, "name": "张三"}, "此情形下不应填写「姓名」"),
    ("else", {"anonymous": False}, "「姓名」必填"),
    ("additionalProperties", {"nickname": "小王"}, "表单中没有「nickname」这一项"),
]


@pytest.mark.parametrize("keyword,data,expected", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_json_schema_keyword_has_a_chinese_message_stating_the_limit(keyword, data, expected):
    full = {"channel": "hotline", "anonymous": True} | data if keyword not in ("required", "else") or data else data
    with pytest.raises(InvalidInput) as err:
        validate_submission(SCHEMA, full, "测试")
    messages = [m for ms in err.value.field_texts("zh").values() for m in ms]
    assert any(expected == m for m in messages), messages
    for message in messages:        # Latin only where the user typed it (a field name they sent)
        assert latin_words(message, typed={"nickname"}) == [], message
    english = [m for ms in err.value.field_errors.values() for m in ms]
    assert len(english) == len(messages)           # the CLI's sentences come from the same messages


def test_the_keywords_above_are_every_keyword_the_shipped_forms_validate_with():
    validating = {"required", "oneOf", "anyOf", "enum", "const", "minLength", "maxLength", "minimum", "maximum",
                  "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "type", "format", "pattern", "minItems",
                  "maxItems", "uniqueItems", "contains", "items", "not", "if", "then", "else", "allOf",
                  "additionalProperties", "dependentRequired", "properties"}
    used = shipped_keywords() & validating
    covered = {c[0] for c in CASES} | {"if", "then", "allOf", "properties", "anyOf"}   # the structure around them
    assert used <= covered, used - covered
