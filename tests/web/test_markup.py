"""A message's light markup as the workspace renders it, against docs/chat.md ("Text"): what is
shown as a mention (and as a mention of me) is what the server counts as one, and links are
only ever http(s) URLs, whatever the text tries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.server import CollabServer
from tests.web.conftest import Person
from tests.web.test_workspace import TIMEOUT, api_client

MARKUP = """() => [...document.querySelectorAll('.message .message-text')].map((p) => ({
  text: p.textContent,
  mentions: [...p.querySelectorAll('.mention')].map((m) => m.textContent),
  mine: [...p.querySelectorAll('.mention-me')].map((m) => m.textContent),
  code: [...p.querySelectorAll('code')].map((c) => c.textContent),
  links: [...p.querySelectorAll('a')].map((a) => a.getAttribute('href')),
}))"""

# (text, the mentions shown, those shown as mine (Bob's), code spans, link targets)
CASES: list[tuple[str, list[str], list[str], list[str], list[str]]] = [
    ("Lunch @bob?", ["@bob"], ["@bob"], [], []),
    ("Write to bob@example.com", [], [], [], []),
    ("Tell @bob@example.com", [], [], [], []),
    ("@room standup", ["@room"], ["@room"], [], []),
    ("@here and @everyone name nobody", ["@here", "@everyone"], [], [], []),
    ("```\n@bob in a fence left open", [], [], ["@bob in a fence left open"], []),
    ("see `@bob` and (@bob)", ["@bob"], ["@bob"], ["@bob"], []),
    ("javascript:alert(1) JaVaScRiPt:x data:text/html,x", [], [], [], []),
    ("go https://example.com/a?b=1. now", [], [], [], ["https://example.com/a?b=1"]),
]


def test_mentions_code_and_links_as_the_docs_define_them(
    server: CollabServer, browser: Any, shots: Path
) -> None:
    alice = Person(browser, server, "Alice")
    bob = Person(browser, server, "Bob")
    with api_client(server, alice.user_id) as owner:
        assert owner.post("/rooms", json={"id": "r", "title": "R"}).status_code == 201
        added = owner.post("/rooms/r/members", json={"user_id": bob.user_id, "role": "editor"})
        assert added.status_code == 201
        named = []
        for n, (text, *_) in enumerate(CASES):
            posted = owner.post("/rooms/r/messages", json={"text": text, "client_id": f"m{n}"})
            assert posted.status_code == 201, posted.text
            named.append(bool(posted.json()["mentions"]))
    bob.goto("/r/r")
    bob.page.wait_for_function(
        f"() => document.querySelectorAll('.message .message-text').length === {len(CASES)}",
        timeout=TIMEOUT,
    )
    bob.shot(shots, "markup")
    shown = bob.page.evaluate(MARKUP)
    for case, found, server_named in zip(CASES, shown, named, strict=True):
        text, mentions, mine, code, links = case
        got = (found["mentions"], found["mine"], found["code"], found["links"])
        assert got == (mentions, mine, code, links), text
        assert server_named == bool(mine), text  # shown as mine exactly when the server says so
    assert bob.errors == []
