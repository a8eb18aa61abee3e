"""GET /api/v1/search against a real server (issue 13, Done means 1-3).

Chat is written through POST /rooms/{room}/messages, documents through a Yjs peer over the
socket (a Y.Text, and an XmlFragment as Tiptap writes it); the index follows on its own. Then:
a word, a prefix, a phrase and a Chinese substring find both; an edit is found by its new text
only; deletions of a message, a doc and a room leave nothing; a removed member stops seeing a
room at once; a room token limited to one doc finds nothing elsewhere; hostile and malformed
queries get 400 or results, never a 500 or a hang; a flood gets 429.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from tests.api.conftest import Api, assert_error
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.tokens import seconds_past_exp
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

MESSAGE = "The 离线消息推送 service ships offline delivery on Friday"
PARAGRAPH = "Design notes: 离线消息推送 keeps offline delivery ordered."


@pytest.fixture
def server(server_factory: ServerFactory) -> CollabServer:
    # Tests poll: a burst that lasts them (the flood test has a server of its own).
    return server_factory(search_index_delay=0.05, search_burst=10_000)


def search(client: httpx.Client, q: str, **params: Any) -> httpx.Response:
    return client.get("/search", params={"q": q, **params})


def keys(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["message"] or item["doc"] for item in response.json()["items"]]


def post(client: httpx.Client, room: str, text: str, cid: str) -> dict[str, Any]:
    r = client.post(f"/rooms/{room}/messages", json={"text": text, "client_id": cid})
    assert r.status_code == 201, r.text
    found: dict[str, Any] = r.json()
    return found


async def write_doc(
    server: CollabServer, room: str, name: str, build: Callable[[Doc[Any]], None]
) -> None:
    """Write a doc through a Yjs peer and wait until the server has it on disk."""
    doc: Doc[Any] = Doc()
    build(doc)
    with anyio.fail_after(10):
        peer = await RawPeer.connect(server.ws_url(room, name), doc=doc)
        await peer.request_saved(1)
        await peer.wait_for(lambda: peer.saved >= 1)
        await peer.close()


def tiptap(text: str) -> Callable[[Doc[Any]], None]:
    def build(doc: Doc[Any]) -> None:
        fragment = doc.get("default", type=XmlFragment)
        fragment.children.append(XmlElement("paragraph", {}, [XmlText("Intro.")]))
        fragment.children.append(XmlElement("paragraph", {}, [XmlText(text)]))

    return build


def plain(text: str) -> Callable[[Doc[Any]], None]:
    def build(doc: Doc[Any]) -> None:
        doc["text"] = Text(text)

    return build


async def until_found(client: httpx.Client, q: str, expected: list[str], **params: Any) -> None:
    await wait_until(
        lambda: keys(search(client, q, **params)) == expected,
        what=lambda: f"{q!r}: {search(client, q, **params).text}",
    )


async def test_found_by_a_word_a_prefix_a_phrase_and_a_chinese_substring(
    api: Api, server: CollabServer
) -> None:
    room = api.room("r")
    message = post(api.dev.http, room, MESSAGE, "c1")
    await write_doc(server, room, "notes", tiptap(PARAGRAPH))
    both = ["notes", message["id"]]  # newest first: the doc was indexed after the post
    await until_found(api.dev.http, "delivery", both)
    for q in ("Delivery", "deliv*", '"offline delivery"', "消息", "消息推", "离线消息推送", "推"):
        assert keys(search(api.dev.http, q)) == both, q
    assert keys(search(api.dev.http, "ships Friday")) == [message["id"]]
    assert keys(search(api.dev.http, '"delivery ordered"')) == ["notes"]
    assert keys(search(api.dev.http, '"delivery Friday"')) == []
    assert keys(search(api.dev.http, "消息", kind="chat")) == [message["id"]]
    assert keys(search(api.dev.http, "消息", kind="doc", room=room)) == ["notes"]
    items = search(api.dev.http, "消息推").json()["items"]
    chat = next(i for i in items if i["kind"] == "chat")
    assert chat["room"] == room and chat["seq"] == 1 and chat["author"] == api.dev.user_id
    assert chat["time"] == message["created_at"] and chat["doc"] is None
    assert [chat["snippet"][s:e] for s, e in chat["highlights"]] == ["消息推"]
    assert "<mark>消息推</mark>" in chat["snippet_html"]
    doc = next(i for i in items if i["kind"] == "doc")
    assert doc["doc"] == "notes" and doc["message"] is None and "离线消息推送" in doc["snippet"]


async def test_edits_and_deletions(api: Api, server: CollabServer) -> None:
    room = api.room("r")
    first = post(api.dev.http, room, "draft wording about apples", "c1")
    await until_found(api.dev.http, "apples", [first["id"]])
    edited = api.dev.http.patch(f"/rooms/{room}/messages/{first['id']}", json={"text": "pears"})
    assert edited.status_code == 200
    await until_found(api.dev.http, "pears", [first["id"]])
    assert keys(search(api.dev.http, "apples")) == []
    assert api.dev.http.delete(f"/rooms/{room}/messages/{first['id']}").status_code == 204
    await until_found(api.dev.http, "pears", [])

    await write_doc(server, room, "notes", plain("the 离线消息推送 doc"))
    await until_found(api.dev.http, "消息推", ["notes"])
    assert api.dev.http.delete(f"/rooms/{room}/docs/notes").status_code == 204
    assert keys(search(api.dev.http, "消息推")) == []  # at once: the API answered after
    assert keys(search(api.dev.http, "消息")) == []

    secret = post(api.dev.http, room, "room-wide secret", "c2")
    await until_found(api.dev.http, "secret", [secret["id"]])
    assert api.dev.http.delete(f"/rooms/{room}").status_code == 204
    api.room("r")  # a new room under the same id sees nothing of the old one
    assert keys(search(api.dev.http, "secret")) == []
    assert keys(search(api.dev.http, "secret", room="r")) == []


async def test_archived_messages_are_found(server_factory: ServerFactory) -> None:
    server = server_factory(chat_live_messages=2)
    api = Api(server)
    try:
        room = api.room("r")
        ids = [post(api.dev.http, room, f"numbered entry {i}", f"c{i}")["id"] for i in range(6)]
        await until_found(api.dev.http, "entry", ids[::-1])
        page = search(api.dev.http, "entry", limit=4).json()
        assert [i["message"] for i in page["items"]] == ids[:1:-1]
        rest = search(api.dev.http, "entry", limit=4, cursor=page["next_cursor"]).json()
        assert [i["message"] for i in rest["items"]] == ids[1::-1] and rest["next_cursor"] is None
    finally:
        api.close()


async def test_only_rooms_the_caller_may_read_now(api: Api, server: CollabServer) -> None:
    viewer, commenter, outsider = api.user("viewer"), api.user("commenter"), api.user("out")
    editor = api.user("editor")
    members = {viewer.user_id: "viewer", commenter.user_id: "commenter", editor.user_id: "editor"}
    room = api.room("r", api.dev, **members)
    other = api.room("other", owner=outsider)
    mine = post(api.dev.http, room, "quarterly numbers", "c1")
    theirs = post(outsider.http, other, "quarterly secrets", "c2")
    await write_doc(server, room, "notes", plain("quarterly notes"))
    await until_found(api.dev.http, "quarterly", ["notes", mine["id"]])
    for member in (viewer, commenter, editor, api.dev):  # every role reads; the dev owns
        assert keys(search(member.http, "quarterly")) == ["notes", mine["id"]]
    assert keys(search(outsider.http, "quarterly")) == [theirs["id"]]
    assert_error(search(outsider.http, "quarterly", room=room), 404, "not_found")
    assert_error(search(outsider.http, "quarterly", room="no-such-room"), 404, "not_found")
    assert_error(search(api.anonymous(), "quarterly"), 401, "unauthorized")

    assert api.dev.http.delete(f"/rooms/{room}/members/{viewer.user_id}").status_code == 204
    assert keys(search(viewer.http, "quarterly")) == []  # at once
    assert_error(search(viewer.http, "quarterly", room=room), 404, "not_found")
    assert keys(search(commenter.http, "quarterly")) == ["notes", mine["id"]]


async def test_direct_messages_are_searched_by_their_two_people(api: Api) -> None:
    alice, bob, carol = api.user("alice"), api.user("bob"), api.user("carol")
    dm = alice.http.post("/dms", json={"user": bob.user_id}).json()["id"]
    said = post(bob.http, dm, "the 私信 password hint", "c1")
    await until_found(alice.http, "私信", [said["id"]])
    assert keys(search(bob.http, "password hint")) == [said["id"]]
    assert keys(search(carol.http, "password")) == []
    assert_error(search(carol.http, "password", room=dm), 404, "not_found")


async def test_a_room_token_finds_only_its_docs(api: Api, server: CollabServer) -> None:
    alice = api.user("alice")
    room = api.room("r", owner=alice)
    api.room("elsewhere", owner=alice)
    post(alice.http, room, "launch checklist in chat", "c1")
    post(alice.http, "elsewhere", "launch checklist elsewhere", "c2")
    await write_doc(server, room, "notes", plain("launch checklist in notes"))
    await write_doc(server, room, "plan", plain("launch checklist in plan"))
    await until_found(alice.http, "launch", ["plan", "notes"], kind="doc")
    minted = alice.http.post(f"/rooms/{room}/tokens", json={"docs": "notes", "role": "viewer"})
    token = minted.json()
    notes_only = api.bearer(token["token"])
    assert keys(search(notes_only, "launch")) == ["notes"]
    assert keys(search(notes_only, "la")) == ["notes"]
    assert keys(search(notes_only, "launch", kind="chat")) == []
    assert_error(search(notes_only, "launch", room="elsewhere"), 403, "forbidden")
    whole = alice.http.post(f"/rooms/{room}/tokens", json={"role": "viewer"}).json()
    assert len(keys(search(api.bearer(whole["token"]), "launch"))) == 3  # chat and both docs
    assert alice.http.delete(f"/rooms/{room}/tokens/{token['id']}").status_code == 204
    assert_error(search(notes_only, "launch"), 401, "unauthorized")
    brief = alice.http.post(f"/rooms/{room}/tokens", json={"ttl": 1, "role": "viewer"}).json()
    assert len(keys(search(api.bearer(brief["token"]), "launch"))) == 3
    await anyio.sleep(seconds_past_exp(brief["token"]))  # the scenario: its one second runs out
    assert_error(search(api.bearer(brief["token"]), "launch"), 401)
    personal = alice.http.post("/tokens", json={"name": "script"}).json()
    assert len(keys(search(api.bearer(personal["token"]), "launch"))) == 4
    assert alice.http.delete(f"/tokens/{personal['id']}").status_code == 204
    assert_error(search(api.bearer(personal["token"]), "launch"), 401, "unauthorized")


HOSTILE = [
    '"',
    '"""',
    "*",
    "**",
    "NEAR(",
    "NEAR(a b)",
    "NEAR(a b, 2)",
    "a NEAR b",
    "text:launch",
    "col:*",
    "{text}: x",
    "^launch",
    "a OR b",
    "a AND",
    "NOT a",
    "-launch",
    "(launch",
    "launch)",
    "'; DROP TABLE entries; --",
    "%",
    "_",
    "\\",
    "launch\\",
    "\u200b",
    "😀",
    "la*unch",
    '"launch"*',
    "a" * 256,
]


