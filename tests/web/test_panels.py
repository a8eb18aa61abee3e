"""The documents panel and the composer by role (issue 10, What a person sees): an owner
creates a room and a doc of each kind from the UI, renames and deletes one; a viewer sees no
such buttons and a read-only editor; a message the server refuses shows "failed" with a retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.server import CollabServer, ServerFactory
from tests.web.conftest import Person
from tests.web.test_workspace import TIMEOUT, api_client


def test_documents_by_role(server: CollabServer, browser: Any, shots: Path) -> None:
    alice, vera = Person(browser, server, "Alice"), Person(browser, server, "Vera")
    alice.goto("/")
    alice.page.click("text=Create a room")
    alice.page.fill("#field-title", "Writers")
    alice.page.click('.dialog button[type="submit"]')
    alice.page.wait_for_selector('.room-header h1:text("Writers")', timeout=TIMEOUT)
    room = alice.page.url.rsplit("/r/", 1)[1]
    for title, kind in (("Draft", "rich"), ("README", "text")):
        alice.page.click('button[aria-label="New document"]')
        alice.page.fill("#field-title", title)
        alice.page.select_option("#field-kind", kind)
        alice.page.click('.dialog button[type="submit"]')
        alice.page.wait_for_selector(f'.doc-title:text("{title}")', timeout=TIMEOUT)
        surface = ".ProseMirror" if kind == "rich" else ".cm-content"
        alice.page.wait_for_selector(f"{surface}[contenteditable=true]", timeout=TIMEOUT)
        alice.page.click('a[aria-label="Back to the room"]')
    alice.page.click('button[aria-label="Rename README"]')
    alice.page.fill("#field-title", "Read me first")
    alice.page.click('.dialog button[type="submit"]')
    alice.page.wait_for_selector('.doc-name:text("Read me first")', timeout=TIMEOUT)
    alice.shot(shots, "1-docs-owner")
    assert alice.page.locator('.doc-name:text-is("chat")').count() == 0  # the server's own
    alice.page.click('button[aria-label="Delete Draft"]')
    alice.page.click('.dialog button[type="submit"]')
    alice.page.wait_for_selector('.doc-name:text("Draft")', state="detached", timeout=TIMEOUT)

    with api_client(server, alice.user_id) as owner:
        added = owner.post(
            f"/rooms/{room}/members", json={"user_id": vera.user_id, "role": "viewer"}
        )
        assert added.status_code == 201
        docs = owner.get(f"/rooms/{room}/docs").json()["items"]
    shown = [(d["title"], d["kind"]) for d in docs if d["name"] != "chat"]
    assert shown == [("Read me first", "text")]
    vera.goto(f"/r/{room}")
    vera.page.wait_for_selector('.doc-name:text("Read me first")', timeout=TIMEOUT)
    assert vera.page.locator('button[aria-label="New document"]').count() == 0
    assert (
        vera.page.locator('button[aria-label^="Rename"], button[aria-label^="Delete"]').count() == 0
    )
    assert vera.page.is_disabled(".composer-input")
    vera.page.click('.doc-link:has-text("Read me first")')
    vera.page.wait_for_selector(".cm-content[contenteditable=false]", timeout=TIMEOUT)
    assert vera.page.is_visible(".readonly-banner")
    vera.shot(shots, "2-viewer")
    assert alice.errors == [] and vera.errors == []


def test_a_refused_message_fails_with_a_retry(
    server_factory: ServerFactory, browser: Any, shots: Path
) -> None:
    server = server_factory(max_message_length=20)
    alice = Person(browser, server, "Alice")
    with api_client(server, alice.user_id) as owner:
        assert owner.post("/rooms", json={"id": "r", "title": "R"}).status_code == 201
    alice.goto("/r/r")
    alice.page.fill(".composer-input", "This message is far too long for this server.")
    alice.page.keyboard.press("Enter")
    alice.page.wait_for_selector('.message[data-state="failed"]', timeout=TIMEOUT)
    alice.page.fill(".composer-input", "Short one.")
    alice.page.keyboard.press("Enter")
    alice.page.wait_for_selector('.message[data-state="sent"] .message-text:text("Short one.")')
    assert alice.page.is_visible('.message[data-state="failed"] button:has-text("Retry")')
    alice.shot(shots, "1-failed")
