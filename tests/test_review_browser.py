"""The reviewer's pages in a real headless Chromium (Debian's chromium, driven by Playwright):
a reviewer signs in, searches, opens a case, reads its history (no line wider than the page),
checks it (the badge), steps through its replay and sees the diagram change, opens the
statistics with their charts and downloads the case's dossier (PDF).

COMPLAINTFLOW_SCREENSHOTS=docs/screenshots keeps pictures of the reviewer pages
(`COMPLAINTFLOW_SCREENSHOTS=docs/screenshots ./scripts/test.sh tests/test_review_browser.py`).
"""

from __future__ import annotations

import pytest

from conftest import open_task
from test_browser import live, page, shot, sign_in  # noqa: F401  (fixtures)

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水，" + "底座接缝处渗水，更换后仍然漏水；" * 12,
          "promised_resolution_at": "2026-05-08T17:00:00+08:00"}


@pytest.fixture
def cases(live):
    base, service = live
    clock = service.clock
    a = service.start("enterprise_customer", INTAKE, "reception")
    task = open_task(service, a.instance_id, "preliminary_check")
    service.complete_task(task["task_id"], "reception", {"outcome": "accepted", "severity": "general",
                                                         "department": "品质部"})
    clock.advance(hours=3)
    task = open_task(service, a.instance_id, "investigate")
    service.complete_task(task["task_id"], "department", {"findings": "密封圈缺陷", "responsible_party": "company"})
    clock.advance(hours=1)
    b = service.start("enterprise_customer", dict(INTAKE, category="service_attitude", content="客服态度差"),
                      "reception")
    return base, service, a, b


def test_a_reviewer_finds_reads_checks_and_replays_a_case(cases, page):
    base, service, a, b = cases
    sign_in(page, base, "reviewer")
    page.wait_for_selector("#review-search")                  # a reviewer lands on the search
    assert page.locator("#review-results tr[data-case]").count() == 2
    page.select_option("#q-category", "product_quality")
    page.click("#review-search button[type=submit]")
    page.wait_for_selector(f'#review-results tr[data-case="{a.case_number}"]')
    assert page.locator("#review-results tr[data-case]").count() == 1
    assert page.inner_text(f'tr[data-case="{a.case_number}"] .verify-badge') == "尚未核验"

    # the case: readable history, raw JSON behind a toggle, nothing wider than the page
    page.click(f"a.case-link:has-text('{a.case_number}')")
    page.wait_for_selector("#history")
    history = page.inner_text("#history")
    assert "完成了「调查核实」" in history and "王女士" not in history
    assert not page.locator("details.raw pre").first.is_visible()
    page.locator("details.raw summary").first.click()
    assert '"kind": "started"' in page.locator("details.raw pre").first.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # the badge: check now
    page.click("#verify-now")
    page.wait_for_selector('.verify-badge[data-verified="ok"]')
    assert "✓ 一致" in page.inner_text("#verification") and "核验于 2026-05-06" in page.inner_text("#verification")
    shot(page, "review-case")

    # the replay: step back from the end, the diagram follows
    page.click("#replay-link")
    page.wait_for_selector("#replay")
    total = int(page.get_attribute("#replay", "data-until"))
    current = page.locator('#diagram [data-state="current"]')
    assert page.locator('#diagram [data-element="agree_solution"][data-state="current"]').count() == 1
    assert page.locator('#diagram [data-element="investigate"][data-state="done"]').count() == 1
    assert page.locator('#replay .verify-badge[data-verified="ok"]').count() == 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "review-replay")
    # jump to the first event from the history list
    page.click("#event-1 a.jump")
    page.wait_for_selector('#replay[data-until="1"]')
    assert page.locator('#diagram [data-element="preliminary_check"][data-state="current"]').count() == 1
    assert page.locator('#diagram [data-element="investigate"][data-state="done"]').count() == 0
    assert "初步核实" in page.inner_text("#replay-tasks")
    # and forwards one event at a time until investigate is current
    seen = []
    for _ in range(total - 1):
        page.click("#step-forward")
        page.wait_for_selector(f'#replay[data-until="{len(seen) + 2}"]')
        seen.append(sorted(current.evaluate_all("els => els.map(e => e.dataset.element)")))
    assert any("investigate" in now for now in seen) and "agree_solution" in seen[-1]
    assert "preliminary_check" in seen[0] and "agree_solution" not in seen[0]
    assert page.locator("#step-forward").count() == 0
    page.click("#step-back")
    page.wait_for_selector(f'#replay[data-until="{total - 1}"]')

    # the statistics with their charts (stats_pages.py), from the header
    page.click("header nav a:has-text('统计')")
    page.wait_for_selector("#stats-table")
    assert "受理量" in page.inner_text("#stats-table")
    assert page.locator("figure svg").count() >= 2

    # the dossier of the case (dossier_pages.py): a PDF holding the case number and its history
    page.goto(f"{base}/cases/{a.case_number}")
    with page.expect_download() as download:
        page.click("#dossier-pdf")
    from pypdf import PdfReader
    pdf = "".join(p.extract_text() for p in PdfReader(download.value.path()).pages)
    assert a.case_number in pdf and "调查核实" in pdf

    # every case checked in the background from the search page, with its progress and result
    page.click("#nav-review")
    page.click("#verify-all button[type=submit]")
    page.wait_for_selector("#bulk-result", timeout=60_000)          # the page reloads until it is done
    assert "共核验 2 件，一致 2 件，不一致 0 件" in page.inner_text("#bulk-result")
    assert page.locator('#review-results .verify-badge[data-verified="ok"]').count() == 2
    shot(page, "review-search")

    log = [(r["user"], r["action"]) for r in service.access_log(limit=500)]
    assert ("reviewer", "view_case") in log and ("reviewer", "replay_case") in log and ("reviewer", "verify_case") in log
    assert ("reviewer", "verify_all") in log
