"""Browser tests of the workspace: Debian's Chromium driven by Playwright (sync API) against a
real ``collab serve``. Each test saves screenshots under its own output folder
(``shots``: the test's tmp_path/screenshots): look at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import launch_chromium
from tests.support.server import CollabServer


@pytest.fixture
def browser() -> Iterator[Any]:
    with launch_chromium() as found:
        yield found


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


class Person:
    """One user in their own browser context (own cookies), signed in with a session."""

    def __init__(
        self, browser: Any, server: CollabServer, name: str, *, base_url: str = "", **context: Any
    ) -> None:
        self.server = server
        self.name = name
        self.base_url = base_url or server.http_url  # another address: a proxy in front
        self.user_id = server.create_user(name)
        self.context = browser.new_context(viewport={"width": 1280, "height": 800}, **context)
        secret = server.session(self.user_id)
        self.context.add_cookies(
            [{"name": "collab_session", "value": secret, "url": self.base_url}]
        )
        self.csp_violations: list[str] = []
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.csp_violations.append(text)

    def goto(self, path: str = "/") -> None:
        self.page.goto(self.base_url + path)

    def shot(self, folder: Path, name: str) -> None:
        self.page.screenshot(path=str(folder / f"{name}.png"))
