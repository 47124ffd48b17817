"""The task and case pages as an office worker uses them (issue 12), in headless Chromium:

* the case diagram opens on the open task (with and without script), zooms and pans;
* a conditionally required field is starred as its condition becomes true, and the server's
  error says why;
* phone fields are single-line inputs; a 4,000-character field takes 5,000 pasted characters
  whole, counts them and refuses to submit with the limit stated (the server refuses too);
* the case summary shows what was decided, not the procedure's defaults;
* the enterprise negotiation task shows the customer's name and contact to the department
  user doing it, logged, while the department's other pages keep them （保密）.

COMPLAINTFLOW_SCREENSHOTS=docs/screenshots keeps task.png, case.png and diagram.png
(`COMPLAINTFLOW_SCREENSHOTS=docs/screenshots ./scripts/test.sh tests/test_browser_task.py`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import cjk_font_problem, require_cjk_font
from conftest import open_task
from test_browser import SHOTS, live, page, shot, sign_in, sign_out  # noqa: F401  (fixtures)
from test_hospital_patient import ACCEPT, INTAKE as HOSPITAL_INTAKE

ENTERPRISE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
              "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}


def box(page, selector):
    return page.locator(selector).first.bounding_box()


def inside(inner, outer):
    return (inner["x"] >= outer["x"] and inner["y"] >= outer["y"]
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"]
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"])


def scale(page):
    return float(page.get_attribute("#diagram svg", "data-scale"))


# --- the diagram -----------------------------------------------------------------------------

@pytest.fixture
def hospital_case(live):
    base, service = live
    case = service.start("hospital_patient", HOSPITAL_INTAKE, "complaint_office")
    return base, service, case


def test_the_diagram_opens_on_the_open_task_and_zooms_and_pans(hospital_case, page):
    base, service, case = hospital_case
    sign_in(page, base, "complaint_office")
    page.goto(f"{base}/cases/{case.case_number}")
    page.wait_for_selector("#diagram svg[data-scale]")
    task = '#diagram [data-open][data-element="accept_decision"]'
    assert page.locator("#diagram [data-open]").count() == 1
    assert inside(box(page, task), box(page, "#diagram"))              # the open task, not the top-left corner
    assert scale(page) == 1
    if SHOTS:                                                           # the diagram's card alone
        require_cjk_font()
        page.locator("section.diagram").screenshot(path=str(Path(SHOTS) / "diagram.png"))

    page.click("button[data-zoom=fit]")                                 # the whole 12,590 px drawing
    whole = scale(page)
    assert whole < 0.2 and page.inner_text(".zoom-level") == f"{round(whole * 100)}%"
    lanes = page.locator("#diagram svg > rect").first.bounding_box()     # the pool fits the window
    assert lanes["width"] <= box(page, "#diagram")["width"] + 1
    page.click("button[data-zoom=actual]")
    assert scale(page) == 1 and page.inner_text(".zoom-level") == "100%"
    page.click("button[data-zoom=in]")
    assert scale(page) == pytest.approx(1.25)
    page.click("button[data-zoom=out]")
    page.click("button[data-zoom=out]")
    assert scale(page) == pytest.approx(0.8)
    page.click("button[data-zoom=focus]")
    assert scale(page) == 1 and inside(box(page, task), box(page, "#diagram"))

    # drag to pan: the task moves with the pointer
    before, view = box(page, task), box(page, "#diagram")
    page.mouse.move(view["x"] + view["width"] / 2, view["y"] + view["height"] / 2)
    page.mouse.down()
    page.mouse.move(view["x"] + view["width"] / 2 - 150, view["y"] + view["height"] / 2 - 60, steps=5)
    page.mouse.up()
    after = box(page, task)
    assert after["x"] == pytest.approx(before["x"] - 150, abs=2) and after["y"] == pytest.approx(before["y"] - 60, abs=2)


def test_without_script_the_diagram_still_shows_the_open_task(hospital_case, browser):
    base, service, case = hospital_case
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, base, "complaint_office")
        page.goto(f"{base}/cases/{case.case_number}")
        assert page.locator("button[data-zoom]:visible").count() == 0     # no buttons that would do nothing
        assert inside(box(page, '#diagram [data-element="accept_decision"]'), box(page, "#diagram"))
        page.click("text=查看整张流程图")                                   # the whole drawing, scrollable
        width = page.locator("#diagram svg").get_attribute("width")
        assert int(width) > 12000 and page.evaluate("document.getElementById('diagram').scrollWidth") > 12000
    finally:
        context.close()


# --- forms -------------------------------------------------------------------------------------

def test_a_conditional_requirement_is_starred_when_it_applies_and_the_error_says_why(live, page):
    base, service = live
    sign_in(page, base, "complaint_center")
    page.goto(f"{base}/new/market_regulator")
    respondent = page.locator('.field[data-field="respondent"]')
    name = page.locator('.field[data-field="requester_name"]')
    assert not respondent.locator(".req-when").is_visible() and not respondent.locator(".when").is_visible()
    assert name.locator(".req-when").is_visible()                     # not anonymous (yet): the name is needed
    page.check("input[name=request_type][value=complaint]")
    assert respondent.locator(".req-when").is_visible()
    assert respondent.locator(".when").inner_text() == "「类别」选择「投诉」，或「涉及的类别（分别处理）」包括「投诉」时必填"
    assert page.get_attribute("#f-respondent", "aria-required") == "true"
    page.check("#f-anonymous")
    assert not name.locator(".req-when").is_visible()
    page.uncheck("#f-anonymous")

    page.select_option("#f-channel", "phone")
    page.fill("#f-content", "超市出售过期酸奶")
    page.fill("#f-requester_name", "张先生")
    page.fill("#f-contact", "13700000000")
    page.click("button.primary")
    page.wait_for_selector("#form-errors")
    assert page.inner_text("#e-respondent") == "「类别」选择「投诉」，或「涉及的类别（分别处理）」包括「投诉」时必填"
    assert page.inner_text("#e-address").endswith("时必填")
    assert service.list_cases() == []                                   # nothing stored


def test_phone_fields_are_single_line_inputs(live, page):
    base, _ = live
    sign_in(page, base, "tourism_authority")
    page.goto(f"{base}/new/tourism")
    assert page.eval_on_selector("#f-contact", "e => [e.tagName, e.type]") == ["INPUT", "tel"]
    sign_out(page)
    sign_in(page, base, "reception")
    page.goto(f"{base}/new/enterprise_customer")
    assert page.eval_on_selector("#f-contact", "e => e.tagName") == "INPUT"         # was a five-line textarea
    assert page.eval_on_selector("#f-content", "e => e.tagName") == "TEXTAREA"
    narrow, wide = box(page, "#f-complainant")["width"], box(page, "#f-content")["width"]
    assert narrow < wide / 1.5                                                        # a name is not a page wide


def test_pasted_text_beyond_the_limit_is_kept_counted_and_refused(live, page, browser):
    base, service = live
    sign_in(page, base, "reception")
    page.goto(f"{base}/new/enterprise_customer")
    page.select_option("#f-channel", "hotline")
    page.fill("#f-complainant", "王女士")
    page.fill("#f-contact", "13800000000")
    page.select_option("#f-category", "product_quality")
    page.fill("#f-promised_resolution_at", "2026-05-08T17:00")
    page.focus("#f-content")
    page.keyboard.insert_text("漏" * 5000)                               # as a paste arrives
    assert page.eval_on_selector("#f-content", "e => e.value.length") == 5000       # nothing cut
    assert page.inner_text("#c-content") == "5000 / 4000"
    url = page.url
    page.click("button.primary")
    assert page.url == url and page.inner_text("#e-content") == "最多 4000 字，现为 5000 字"
    assert page.evaluate("document.activeElement.id") == "f-content"
    assert service.list_cases() == []
    page.keyboard.press("Control+End")
    for _ in range(1000):
        page.keyboard.press("Backspace")
    assert page.inner_text("#c-content") == "4000 / 4000"
    page.click("button.primary")
    page.wait_for_selector("#registered")

    # without script the server refuses it, saying the limit, and keeps what was typed
    context = browser.new_context(java_script_enabled=False, locale="zh-CN")
    bare = context.new_page()
    try:
        sign_in(bare, base, "reception")
        bare.goto(f"{base}/new/enterprise_customer")
        bare.select_option("#f-channel", "hotline")
        for field, value in (("complainant", "李先生"), ("contact", "13900000000"), ("content", "漏" * 5000),
                             ("promised_resolution_at", "2026-05-08T17:00")):
            bare.fill(f"#f-{field}", value)
        bare.select_option("#f-category", "product_quality")
        bare.click("button.primary")
        bare.wait_for_selector("#form-errors")
        assert "4000" in bare.inner_text("#e-content")
        assert bare.eval_on_selector("#f-content", "e => e.value.length") == 5000
        assert bare.inner_text("#c-content") == "5000 / 4000"
        assert len(service.list_cases()) == 1                           # only the one registered above
    finally:
        context.close()


# --- the case summary: decisions, not defaults ---------------------------------------------------

def test_the_case_summary_shows_only_what_was_decided(hospital_case, page):
    base, service, case = hospital_case
    sign_in(page, base, "complaint_office")
    page.goto(f"{base}/cases/{case.case_number}")
    summary = page.inner_text("dl.summary")
    assert "投诉等级" not in summary and "处理方式" not in summary       # the procedure's defaults, nobody chose them
    assert "普外科病区" in summary                                        # what the intake registered
    service.complete_task(open_task(service, case.instance_id, "accept_decision")["task_id"], "complaint_office",
                          ACCEPT)
    page.goto(f"{base}/cases/{case.case_number}")
    summary = page.inner_text("dl.summary")
    assert "投诉等级\n一般投诉" in summary                                 # chosen now, the same value
    shot(page, "case")


# --- identity a task needs -------------------------------------------------------------------------

@pytest.fixture
def negotiation(live):
    """An enterprise case at 协商解决方案 (department), and a second one at 调查核实."""
    base, service = live
    case = service.start("enterprise_customer", ENTERPRISE, "reception")
    service.complete_task(open_task(service, case.instance_id, "preliminary_check")["task_id"], "reception",
                          {"outcome": "accepted", "severity": "general", "department": "品质部"})
    service.complete_task(open_task(service, case.instance_id, "investigate")["task_id"], "department",
                          {"findings": "密封圈缺陷", "responsible_party": "company"})
    other = service.start("enterprise_customer", dict(ENTERPRISE, complainant="赵先生", contact="13600000000"),
                          "reception")
    service.complete_task(open_task(service, other.instance_id, "preliminary_check")["task_id"], "reception",
                          {"outcome": "accepted", "severity": "general", "department": "品质部"})
    return base, service, case, other


def test_the_negotiation_task_shows_the_customer_to_the_department_and_logs_it(negotiation, page):
    base, service, case, other = negotiation
    sign_in(page, base, "department")
    page.goto(f"{base}/tasks/{open_task(service, case.instance_id, 'agree_solution')['task_id']}")
    summary = page.inner_text("dl.summary")
    assert "王女士" in summary and "13800000000" in summary and "（保密）" not in summary
    [logged] = [e for e in service.access_log() if e["action"] == "reveal_identity"]
    assert logged["user"] == "department" and logged["allowed"] and logged["target"] == case.case_number
    assert "complainant" in logged["reason"] and "contact" in logged["reason"]
    shot(page, "task")

    # the same user elsewhere: the case page and another task keep the identity confidential
    page.goto(f"{base}/cases/{case.case_number}")
    assert "王女士" not in page.inner_text("main") and "（保密）" in page.inner_text("dl.summary")
    page.goto(f"{base}/tasks/{open_task(service, other.instance_id, 'investigate')['task_id']}")
    assert "赵先生" not in page.inner_text("main") and "（保密）" in page.inner_text("dl.summary")
    assert len([e for e in service.access_log() if e["action"] == "reveal_identity"]) == 1


# --- setting up ------------------------------------------------------------------------------------

def test_screenshots_without_a_cjk_font_fail_with_what_to_install(tmp_path):
    empty = tmp_path / "fonts.conf"                      # fontconfig that knows no font at all
    empty.write_text('<?xml version="1.0"?><fontconfig><dir>/nonexistent</dir></fontconfig>')
    problem = cjk_font_problem(env={"FONTCONFIG_FILE": str(empty), "PATH": "/usr/bin:/bin"})
    assert problem and "fonts-noto-cjk" in problem


def test_the_readme_says_what_the_browser_tests_need():
    from conftest import ROOT
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "fonts-noto-cjk" in readme and "chromium" in readme
