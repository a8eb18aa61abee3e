"""Headless Debian Chromium driven by Playwright's sync API (never ``playwright install``).

Skips with the reason when the browser or the playwright package is missing, except under
``CI=true``, where that is a failure (scripts/test installs chromium when it can).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run under CI: {reason}")
    pytest.skip(reason)


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """A fresh browser; each ``new_page()`` gets its own context (its own cookies)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/test does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