async def test_fts_syntax_is_never_syntax(api: Api) -> None:
    """400 or results for each, never a 500; a hang would fail the client's 10 s timeout."""
    room = api.room("r")
    said = post(api.dev.http, room, 'launch "NEAR(a b)" text:launch 100% a_b', "c1")
    await until_found(api.dev.http, "launch", [said["id"]])
    for q in HOSTILE:
        r = search(api.dev.http, q)
        assert r.status_code in (200, 400), (q, r.text)
    assert keys(search(api.dev.http, '"NEAR(a b)"')) != []
    assert keys(search(api.dev.http, "text:launch")) != []
    for q, message in [
        ("", "nothing to search for"),
        ('"open', "unclosed quote"),
        ("a" * 257, "longer than"),
        ("x" * 10_240, "longer than"),
        ("a\x00b", "control characters"),
        (" ".join(["w"] * 17), "more than"),
    ]:
        r = search(api.dev.http, q)
        assert_error(r, 400, "bad_request")
        assert message in r.json()["error"]["message"]
    big = api.dev.http.get("/search", params={"q": "消" * 3_000})  # 27 KB as a URL
    assert big.status_code in (400, 414, 431), big.status_code
    for params, code in [
        ({"kind": "files"}, "bad_request"),
        ({"limit": "0"}, "bad_request"),
        ({"limit": "100000"}, "bad_request"),
        ({"limit": "x"}, "bad_request"),
        ({"cursor": "!!"}, "bad_request"),
        ({"cursor": "WyJ4Il0"}, "bad_request"),  # ["x"]
        ({"cursor": "WzBd"}, "bad_request"),  # [0]
        ({"room": "bad room"}, "bad_name"),
    ]:
        assert_error(search(api.dev.http, "launch", **params), 400, code)


async def test_memory_store(server_factory: ServerFactory) -> None:
    server = server_factory(store="memory://", search_index_delay=0.05)
    api = Api(server)
    try:
        room = api.room("r")
        message = post(api.dev.http, room, MESSAGE, "c1")
        await write_doc(server, room, "notes", tiptap(PARAGRAPH))
        await until_found(api.dev.http, "消息", ["notes", message["id"]])
        assert api.dev.http.delete(f"/rooms/{room}/docs/notes").status_code == 204
        assert keys(search(api.dev.http, "消息推")) == [message["id"]]
    finally:
        api.close()


async def test_a_flood_of_searches_is_rate_limited(server_factory: ServerFactory) -> None:
    server = server_factory(search_burst=3, search_rate=0.05)
    api = Api(server)
    try:
        alice, bob = api.user("alice"), api.user("bob")
        statuses = [search(alice.http, "anything").status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        refused = search(alice.http, "anything")
        assert_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 30
        assert search(bob.http, "anything").status_code == 200
    finally:
        api.close()
