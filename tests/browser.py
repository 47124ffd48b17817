"""Headless Chromium for the tests: Debian's `chromium` package driven by Playwright's Python
client (never a browser Playwright downloads). Locally a missing browser skips the browser
tests; in CI (CI=true) it is an error, because .ci/run installs it."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return os.environ.get("COMPLAINTFLOW_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def missing(what: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed; .ci/run should have installed it")
    pytest.skip(f"{what} is not installed")


def launch_browser():
    """A generator yielding one Chromium for the whole session (the `browser` fixture in conftest)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package")
    path = chromium_path()
    if path is None:
        missing("Chromium (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()
