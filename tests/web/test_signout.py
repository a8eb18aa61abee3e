"""What one person leaves in a browser profile after logging out: nothing the next person sees.

Alice's message that the server refused stays in her IndexedDB outbox (failed, with a retry).
She logs out with the sidebar's button; Bob signs in in the same browser profile and opens the
same room: Alice's message must not show up among his (as "his" failed message, one click from
being posted under his name), nor stay in the profile's outbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.support.server import ServerFactory
from tests.web.conftest import Person
from tests.web.test_workspace import TIMEOUT, api_client

OUTBOX_TEXTS = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open('collab-outbox', 1)
  open.onupgradeneeded = () => open.result.createObjectStore('pending', { keyPath: 'client_id' })
  open.onerror = () => reject(open.error)
  open.onsuccess = () => {
    const all = open.result.transaction('pending').objectStore('pending').getAll()
    all.onsuccess = () => (open.result.close(), resolve(all.result.map((p) => p.text)))
    all.onerror = () => reject(all.error)
  }
})"""


def test_the_next_user_of_a_browser_never_sees_my_outbox(
    server_factory: ServerFactory, browser: Any, shots: Path
) -> None:
    server = server_factory(max_message_length=20)
    alice = Person(browser, server, "Alice")
    bob_id = server.create_user("Bob")
    with api_client(server, alice.user_id) as owner:
        assert owner.post("/rooms", json={"id": "r", "title": "R"}).status_code == 201
        added = owner.post("/rooms/r/members", json={"user_id": bob_id, "role": "editor"})
        assert added.status_code == 201
    secret = "Alice's private words, too long."
    alice.goto("/r/r")
    alice.page.fill(".composer-input", secret)
    alice.page.keyboard.press("Enter")
    alice.page.wait_for_selector('.message[data-state="failed"]', timeout=TIMEOUT)
    assert alice.page.evaluate(OUTBOX_TEXTS) == [secret]
    alice.shot(shots, "1-alice-failed")

    alice.page.click('form.logout button[type="submit"]')
    alice.page.wait_for_selector("text=You are signed out", timeout=TIMEOUT)

    # Bob signs in in the same browser profile and opens the same room.
    bob_secret = server.session(bob_id)
    alice.context.add_cookies(
        [{"name": "collab_session", "value": bob_secret, "url": alice.base_url}]
    )
    page = alice.page
    page.goto(alice.base_url + "/r/r")
    page.wait_for_selector("#user-name:text('Bob')", timeout=TIMEOUT)
    page.fill(".composer-input", "Bob here.")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-state="sent"] .message-text:text("Bob here.")')
    alice.shot(shots, "2-bob")
    page.wait_for_function(
        "() => document.querySelectorAll('.message.pending').length === 0", timeout=TIMEOUT
    )
    assert page.locator(".message .message-text").all_text_contents() == ["Bob here."]
    assert page.evaluate(OUTBOX_TEXTS) == []
    assert alice.errors == []


def test_logging_out_leaves_nothing_an_offline_reload_would_show(
    server_factory: ServerFactory, browser: Any, shots: Path
) -> None:
    """The cached answers (who I am, my rooms) let a reload while offline open the workspace.
    After a logout that is the last user's workspace, shown to whoever opens the app next in
    this profile while the server cannot be reached: logging out empties them at once."""
    server = server_factory(max_message_length=20)
    alice = Person(browser, server, "Alice")
    with api_client(server, alice.user_id) as owner:
        assert owner.post("/rooms", json={"id": "ops", "title": "Ops"}).status_code == 201
    alice.goto("/r/ops")
    alice.page.fill(".composer-input", "Unsent at logout, far too long.")
    alice.page.keyboard.press("Enter")
    alice.page.wait_for_selector('.message[data-state="failed"]', timeout=TIMEOUT)
    alice.page.wait_for_function(
        "() => navigator.serviceWorker.controller !== null", timeout=TIMEOUT
    )
    alice.page.click('form.logout button[type="submit"]')
    alice.page.wait_for_selector("text=You are signed out", timeout=TIMEOUT)
    left = alice.page.evaluate(
        "() => Object.keys(localStorage).filter((k) => k.startsWith('collab-cache:'))"
    )
    assert left == []
    assert alice.page.evaluate(OUTBOX_TEXTS) == []

    server.terminate()
    try:
        alice.goto("/")
    except Exception:  # no offline shell any more: the browser's own error page
        pass
    else:
        alice.page.wait_for_selector("text=Cannot reach the server", timeout=TIMEOUT)
    finally:
        alice.shot(shots, "offline-after-logout")
    alice.shot(shots, "offline-after-logout")
    assert alice.page.locator("text=Ops").count() == 0
    assert alice.page.locator("#user-name").count() == 0


def test_a_tab_of_the_last_user_never_writes_as_the_next_one(
    server_factory: ServerFactory, browser: Any, shots: Path
) -> None:
    """Alice's tab stays open while Bob signs in in another tab of the same profile (his login
    replaces her session: her sockets close with 4401). What her tab sends from then on goes
    with the profile's cookie, Bob's: it must be refused, never done as Bob."""
    server = server_factory()
    alice = Person(browser, server, "Alice")
    with api_client(server, alice.user_id) as owner:
        assert owner.post("/rooms", json={"id": "r", "title": "R"}).status_code == 201
        alice.goto("/r/r")
        alice.page.wait_for_selector(".composer-input", timeout=TIMEOUT)

        other = alice.context.new_page()
        query = urlencode({"token": server.dev_token, "name": "Bob"})
        other.goto(f"{alice.base_url}/login?{query}")
        other.wait_for_selector("#user-name:text('Bob')", timeout=TIMEOUT)
        bob_id = other.evaluate("fetch('auth/session').then((r) => r.json())")["user"]["id"]
        added = owner.post("/rooms/r/members", json={"user_id": bob_id, "role": "editor"})
        assert added.status_code == 201
        alice.page.wait_for_selector(".banner.error", timeout=TIMEOUT)  # 4401: session ended

        alice.page.fill(".composer-input", "Typed in Alice's tab.")
        alice.page.keyboard.press("Enter")
        alice.page.wait_for_selector(
            '.message.pending:not([data-state="sending"])', timeout=TIMEOUT
        )
        alice.shot(shots, "alice-tab-after-bob-signed-in")
        items = owner.get("/rooms/r/messages").json()["items"]
    assert [(m["author"]["id"], m["text"]) for m in items] == []
