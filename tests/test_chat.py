"""The `chat` doc over real sockets: what y-websocket and pycrdt clients render, forged writes,
durability across kill -9 and SIGTERM, and the live window's archive boundary."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Doc, Map

from collab.chat.schema import DEFAULTS  # left out of a message's map (docs/chat.md)
from tests.api.conftest import Api
from tests.support.jspeer import JsPeer
from tests.support.pyclient import provider
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory

pytestmark = pytest.mark.anyio

REQUIRED = {"id", "seq", "author", "created_at", "text"}


def post(client: httpx.Client, room: str, text: str, cid: str, **extra: Any) -> dict[str, Any]:
    r = client.post(f"/rooms/{room}/messages", json={"text": text, "client_id": cid, **extra})
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


def rendered(messages: dict[str, Any]) -> list[tuple[int, str, str, bool, Any]]:
    """What a client shows: messages in seq order (never the map's order)."""
    ordered = sorted(({**DEFAULTS, **m} for m in messages.values()), key=lambda m: m["seq"])
    return [
        (int(m["seq"]), m["author"]["id"], m["text"], m["deleted"], m["reactions"]) for m in ordered
    ]


def doc_messages(doc: Doc[Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc.get("messages", type=Map).to_py() or {}
    return found


async def wait_doc(doc: Doc[Any], check: Any, within: float = 10) -> None:
    with anyio.fail_after(within):
        while not check(doc_messages(doc)):
            await asyncio.sleep(0.02)


async def test_two_users_chat_and_both_kinds_of_client_render_the_same(
    server: CollabServer,
) -> None:
    api = Api(server)
    alice, bob = api.user("alice"), api.user("bob")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "editor"})
    url = server.ws_url(room, "chat", token=bob.token)
    async with JsPeer(server.ws_base, f"{room}/chat", {"token": alice.token}) as js:
        async with provider(url) as (doc, _):
            first = post(alice.http, room, "hello", "a1")
            reply = post(bob.http, room, "hi alice", "b1", thread=first["id"])
            gone = post(bob.http, room, "oops", "b2")
            alice.http.patch(f"/rooms/{room}/messages/{first['id']}", json={"text": "hello!"})
            bob.http.put(f"/rooms/{room}/messages/{first['id']}/reactions/🎉")
            assert bob.http.delete(f"/rooms/{room}/messages/{gone['id']}").status_code == 204
            items = api.dev.http.get(f"/rooms/{room}/messages").json()["items"]
            want = [
                (m["seq"], m["author"]["id"], m["text"], m["deleted"], m["reactions"])
                for m in items
            ]
            assert want == [
                (1, alice.user_id, "hello!", False, {"🎉": [bob.user_id]}),
                (2, bob.user_id, "hi alice", False, {}),
                (3, bob.user_id, "", True, {}),
            ]
            await wait_doc(doc, lambda m: rendered(m) == want)
            js_messages = (await js.call({"op": "map", "name": "messages", "size": 3}))["value"]
            with anyio.fail_after(10):
                while rendered(js_messages) != want:
                    await asyncio.sleep(0.05)
                    js_messages = (await js.call({"op": "map", "name": "messages"}))["value"]
            py_messages = doc_messages(doc)
            for messages in (js_messages, py_messages):
                for m in messages.values():  # only the keys off their default (docs/chat.md)
                    assert REQUIRED <= set(m) <= REQUIRED | set(DEFAULTS), m
                    assert all(m[key] != value for key, value in DEFAULTS.items() if key in m), m
                assert set(messages[reply["id"]]) == REQUIRED | {"thread"}
                assert set(messages[gone["id"]]) == REQUIRED | {"deleted", "edited_at"}
                assert set(messages[first["id"]]) == REQUIRED | {
                    "edited_at",
                    "reply_count",
                    "last_reply_at",
                    "reactions",
                }
                assert messages[reply["id"]]["thread"] == first["id"]
                assert messages[first["id"]]["reply_count"] == 1
                assert messages[first["id"]]["author"]["name"] == "alice"
            info = (await js.call({"op": "map", "name": "info"}))["value"]
            assert info["last_seq"] == 3 and info["archived_through"] == 0
    api.close()


async def test_forged_writes_to_chat_are_refused_and_change_nothing(server: CollabServer) -> None:
    api = Api(server)
    alice, bob = api.user("alice"), api.user("bob")
    room = api.room("r", owner=api.dev, **{alice.user_id: "editor", bob.user_id: "editor"})
    mine = post(alice.http, room, "alice wrote this", "a1")
    forgers = [server.ws_url(room, "chat", token=bob.token), server.ws_url(room, "chat")]
    for url in forgers:  # an editor, and the owner (the dev user owns the room)
        peer = await RawPeer.connect(url)
        try:
            messages = peer.doc.get("messages", type=Map)
            await wait_doc(peer.doc, lambda m: mine["id"] in m)
            before = peer.doc.get_state()
            forged = {"text": "bob wrote this", "author": {"id": "someone", "name": "x"}}
            messages[mine["id"]] = {**messages[mine["id"]], **forged}
            await peer.websocket.send(_update(peer.doc.get_update(before)))
            await peer.wait_for(lambda p=peer: bool(p.other_frames))
            assert peer.other_frames[0][0] == 2  # permission denied, once; the socket stays
            post(alice.http, room, "still live", f"a-{len(url)}")
            await wait_doc(peer.doc, lambda m: len(m) >= 2)
            assert peer.close_code is None
        finally:
            await peer.close()
    async with provider(forgers[0]) as (doc, _):  # a pycrdt Provider writing directly
        await wait_doc(doc, lambda m: mine["id"] in m)
        held = doc.get("messages", type=Map)
        held[mine["id"]] = {**held[mine["id"]], "text": "forged by pycrdt"}
        await asyncio.sleep(0.3)
    fresh: Doc[Any] = Doc()
    async with provider(server.ws_url(room, "chat"), fresh):
        await wait_doc(fresh, lambda m: len(m) == 3)
        assert doc_messages(fresh)[mine["id"]]["text"] == "alice wrote this"
        assert doc_messages(fresh)[mine["id"]]["author"]["id"] == alice.user_id
    stored = api.dev.http.get(f"/rooms/{room}/messages/{mine['id']}").json()
    assert stored["text"] == "alice wrote this"
    api.close()


def _update(update: bytes) -> bytes:
    from collab.wire import framing

    return framing.sync_update(update)


async def test_a_post_answered_survives_kill9_and_sigterm_flushes(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    api = Api(server)
    room = api.room("r")
    answered = [post(api.dev.http, room, f"m{n}", f"c{n}") for n in range(20)]
    api.close()
    server.kill9()
    server.start()
    api = Api(server)
    items = api.dev.http.get(f"/rooms/{room}/messages", params={"limit": 50}).json()["items"]
    assert [m["id"] for m in items] == [m["id"] for m in answered]
    async with provider(server.ws_url(room, "chat")) as (doc, _):
        await wait_doc(doc, lambda m: len(m) == 20)
    for n in range(20, 30):
        post(api.dev.http, room, f"m{n}", f"c{n}")
    api.close()
    server.terminate()
    assert "store closed" in server.log()
    server.start()
    async with provider(server.ws_url(room, "chat")) as (doc, _):
        await wait_doc(doc, lambda m: len(m) == 30)


async def test_the_live_window_archives_exactly_once_and_the_doc_shrinks(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(
        chat_live_messages=50, compact_rows=100_000, room_idle_seconds=1, chat_write_rate=1000
    )
    api = Api(server)
    room = api.room("r")
    post(api.dev.http, room, "first", "c0")
    latest = list(range(126, 176))
    offline: Doc[Any] = Doc()
    async with provider(server.ws_url(room, "chat"), offline):
        await wait_doc(offline, lambda m: len(m) == 1)
    async with provider(server.ws_url(room, "chat")) as (online, _):
        for n in range(1, 175):
            post(api.dev.http, room, f"message {n} " + "x" * 200, f"c{n}")
        await wait_doc(online, lambda m: sorted(v["seq"] for v in m.values()) == latest)
        assert online.get("info", type=Map).to_py() == {"last_seq": 175, "archived_through": 125}
    async with provider(server.ws_url(room, "chat"), offline):
        await wait_doc(offline, lambda m: sorted(v["seq"] for v in m.values()) == latest)
    seqs: list[int] = []
    params: dict[str, Any] = {"limit": 40}
    while True:
        page = api.dev.http.get(f"/rooms/{room}/messages", params=params).json()
        seqs = [m["seq"] for m in page["items"]] + seqs
        if not page["next_cursor"]:
            break
        params = {"limit": 40, "cursor": page["next_cursor"]}
    assert seqs == list(range(1, 176))  # live and archived, in order, each once
    api.close()
    grown = _stored_size(server)
    with anyio.fail_after(15):  # idle for room_idle_seconds: evicted after a compaction
        while (compacted := _stored_size(server)) >= grown:
            await asyncio.sleep(0.2)
    print(f"stored chat doc: {grown} bytes before compaction, {compacted} after")
    assert compacted < grown / 2


def _stored_size(server: CollabServer) -> int:
    path = server.workdir / "collab.db"
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT coalesce(sum(length(snapshot)), 0) FROM docs WHERE room=? AND name='chat'",
            ("r",),
        ).fetchone()
        log = db.execute(
            "SELECT coalesce(sum(length(data)), 0) FROM doc_updates WHERE room=? AND name='chat'",
            ("r",),
        ).fetchone()
    return int(rows[0]) + int(log[0])
