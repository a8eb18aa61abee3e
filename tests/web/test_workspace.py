"""Two people in two browser contexts (issue 10, Done means 2 and 4; in 2, two named dev users
signed in through the dev login URL with &name=): both see a posted
message, whose state goes to "sent"; they co-edit a CodeMirror doc and a Tiptap doc (equal in
both browsers and on the server); each sees the other's presence and cursor, with no CSP
violation (Done means 6). An owner's downgrade to viewer turns the other's editor read-only and
their chat box off without a reload; an upgrade restores both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import httpx
from pycrdt import XmlFragment

from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, _run_in_thread
from tests.web.conftest import Person

TIMEOUT = 15_000  # ms, Playwright's unit

# The editor's text without the remote carets' name labels (they are part of the DOM text).
CM_TEXT = """() => [...document.querySelectorAll('.cm-line')].map((line) => {
  const copy = line.cloneNode(true)
  copy.querySelectorAll('.cm-ySelectionCaret, .cm-ySelectionInfo').forEach((n) => n.remove())
  return copy.textContent
}).join('\\n')"""
RICH_TEXT = """() => [...document.querySelectorAll('.ProseMirror > *')].map((block) => {
  const copy = block.cloneNode(true)
  copy.querySelectorAll('.collaboration-carets__caret').forEach((n) => n.remove())
  return copy.textContent
}).join('\\n')"""


def api_client(server: CollabServer, user_id: str) -> httpx.Client:
    token = server.api_token(user_id)
    return httpx.Client(
        base_url=server.http_url + "/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def server_content(server: CollabServer, room: str, doc: str) -> tuple[str, str]:
    """(the doc's Y.Text "text", the text of its XmlFragment "default") as the server has it."""

    async def read() -> tuple[str, str]:
        with anyio.fail_after(10):
            peer = await RawPeer.connect(server.ws_url(room, doc))
            rich = str(peer.doc.get("default", type=XmlFragment))
            await peer.close()
        return str(peer.text), rich

    return _run_in_thread(read())


def xml_text(xml: str) -> str:
    return "\n".join(
        re.sub(r"<[^>]+>", "", p) for p in re.findall(r"<paragraph>.*?</paragraph>", xml)
    )


def setup_room(server: CollabServer, alice: Person, bob: Person, bob_role: str) -> httpx.Client:
    owner = api_client(server, alice.user_id)
    assert owner.post("/rooms", json={"id": "team", "title": "Team"}).status_code == 201
    added = owner.post("/rooms/team/members", json={"user_id": bob.user_id, "role": bob_role})
    assert added.status_code == 201
    for name, title, kind in (("notes", "Notes", "text"), ("spec", "Spec", "rich")):
        body = {"title": title, "kind": kind}
        assert owner.patch(f"/rooms/team/docs/{name}", json=body).status_code == 201
    return owner


def test_two_people_chat_and_co_edit(server: CollabServer, browser: Any, shots: Path) -> None:
    # Two named dev users, signed in through the dev login URL as a newcomer would.
    alice = Person(browser, server, "Alice", dev_login=True)
    bob = Person(browser, server, "Bob", dev_login=True)
    setup_room(server, alice, bob, "editor").close()
    for person in (alice, bob):
        person.goto("/r/team")
        person.page.wait_for_selector(".composer-input", timeout=TIMEOUT)
    # Each sees the other in the room header.
    alice.page.wait_for_selector('.presence [data-user="Bob"]', timeout=TIMEOUT)
    bob.page.wait_for_selector('.presence [data-user="Alice"]', timeout=TIMEOUT)

    alice.page.fill(".composer-input", "Hello Bob, the notes are ready.")
    alice.page.keyboard.press("Enter")
    mine = '.message[data-state="sent"] .message-text:text("Hello Bob, the notes are ready.")'
    alice.page.wait_for_selector(mine, timeout=TIMEOUT)
    bob.page.wait_for_selector('.message-text:text("Hello Bob, the notes are ready.")')
    bob.page.fill(".composer-input", "Thanks!\nOn it.")
    bob.page.keyboard.press("Enter")
    alice.page.wait_for_selector('.message-text:text("On it.")', timeout=TIMEOUT)
    alice.shot(shots, "1-chat-alice")
    bob.shot(shots, "1-chat-bob")

    # CodeMirror: both type; the contents converge, each sees the other's named cursor.
    for person in (alice, bob):
        person.page.click('.doc-link:has-text("Notes")')
        person.page.wait_for_selector(".cm-content[contenteditable=true]", timeout=TIMEOUT)
    alice.page.click(".cm-content")
    alice.page.keyboard.type("# Notes from Alice\n")
    bob.page.wait_for_function(f"() => ({CM_TEXT})().includes('from Alice')", timeout=TIMEOUT)
    bob.page.click(".cm-content")
    bob.page.keyboard.press("Control+End")
    bob.page.keyboard.type("Bob adds a line.")
    want = "# Notes from Alice\nBob adds a line."
    for person in (alice, bob):
        person.page.wait_for_function(f"() => ({CM_TEXT})() === {want!r}", timeout=TIMEOUT)
    alice.page.wait_for_selector('.cm-ySelectionInfo:text("Bob")', state="attached")
    bob.page.wait_for_selector('.cm-ySelectionInfo:text("Alice")', state="attached")
    alice.page.wait_for_selector('.save-mark[data-state="saved"]', timeout=TIMEOUT)
    alice.shot(shots, "2-codemirror-alice")
    bob.shot(shots, "2-codemirror-bob")
    assert server_content(server, "team", "notes")[0] == want

    # Tiptap: the same with rich text and carets.
    for person in (alice, bob):
        person.page.click('a[aria-label="Back to the room"]')
        person.page.click('.doc-link:has-text("Spec")')
        person.page.wait_for_selector(".ProseMirror[contenteditable=true]", timeout=TIMEOUT)
    alice.page.click(".ProseMirror")
    alice.page.keyboard.type("Alice writes the spec.")
    bob.page.wait_for_function(f"() => ({RICH_TEXT})().includes('the spec.')", timeout=TIMEOUT)
    bob.page.click(".ProseMirror")
    bob.page.keyboard.press("Control+End")
    bob.page.keyboard.press("Enter")
    bob.page.keyboard.type("Bob reviews it.")
    want = "Alice writes the spec.\nBob reviews it."
    for person in (alice, bob):
        person.page.wait_for_function(f"() => ({RICH_TEXT})() === {want!r}", timeout=TIMEOUT)
    alice.page.wait_for_selector('.collaboration-carets__label:text("Bob")', timeout=TIMEOUT)
    bob.page.wait_for_selector('.collaboration-carets__label:text("Alice")', timeout=TIMEOUT)
    alice.page.wait_for_selector('.save-mark[data-state="saved"]', timeout=TIMEOUT)
    alice.shot(shots, "3-tiptap-alice")
    bob.shot(shots, "3-tiptap-bob")
    assert xml_text(server_content(server, "team", "spec")[1]) == want
    # Presence says where each one is.
    alice.page.wait_for_selector('.presence [data-user="Bob"][data-doc="spec"]')

    for person in (alice, bob):
        assert person.csp_violations == [], person.csp_violations
        assert person.errors == [], person.errors


def test_a_downgrade_turns_the_editor_and_chat_box_read_only_live(
    server: CollabServer, browser: Any, shots: Path
) -> None:
    alice, bob = Person(browser, server, "Alice"), Person(browser, server, "Bob")
    owner = setup_room(server, alice, bob, "editor")
    bob.goto("/r/team/d/notes")
    bob.page.wait_for_selector(".cm-content[contenteditable=true]", timeout=TIMEOUT)
    assert bob.page.is_enabled(".composer-input")
    bob.page.click(".cm-content")
    bob.page.keyboard.type("typed as an editor")

    demoted = owner.patch(f"/rooms/team/members/{bob.user_id}", json={"role": "viewer"})
    assert demoted.status_code == 200
    bob.page.wait_for_selector(".cm-content[contenteditable=false]", timeout=TIMEOUT)
    bob.page.wait_for_selector(".composer-input:disabled", timeout=TIMEOUT)
    bob.page.wait_for_selector(".readonly-banner:visible")
    assert "viewer" in (bob.page.text_content(".readonly-banner") or "")
    bob.shot(shots, "1-viewer")

    restored = owner.patch(f"/rooms/team/members/{bob.user_id}", json={"role": "editor"})
    assert restored.status_code == 200
    bob.page.wait_for_selector(".cm-content[contenteditable=true]", timeout=TIMEOUT)
    bob.page.wait_for_selector(".composer-input:enabled", timeout=TIMEOUT)
    assert bob.page.is_hidden(".readonly-banner")
    bob.page.click(".cm-content")
    bob.page.keyboard.press("Control+End")
    bob.page.keyboard.type(", and again")
    bob.page.wait_for_selector('.save-mark[data-state="saved"]', timeout=TIMEOUT)
    bob.shot(shots, "2-editor-again")
    assert server_content(server, "team", "notes")[0] == "typed as an editor, and again"
    assert bob.errors == []
    owner.close()
