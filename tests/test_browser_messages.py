"""Recording a withdrawal on the case page, as the reception desk does it, in headless Chromium:
the panel's button opens the form; a form with a field missing comes back with the Chinese
error beside it and the entered text kept; the corrected form records it, the case page says
so and its history reads who recorded what."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES
from test_browser import page, sign_in  # noqa: F401  (fixtures)
from test_messages import message_process


@pytest.fixture
def live(service, tmp_path, switch):
    switch.fail = False
    service.deploy([message_process(tmp_path)])
    roles = load_roles(PROCESSES)
    app = create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="browser-test")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", service
    server.shutdown()


def test_the_reception_desk_records_a_withdrawal_from_the_case_page(live, page):
    base, service = live
    case = service.start("msgcase", {"subject": "发票开错"}, "reception")
    sign_in(page, base, "reception")
    page.goto(f"{base}/cases/{case.case_number}")
    assert page.inner_text("#awaited-messages h2") == "待登记的外部消息"
    page.click("#awaited-messages a:has-text('登记：投诉人撤回投诉')")
    page.wait_for_selector("#message-form")
    assert page.inner_text("#message-form h1") == "登记：投诉人撤回投诉"

    page.check("#f-withdrawal_way-1")                                   # 电话
    page.fill("#f-withdrawal_reason", "已与商家协商解决")
    page.click("#record-message")                                       # 撤回时间 left empty
    page.wait_for_selector("#form-errors")
    assert "「撤回时间」必填" in page.inner_text("#message-form")
    assert page.input_value("#f-withdrawal_reason") == "已与商家协商解决"   # nothing typed is lost
    assert page.is_checked("#f-withdrawal_way-1")
    assert service.show(case.instance_id)["status"] == "running"

    page.fill("#f-withdrawn_at", "2026-05-06T08:30")
    page.click("#record-message")
    page.wait_for_selector("#history")
    assert f"已登记「投诉人撤回投诉」 {case.case_number}" in page.inner_text("body")
    history = page.inner_text("#history")
    assert "李客服（客服接待）登记：投诉人撤回投诉" in history and "已与商家协商解决" in history
    assert page.locator("#awaited-messages").count() == 0
    assert service.show(case.instance_id)["status"] == "completed"
