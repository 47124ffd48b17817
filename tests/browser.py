"""Headless Chromium for the tests: Debian's `chromium` package driven by Playwright's Python
client (never a browser Playwright downloads). Locally a missing browser skips the browser
tests; in CI (CI=true) it is an error, because .ci/run installs it. A test that takes
screenshots fails without a CJK font (`require_cjk_font`): the pictures would show boxes."""

from __future__ import annotations

import os
import shutil
import subprocess

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


NO_CJK_FONT = ("no font with Chinese characters is installed (fontconfig lists none for :lang=zh), so every "
               "Chinese character in a screenshot would be a box: install Debian's fonts-noto-cjk "
               "(apt-get install fonts-noto-cjk), as .ci/run does")


def cjk_font_problem(env=None) -> str | None:
    """Why screenshots would show boxes instead of Chinese, or None when a CJK font is installed."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return NO_CJK_FONT + " (fc-list, from fontconfig, is not installed either)"
    found = subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True, env=env).stdout
    return None if found.strip() else NO_CJK_FONT


def require_cjk_font():
    """Called before taking a screenshot: fails the test (never skips it) without a CJK font."""
    problem = cjk_font_problem()
    if problem:
        pytest.fail(problem)
