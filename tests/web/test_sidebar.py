"""The sidebar from the user's one live stream (issue 10, Sidebar; Server work: one live stream
per signed-in user): unread and mention badges and who is in each room, for rooms the page has
no socket to; opening a room reads it (the badges go); direct messages listed apart, opened
with someone's handle, and shown live to the other person."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.server import CollabServer
from tests.web.conftest import Person
from tests.web.test_workspace import TIMEOUT, api_client, setup_room


def sockets(person: Person) -> list[str]:
    opened: list[str] = []
    person.page.on("websocket", lambda ws: opened.append(ws.url.split("?")[0]))
    return opened


def test_badges_presence_and_dms_from_the_live_stream(
    server: CollabServer, browser: Any, shots: Path
) -> None:
    alice, bob = Person(browser, server, "Alice"), Person(browser, server, "Bob")
    owner = setup_room(server, alice, bob, "editor")
    assert owner.post("/rooms", json={"id": "other", "title": "Other"}).status_code == 201
    body = {"user_id": bob.user_id, "role": "editor"}
    assert owner.post("/rooms/other/members", json=body).status_code == 201
    owner.close()
    opened = sockets(alice)
    alice.goto("/r/team")
    alice.page.wait_for_selector(".chat .composer-input", timeout=TIMEOUT)
    other = '.room-link[data-room="other"]'
    alice.page.wait_for_selector(other, timeout=TIMEOUT)

    # Bob posts in Other (mentioning Alice): her sidebar counts it, live.
    with api_client(server, bob.user_id) as http:
        for n, text in enumerate(("Anyone here?", "@alice can you look?")):
            answer = http.post("/rooms/other/messages", json={"text": text, "client_id": f"b{n}"})
            assert answer.status_code == 201
    alice.page.wait_for_selector(f'{other} .badge[data-unread="2"]', timeout=TIMEOUT)
    alice.page.wait_for_selector(f'{other} .badge.mention[data-mentions="1"]', timeout=TIMEOUT)
    # Bob opens Other: Alice sees someone there, without a socket to it.
    bob.goto("/r/other")
    bob.page.wait_for_selector(".chat .composer-input", timeout=TIMEOUT)
    alice.page.wait_for_selector(f'{other} .here-dot[data-here="1"]', timeout=TIMEOUT)
    alice.shot(shots, "1-badges-and-presence")
    paths = sorted({url.split("/ws/", 1)[1] for url in opened})
    assert paths == ["_me", "team/chat"], paths  # one stream, no socket per room

    # Opening the room reads it: the badges go, and stay gone.
    alice.page.click(other)
    alice.page.wait_for_selector('.message-text:text("can you look?")', timeout=TIMEOUT)
    bob.page.wait_for_selector('.seen-by:text("Seen by Alice")', timeout=TIMEOUT)  # her marker
    first_new = """() => {
      let el = document.querySelector('.new-divider')
      while (el && !el.classList.contains('message')) el = el.nextElementSibling
      return el && el.querySelector('.message-text').textContent
    }"""
    assert alice.page.evaluate(first_new) == "Anyone here?"  # the "New" line above the unread
    alice.shot(shots, "2-read-with-new-line")
    alice.page.click('.room-link[data-room="team"]')
    alice.page.wait_for_selector('.room-header h1:text("Team")', timeout=TIMEOUT)
    alice.page.wait_for_selector(f"{other} .badge", state="detached", timeout=TIMEOUT)
    with api_client(server, alice.user_id) as http:
        rooms = {r["id"]: r for r in http.get("/rooms").json()["items"]}
    assert (rooms["other"]["unread"], rooms["other"]["mentions"]) == (0, 0)

    # A direct message: Alice opens one with Bob's handle and writes; Bob sees it listed at
    # once, with its unread badge, and reads it.
    alice.page.click('button[aria-label="Message someone"]')
    alice.page.fill("#field-user", "@bob")
    alice.page.click('.dialog button[type="submit"]')
    alice.page.wait_for_selector('.room-header h1:text("Bob")', timeout=TIMEOUT)
    alice.page.fill(".chat .composer-input", "Hi Bob, a private word.")
    alice.page.keyboard.press("Enter")
    alice.page.wait_for_selector('.message[data-state="sent"]:has-text("a private word")')
    dm = '.dm-list .room-link:has-text("Alice")'
    bob.page.wait_for_selector(f'{dm} .badge[data-unread="1"]', timeout=TIMEOUT)
    bob.page.wait_for_selector(f"{dm} .here-dot", timeout=TIMEOUT)  # Alice is in it
    bob.shot(shots, "3-dm-listed-bob")
    alice.shot(shots, "3-dm-alice")
    bob.page.click(dm)
    bob.page.wait_for_selector('.message-text:text("Hi Bob, a private word.")', timeout=TIMEOUT)
    assert bob.page.locator('.room-link[data-room="team"]').count() == 1
    assert bob.page.locator('.dm-list .room-link[data-room="team"]').count() == 0
    for person in (alice, bob):
        assert person.errors == [], person.errors
        assert person.csp_violations == [], person.csp_violations
