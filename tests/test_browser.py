"""The inbox in a real headless Chromium (Debian's chromium, driven by Playwright): sign in,
register a complaint, find it in the right role's inbox, complete tasks with one invalid
submission in between, see the case page with its diagram, and be refused a task of
another role.

Set COMPLAINTFLOW_SCREENSHOTS=DIR to keep screenshots of the main pages (docs/screenshots
is made this way: `COMPLAINTFLOW_SCREENSHOTS=docs/screenshots ./scripts/test.sh tests/test_browser.py`).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from browser import require_cjk_font
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES

SHOTS = os.environ.get("COMPLAINTFLOW_SCREENSHOTS")


@pytest.fixture
def live(service):
    """The inbox served on a free local port, on the test's database and controlled clock."""
    service.deploy([PROCESSES])
    roles = load_roles(PROCESSES)
    app = create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="browser-test")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", service
    server.shutdown()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def shot(page, name):
    if SHOTS:
        require_cjk_font()          # without one every Chinese character in the picture is a box
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def sign_in(page, base, login, *, picture=None):
    page.goto(f"{base}/login")
    page.fill("#login", login)
    page.fill("#password", "demo")
    if picture:
        shot(page, picture)
    page.click("button[type=submit]")
    page.wait_for_selector("#current-user")


def sign_out(page):
    page.click("text=退出")
    page.wait_for_selector("#login")


def open_task(page, base, name):
    page.goto(f"{base}/")
    page.click(f"a.task-link:has-text('{name}')")
    page.wait_for_selector("form button.primary")


def test_a_complaint_from_registration_through_the_inbox_to_the_case_page(live, page):
    base, service = live
    sign_in(page, base, "reception", picture="login")

    # register a complaint
    page.click("text=登记投诉")
    page.click("text=企业客户投诉处理")
    page.select_option("#f-channel", "hotline")
    page.fill("#f-complainant", "王女士")
    page.fill("#f-contact", "13800000000")
    page.select_option("#f-category", "product_quality")
    page.fill("#f-content", "新买的电水壶漏水")
    page.fill("#f-promised_resolution_at", "2026-05-08T17:00")
    shot(page, "intake")
    page.click("button.primary")
    page.wait_for_selector("#registered")
    number = page.inner_text("#registered-number")
    assert re.fullmatch(r"KH-2026-\d{6}", number)
    assert "我们承诺在 2026年05月08日 17:00 前给您答复" in page.inner_text("#registered")
    shot(page, "registered")

    # the reception's own task: one invalid submission, then a valid one
    open_task(page, base, "初步核实")
    page.check("input[name=outcome][value=accepted]")
    page.click("button.primary")
    page.wait_for_selector("#form-errors")
    assert page.locator(".field-error").count() >= 1
    assert "必填" in page.inner_text(".field-error")
    shot(page, "task-error")
    assert [t["task"] for t in service.list_tasks(role="department")] == []      # nothing changed
    page.check("input[name=outcome][value=accepted]")
    page.check("input[name=severity][value=general]")
    page.fill("#f-department", "品质部")
    page.click("button.primary")
    page.wait_for_selector("text=任务已办结")
    sign_out(page)

    # the department finds it in its inbox and completes it
    sign_in(page, base, "department")
    row = page.locator("table.tasks tr", has_text=number)
    assert "调查核实" in row.inner_text() and "05月08日（周五）17:00" in row.inner_text()
    shot(page, "inbox")
    task_url = row.locator("a.task-link").get_attribute("href")
    open_task(page, base, "调查核实")          # task.png and case.png: tests/test_browser_task.py
    page.fill("#f-findings", "密封圈缺陷")
    page.check("input[name=responsible_party][value=company]")
    page.click("button.primary")
    page.wait_for_selector("text=任务已办结")

    # the case page: timeline, deadlines, diagram with the path and the current step
    page.goto(f"{base}/cases/{number}")
    page.wait_for_selector("#diagram svg")
    assert page.locator('#diagram [data-element="investigate"][data-state="done"]').count() == 1
    assert page.locator('#diagram [data-element="agree_solution"][data-state="current"]').count() == 1
    assert "完成了「调查核实」" in page.inner_text("ol.timeline")
    assert "（保密）" in page.inner_text("dl.summary")            # the department does not see identity
    sign_out(page)

    # a user of another role cannot open the department's task
    sign_in(page, base, "manager")
    response = page.goto(f"{base}{task_url}")
    assert response.status == 404                                  # answered as if there were no such task
    assert "找不到该任务，或该任务不属于您的角色" in page.inner_text("main")
    assert service.access_log(refused_only=True)[0]["user"] == "manager"
