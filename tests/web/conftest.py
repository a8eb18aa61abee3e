"""Browser tests of the workspace: Debian's Chromium driven by Playwright (sync API) against a
real ``collab serve``. Each test saves screenshots under its own output folder
(``shots``: the test's tmp_path/screenshots): look at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

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
    """One user in their own browser context (own cookies), signed in with a session; with
    ``dev_login``, signed in as a person would be in dev mode: the printed login URL with
    ``&name=`` (a distinct named dev user per name)."""

    def __init__(
        self,
        browser: Any,
        server: CollabServer,
        name: str,
        *,
        base_url: str = "",
        dev_login: bool = False,
        **context: Any,
    ) -> None:
        self.server = server
        self.name = name
        self.base_url = base_url or server.http_url  # another address: a proxy in front
        self.context = browser.new_context(viewport={"width": 1280, "height": 800}, **context)
        if not dev_login:
            self.user_id = server.create_user(name)
            secret = server.session(self.user_id)
            self.context.add_cookies(
                [{"name": "collab_session", "value": secret, "url": self.base_url}]
            )
        self.csp_violations: list[str] = []
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        if dev_login:
            query = urlencode({"token": server.dev_token, "name": name})
            self.page.goto(f"{self.base_url}/login?{query}")
            self.page.wait_for_url(f"{self.base_url}/**", timeout=15_000)
            session = self.page.evaluate("fetch('auth/session').then((r) => r.json())")
            assert session["user"]["name"] == name, session
            self.user_id = str(session["user"]["id"])

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.csp_violations.append(text)

    def goto(self, path: str = "/") -> None:
        self.page.goto(self.base_url + path)

    def shot(self, folder: Path, name: str) -> None:
        self.page.screenshot(path=str(folder / f"{name}.png"))
