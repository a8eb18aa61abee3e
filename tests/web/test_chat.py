"""The chat panel, complete (issue 10, What a person sees: Chat panel): mention autocomplete,
posts over the chat socket (type 101, no API call), the typing indicator, clickable reactions,
threads beside the channel (reply; Esc closes), Up edits my last message (edited mark), delete
my own message, day dividers; and scrolling back through the archive past the chat doc's
oldest message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.server import CollabServer, ServerFactory
from tests.web.conftest import Person
from tests.web.test_workspace import TIMEOUT, api_client, setup_room


def api_posts(person: Person) -> list[str]:
    """Every chat write this page sends to the HTTP API (not over the socket), recorded."""
    seen: list[str] = []

    def record(request: Any) -> None:
        if "/api/v1/rooms/" in request.url and "/messages" in request.url:
            if request.method != "GET":
                seen.append(f"{request.method} {request.url}")

    person.page.on("request", record)
    return seen


def message(text: str) -> str:
    return f'.chat:not(.thread) .message:has(.message-text:text("{text}"))'


def test_threads_reactions_typing_edit_delete(
    server: CollabServer, browser: Any, shots: Path
) -> None:
    alice, bob = Person(browser, server, "Alice"), Person(browser, server, "Bob")
    setup_room(server, alice, bob, "editor").close()
    alice_api, bob_api = api_posts(alice), api_posts(bob)
    for person in (alice, bob):
        person.goto("/r/team")
    for person in (alice, bob):
        person.page.wait_for_selector(".chat .composer-input", timeout=TIMEOUT)
        person.page.wait_for_selector('.presence [data-user="Alice"]', timeout=TIMEOUT)
        person.page.wait_for_selector('.presence [data-user="Bob"]', timeout=TIMEOUT)

    # Mention autocomplete: "@bo" offers Bob; Enter picks him.
    alice.page.click(".composer-input")
    alice.page.keyboard.type("Lunch at noon, @bo")
    alice.page.wait_for_selector('.mention-popup li[data-handle="bob"]', timeout=TIMEOUT)
    alice.shot(shots, "1-mention-autocomplete")
    alice.page.keyboard.press("Enter")
    assert alice.page.input_value(".composer-input") == "Lunch at noon, @bob "
    alice.page.keyboard.type("?")
    alice.page.keyboard.press("Enter")
    alice.page.wait_for_selector(
        f'{message("Lunch at noon, @bob ?")}[data-state="sent"]', timeout=TIMEOUT
    )
    bob.page.wait_for_selector(f"{message('Lunch at noon')} .mention.mention-me", timeout=TIMEOUT)
    assert bob.page.locator(".day-divider:has-text('Today')").count() == 1

    # Typing: Bob types without sending; Alice sees it, and it goes once he sends.
    bob.page.click(".chat .composer-input")
    bob.page.keyboard.type("Sounds good")
    alice.page.wait_for_selector('.chat .typing:text("Bob is typing…")', timeout=TIMEOUT)
    alice.shot(shots, "2-typing")
    bob.page.keyboard.press("Enter")
    alice.page.wait_for_selector(message("Sounds good"), timeout=TIMEOUT)
    alice.page.wait_for_selector('.chat .typing:text-is("")', state="attached", timeout=TIMEOUT)

    # Reactions: Bob reacts from the hover toolbar; Alice's click on the pill adds hers, a
    # second click takes it back.
    lunch = message("Lunch at noon")
    bob.page.hover(lunch)
    bob.page.click(f'{lunch} button[aria-label="Add a reaction"]')
    bob.page.click(f'{lunch} button[aria-label="React 👍"]')
    pill = f'{lunch} .reaction[data-emoji="👍"]'
    alice.page.wait_for_selector(f'{pill}:text("👍 1")', timeout=TIMEOUT)
    alice.page.click(pill)
    alice.page.wait_for_selector(f'{pill}.mine:text("👍 2")', timeout=TIMEOUT)
    bob.page.wait_for_selector(f'{pill}:text("👍 2")', timeout=TIMEOUT)
    alice.shot(shots, "3-reactions")
    alice.page.click(pill)
    alice.page.wait_for_selector(f'{pill}:not(.mine):text("👍 1")', timeout=TIMEOUT)

    # A thread beside the channel: Bob replies; Alice opens it from the summary; Esc closes.
    bob.page.hover(lunch)
    bob.page.click(f'{lunch} button[aria-label="Reply in thread"]')
    bob.page.wait_for_selector(".chat.thread .composer-input:focus", timeout=TIMEOUT)
    bob.page.keyboard.type("I will book a table.")
    bob.page.keyboard.press("Enter")
    bob.page.wait_for_selector(
        '.chat.thread .message[data-state="sent"]:has-text("I will book a table.")',
        timeout=TIMEOUT,
    )
    alice.page.wait_for_selector(f'{lunch} .thread-summary:has-text("1 reply")', timeout=TIMEOUT)
    assert alice.page.locator(message("I will book a table.")).count() == 0  # not in the channel
    alice.page.click(f"{lunch} .thread-summary")
    alice.page.wait_for_selector(
        '.chat.thread .message-text:text("I will book a table.")', timeout=TIMEOUT
    )
    alice.shot(shots, "4-thread-alice")
    bob.shot(shots, "4-thread-bob")
    alice.page.keyboard.press("Escape")
    alice.page.wait_for_selector(".chat.thread", state="detached", timeout=TIMEOUT)

    # Up in the empty box edits my last message; Enter saves; both see "(edited)".
    alice.page.click(".chat .composer-input")
    alice.page.keyboard.press("ArrowUp")
    alice.page.wait_for_selector(".edit-input:focus", timeout=TIMEOUT)
    alice.page.fill(".edit-input", "Lunch at 12:30, @bob?")
    alice.page.keyboard.press("Enter")
    edited = message("Lunch at 12:30, @bob?")
    bob.page.wait_for_selector(f"{edited} .edited", timeout=TIMEOUT)
    alice.page.wait_for_selector(f"{edited} .edited", timeout=TIMEOUT)
    bob.shot(shots, "5-edited")

    # Delete my own message (confirmed in a dialog): a tombstone on both sides.
    alice.page.hover(edited)
    alice.page.click(f'{edited} button[aria-label="Delete"]')
    alice.page.click('.dialog button[type="submit"]')
    for person in (alice, bob):
        person.page.wait_for_selector(
            '.message-text.deleted:text("This message was deleted.")', timeout=TIMEOUT
        )
    # Bob's thread was under it: its reply stays, and the box takes no new one (the server
    # answers 409 to a reply under a deleted message).
    bob.page.wait_for_selector(".chat.thread .composer-input:disabled", timeout=TIMEOUT)
    assert "was deleted" in bob.page.inner_text(".chat.thread .composer-notice")
    assert bob.page.locator('.chat.thread .message-text:text("I will book a table.")').count() == 1
    bob.shot(shots, "6-thread-root-deleted")
    # Only the author edits: Bob has the button on his message, Alice has not.
    bob.page.hover(message("Sounds good"))
    assert bob.page.locator(f'{message("Sounds good")} button[aria-label="Edit"]').count() == 1
    alice.page.hover(message("Sounds good"))
    assert alice.page.locator(f'{message("Sounds good")} button[aria-label="Edit"]').count() == 0
    alice.shot(shots, "6-deleted")

    # At 400 px in the dark theme, a thread is a drawer over the channel; Esc closes it.
    bob.page.set_viewport_size({"width": 400, "height": 800})
    bob.page.emulate_media(color_scheme="dark")
    bob.page.wait_for_selector(".chat.thread .composer-input", timeout=TIMEOUT)  # still open
    bob.page.wait_for_timeout(400)  # the drawers' 0.15 s slide, for the picture only
    bob.shot(shots, "7-thread-narrow-dark")
    bob.page.focus('.chat.thread button[aria-label="Close the thread"]')
    bob.page.keyboard.press("Escape")
    bob.page.wait_for_selector(".chat.thread", state="detached", timeout=TIMEOUT)
    bob.page.wait_for_timeout(400)
    bob.shot(shots, "8-channel-narrow-dark")
    assert bob.page.evaluate("document.documentElement.scrollWidth") <= 400

    # Every write went over the chat socket, none through the API.
    assert alice_api == [] and bob_api == [], alice_api + bob_api
    for person in (alice, bob):
        assert person.errors == [], person.errors
        assert person.csp_violations == [], person.csp_violations


def test_scrolling_back_through_the_archive(
    server_factory: ServerFactory, browser: Any, shots: Path
) -> None:
    server = server_factory(chat_live_messages=20, chat_write_rate=1000, chat_write_burst=1000)
    alice = Person(browser, server, "Alice")
    with api_client(server, alice.user_id) as owner:
        assert owner.post("/rooms", json={"id": "long", "title": "Long"}).status_code == 201
        for n in range(1, 76):
            body = {"text": f"message number {n}", "client_id": f"c{n}"}
            assert owner.post("/rooms/long/messages", json=body).status_code == 201
    alice.goto("/r/long")
    alice.page.wait_for_selector('.message-text:text-is("message number 75")', timeout=TIMEOUT)
    # The chat doc holds the latest 20: the rest comes from the history API, page by page.
    for _ in range(20):
        if alice.page.locator(".history-start").count():
            break
        alice.page.eval_on_selector(".chat .messages", "(el) => { el.scrollTop = 0 }")
        alice.page.wait_for_timeout(300)
    alice.page.wait_for_selector(".history-start", timeout=TIMEOUT)
    texts = alice.page.eval_on_selector_all(
        ".chat .message .message-text", "(els) => els.map((e) => e.textContent)"
    )
    assert texts == [f"message number {n}" for n in range(1, 76)]
    alice.shot(shots, "1-archive-top")
    # New messages still arrive at the bottom after paging back.
    alice.page.fill(".composer-input", "and one more")
    alice.page.keyboard.press("Enter")
    alice.page.wait_for_selector('.message[data-state="sent"]:has-text("and one more")')
    assert alice.errors == []
