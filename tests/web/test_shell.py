"""The shell (issue 10, "What a person sees"): clear pages for "not a member", "link expired"
and "server unreachable" (the service worker's shell, retrying until the server is back), the
connection banner with its countdown, invite links, the Ctrl+K switcher, light and dark
themes, and a 400 px wide screen with nothing scrolling sideways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.server import CollabServer
from tests.web.conftest import Person
from tests.web.test_workspace import TIMEOUT, api_client


def test_not_a_member_expired_links_and_invites(
    server: CollabServer, browser: Any, shots: Path
) -> None:
    alice, bob = Person(browser, server, "Alice"), Person(browser, server, "Bob")
    with api_client(server, alice.user_id) as owner:
        assert owner.post("/rooms", json={"id": "plans", "title": "Plans"}).status_code == 201
        invite = owner.post("/rooms/plans/invites", json={"role": "commenter"}).json()
    bob.goto("/r/plans")
    bob.page.wait_for_selector("text=You are not a member of this room", timeout=TIMEOUT)
    bob.shot(shots, "1-not-a-member")
    bob.goto("/invite/not-a-real-code")
    bob.page.wait_for_selector("text=This invite link has expired", timeout=TIMEOUT)
    bob.shot(shots, "2-link-expired")
    # The real link (as the owner shares it) signs Bob in to the room, once.
    bob.page.goto(invite["url"])
    bob.page.wait_for_selector('.room-header h1:text("Plans")', timeout=TIMEOUT)
    assert bob.page.text_content(".role-chip") == "commenter"
    bob.page.goto(invite["url"])
    bob.page.wait_for_selector("text=This invite link has expired", timeout=TIMEOUT)
    assert bob.errors == []


def test_switcher_themes_and_a_narrow_screen(
    server: CollabServer, browser: Any, shots: Path
) -> None:
    alice = Person(browser, server, "Alice", color_scheme="dark")
    with api_client(server, alice.user_id) as owner:
        for room, title in (("a", "Alpha team"), ("b", "Beta launch"), ("c", "Company")):
            assert owner.post("/rooms", json={"id": room, "title": title}).status_code == 201
        owner.post("/rooms/b/messages", json={"text": "Launch is on Friday.", "client_id": "x"})
    alice.goto("/")
    alice.page.wait_for_selector('.room-header h1:text("Alpha team")', timeout=TIMEOUT)
    alice.page.keyboard.press("Control+k")
    alice.page.keyboard.type("beta")
    alice.shot(shots, "1-switcher-dark")
    alice.page.keyboard.press("Enter")
    alice.page.wait_for_selector('.room-header h1:text("Beta launch")', timeout=TIMEOUT)
    alice.page.wait_for_selector('.message-text:text("Launch is on Friday.")')
    background = alice.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(24, 27, 33)"  # the dark theme, from the system's preference
    alice.shot(shots, "2-room-dark")
    alice.page.click('button[aria-label="Theme"]')  # system -> light
    assert alice.page.evaluate("getComputedStyle(document.body).backgroundColor") == (
        "rgb(255, 255, 255)"
    )
    alice.page.set_viewport_size({"width": 400, "height": 800})
    alice.page.wait_for_timeout(300)
    alice.shot(shots, "3-narrow")
    assert alice.page.evaluate("document.scrollingElement.scrollWidth") <= 400
    assert not alice.page.is_visible(".sidebar .room-link")  # the sidebar is a drawer now
    alice.page.click('button[aria-label="Rooms"]')
    alice.page.click('.room-link:has-text("Company")')
    alice.page.wait_for_selector('.room-header h1:text("Company")', timeout=TIMEOUT)
    alice.page.wait_for_selector(".composer-input:visible")
    # Picking a room closes the drawer: wait out its slide so the shot shows the room.
    alice.page.wait_for_selector(".sidebar .room-link", state="hidden")
    alice.shot(shots, "4-narrow-room")
    assert alice.page.evaluate("document.scrollingElement.scrollWidth") <= 400
    assert alice.errors == []


def test_banner_while_down_and_the_offline_shell(
    server: CollabServer, browser: Any, shots: Path
) -> None:
    alice = Person(browser, server, "Alice")
    with api_client(server, alice.user_id) as owner:
        assert owner.post("/rooms", json={"id": "ops", "title": "Ops"}).status_code == 201
    alice.goto("/r/ops")
    alice.page.wait_for_selector(".composer-input", timeout=TIMEOUT)
    alice.page.wait_for_function(
        "() => navigator.serviceWorker.controller !== null", timeout=TIMEOUT
    )
    server.terminate()
    alice.page.wait_for_selector(".banner.warning:has-text('Reconnecting')", timeout=TIMEOUT)
    alice.shot(shots, "1-banner")
    alice.page.reload()  # the service worker serves the shell; the server is still down
    # A known user gets the workspace from what was cached, retrying behind the banner.
    alice.page.wait_for_selector('.room-header h1:text("Ops")', timeout=TIMEOUT)
    alice.page.wait_for_selector(".banner.warning", timeout=TIMEOUT)
    # Without that (a browser that never saw the workspace answer), it says so and retries.
    alice.page.clock.install()  # the page's timers, so its own retries can be held below
    alice.page.evaluate("() => localStorage.clear()")
    alice.page.reload()
    alice.page.wait_for_selector("text=Cannot reach the server", timeout=TIMEOUT)
    alice.page.wait_for_selector("text=Trying again in")
    alice.shot(shots, "2-unreachable")
    # Its countdown retries on its own every 1 to 30 s, each failure drawing the page again:
    # held still, "Retry now" is the only way back, and the button is not redrawn under
    # the click (CI once saw the page come back on its own first, the click left waiting).
    alice.page.clock.pause_at(alice.page.evaluate("Date.now()") + 10)
    server.start()
    alice.page.click("text=Retry now")
    alice.page.wait_for_selector('.room-header h1:text("Ops")', timeout=TIMEOUT)
    alice.page.clock.resume()
    alice.page.wait_for_selector(".banner", state="hidden", timeout=TIMEOUT)
    alice.shot(shots, "3-back")
