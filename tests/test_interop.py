"""Interop against a real ``collab serve``: y-websocket 3.1 under node, pycrdt, raw frames.

Each test drives real clients no one here wrote (tests/js/peer.mjs wraps y-websocket's
WebsocketProvider; tests/support/pyclient.py wraps pycrdt's Provider). Every wait is event-based
under a deadline; the only plain sleep watches for something that must *not* happen (retries).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from collab.auth.devmode import DEV_NAME, DEV_SUBJECT
from collab.meta import MetaStore
from collab.meta.handles import DEV_ISSUER
from collab.sync.stamps import derived_color
from collab.wire import read_varuint
from tests.support.frames import awareness_frame
from tests.support.jspeer import JsPeer
from tests.support.pyclient import provider
from tests.support.server import CollabServer

pytestmark = [pytest.mark.node, pytest.mark.anyio]


# -- helpers -------------------------------------------------------------------------------


def parse_awareness(frame: bytes) -> dict[int, Any]:
    """client id -> state (None for a removal) from one awareness frame."""
    assert frame[0] == 1
    _, pos = read_varuint(frame, 1)
    count, pos = read_varuint(frame, pos)
    result = {}
    for _ in range(count):
        client, pos = read_varuint(frame, pos)
        _clock, pos = read_varuint(frame, pos)
        length, pos = read_varuint(frame, pos)
        result[client] = json.loads(frame[pos : pos + length])
        pos += length
    return result


def stamped(user_id: str, user_name: str) -> Callable[[str], dict[str, Any]]:
    """The state ``{"name": name}`` as others see it: the server stamps ``user`` from the
    sender's principal (docs/awareness.md)."""
    user = {"id": user_id, "name": user_name, "color": derived_color(user_id)}
    return lambda name: {"name": name, "user": user}


def dev_user(server: CollabServer) -> Callable[[str], dict[str, Any]]:
    """``stamped`` for the dev user, the principal behind ``server.params``."""

    async def find(meta: MetaStore) -> str:
        user = await meta.upsert_oidc_user(
            DEV_ISSUER, DEV_SUBJECT, name=DEV_NAME, email=None, email_verified=False, picture=None
        )
        return user.id

    return stamped(server.with_meta(find), DEV_NAME)


TOKEN_SEPARATOR = ";"


def tokens(text: str) -> Counter[str]:
    return Counter(t for t in text.split(TOKEN_SEPARATOR) if t)


async def wait_py_text(text: Text, check: Callable[[str], bool], within: float = 20) -> str:
    """Wait until the pycrdt Text's content passes ``check`` (woken by its own events)."""
    changed = [anyio.Event()]

    def on_change(_event: object) -> None:
        changed[0].set()

    subscription = text.observe(on_change)
    try:
        with anyio.fail_after(within):
            while not check(str(text)):
                changed[0] = anyio.Event()
                await changed[0].wait()
        return str(text)
    finally:
        text.unobserve(subscription)


async def py_burst(text: Text, tag: str, count: int, seed: int) -> None:
    """Like peer.mjs's burst: ``tag.i;`` tokens at random token boundaries."""
    rng = random.Random(seed)
    for i in range(count):
        content = str(text)
        at = [0] + [j + 1 for j, c in enumerate(content) if c == TOKEN_SEPARATOR]
        text.insert(rng.choice(at), f"{tag}.{i}{TOKEN_SEPARATOR}")
        await anyio.sleep(0.001)  # pacing, so remote updates interleave with ours


@asynccontextmanager
async def raw_socket(url: str) -> AsyncIterator[ClientConnection]:
    async with connect(url, max_size=None, open_timeout=10) as websocket:
        yield websocket


async def next_awareness(websocket: ClientConnection) -> dict[int, Any]:
    while True:
        frame = await websocket.recv()
        assert isinstance(frame, bytes)
        if frame[0] == 1:
            return parse_awareness(frame)


# -- (1) convergence -----------------------------------------------------------------------

EDITS = 200


async def test_two_yjs_peers_and_pycrdt_converge_and_survive_restart(server: CollabServer) -> None:
    async with (
        JsPeer(server.ws_base, "room/doc", server.params) as alice,
        JsPeer(server.ws_base, "room/doc", server.params) as bob,
        provider(server.ws_url("room", "doc")) as (doc, _prov),
    ):
        await alice.wait_event("synced")
        await bob.wait_event("synced")
        text = doc.get("text", type=Text)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for peer, tag, seed in ((alice, "a", 1), (bob, "b", 2)):
                    burst = {"op": "burst", "tag": tag, "count": EDITS, "every_ms": 1, "seed": seed}
                    tg.start_soon(peer.call, burst, 60.0)
                tg.start_soon(py_burst, text, "p", EDITS, 3)

        expected = Counter(f"{tag}.{i}" for tag in "abp" for i in range(EDITS))
        length = sum(len(t) + 1 for t in expected)
        final_a = await alice.call({"op": "wait_text", "length": length, "timeout_ms": 20000})
        final_b = await bob.call({"op": "wait_text", "length": length, "timeout_ms": 20000})
        final_p = await wait_py_text(text, lambda s: len(s) == length)
        assert final_a["text"] == final_b["text"] == final_p
        assert tokens(final_p) == expected
        # Edits really were concurrent: every peer's tokens are spread through the text.
        assert {t[0] for t in final_p[: length // 4].split(TOKEN_SEPARATOR) if t} == set("abp")

    await anyio.to_thread.run_sync(server.restart)

    async with provider(server.ws_url("room", "doc")) as (fresh, _prov):
        assert str(fresh.get("text", type=Text)) == final_p
    async with JsPeer(server.ws_base, "room/doc", server.params) as carol:
        await carol.call({"op": "wait_text", "equals": final_p, "timeout_ms": 5000})


# -- (2) presence --------------------------------------------------------------------------


async def test_newcomer_sees_present_users(server: CollabServer) -> None:
    seen = dev_user(server)
    async with (
        JsPeer(server.ws_base, "room/doc", server.params) as alice,
        JsPeer(server.ws_base, "room/doc", server.params) as bob,
    ):
        await alice.call({"op": "awareness", "state": {"name": "alice"}})
        await bob.call({"op": "awareness", "state": {"name": "bob"}})
        await alice.call({"op": "wait_states", "has": [bob.client_id], "state": seen("bob")})
        await bob.call({"op": "wait_states", "has": [alice.client_id], "state": seen("alice")})

        # A raw newcomer that sends nothing is told who is here on join. (y-websocket clients
        # renew their state only every 15 s, so anything sooner came from the server.)
        async with raw_socket(server.ws_url("room", "doc")) as newcomer:
            with anyio.fail_after(3):
                present = await next_awareness(newcomer)
        assert present == {alice.client_id: seen("alice"), bob.client_id: seen("bob")}

        async with JsPeer(server.ws_base, "room/doc", server.params) as carol:
            await carol.call(
                {
                    "op": "wait_states",
                    "has": [alice.client_id],
                    "state": seen("alice"),
                    "timeout_ms": 3000,
                }
            )
            await carol.call(
                {
                    "op": "wait_states",
                    "has": [bob.client_id],
                    "state": seen("bob"),
                    "timeout_ms": 3000,
                }
            )


async def test_abrupt_drop_is_cleared_within_3s(server: CollabServer) -> None:
    seen = dev_user(server)
    async with (
        JsPeer(server.ws_base, "room/doc", server.params) as alice,
        JsPeer(server.ws_base, "room/doc", server.params) as bob,
    ):
        await alice.call({"op": "awareness", "state": {"name": "alice"}})
        await bob.call({"op": "wait_states", "has": [alice.client_id], "state": seen("alice")})
        alice.kill()  # SIGKILL: no awareness removal, no close frame
        await alice.wait_killed()
        started = time.monotonic()
        await bob.call({"op": "wait_states", "lacks": [alice.client_id], "timeout_ms": 3000})
        assert time.monotonic() - started < 3
        assert alice.client_id not in await bob.states()


async def test_awareness_spoofing_changes_nothing(server: CollabServer) -> None:
    # The spoofer is another user of the room (presence ids belong to users).
    url = server.ws_url("room", "doc", token=server.mint_token("mallory", "room", "editor"))
    seen, mallory = dev_user(server), stamped(server.create_user("mallory"), "mallory")
    async with (
        JsPeer(server.ws_base, "room/doc", server.params) as alice,
        JsPeer(server.ws_base, "room/doc", server.params) as bob,
    ):
        await bob.call({"op": "awareness", "state": {"name": "bob"}})
        await alice.call({"op": "wait_states", "has": [bob.client_id], "state": seen("bob")})
        assert bob.client_id is not None
        victim = bob.client_id

        async with raw_socket(url) as evil:
            await evil.send(awareness_frame((victim, 1_000_000, {"user": "evil"})))
            await evil.send(awareness_frame((victim, 1_000_001, None)))
            await evil.send(awareness_frame((victim, 1_000_000, None)))
            # A barrier: the spoofer's own, legitimate state. The server handles one socket's
            # frames in order, so once alice sees this, any relay of the spoof came first.
            await evil.send(awareness_frame((424242, 1, {"name": "evil-but-honest"})))
            await alice.call(
                {"op": "wait_states", "has": [424242], "state": mallory("evil-but-honest")}
            )
            assert (await alice.states())[victim] == seen("bob")

        # A newcomer is told bob's real state, and the spoofer left with its own id only.
        await alice.call({"op": "wait_states", "lacks": [424242]})
        async with raw_socket(url) as newcomer:
            with anyio.fail_after(3):
                present = await next_awareness(newcomer)
        assert present[victim] == seen("bob")
        assert (await alice.states())[victim] == seen("bob")
        assert alice.count_events("close") == bob.count_events("close") == 0


# -- (3) bad names -------------------------------------------------------------------------

BAD_ROOMS = ["bad name!/doc", "room", "a/b/c"]


@pytest.mark.parametrize("room", BAD_ROOMS)
async def test_bad_name_closes_4400(server: CollabServer, room: str) -> None:
    url = f"{server.ws_base}/{room.replace(' ', '%20')}"
    async with raw_socket(url) as websocket:
        with anyio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
            await websocket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400


async def test_y_websocket_stops_retrying_after_4400(server: CollabServer) -> None:
    async with (
        JsPeer(server.ws_base, BAD_ROOMS[0], server.params) as p0,
        JsPeer(server.ws_base, BAD_ROOMS[1], server.params) as p1,
        JsPeer(server.ws_base, BAD_ROOMS[2], server.params) as p2,
    ):
        for peer in (p0, p1, p2):
            await peer.wait_event("closed", code=4400)
        await anyio.sleep(2)  # watching for retries that must not happen (first one: 200 ms)
        for peer in (p0, p1, p2):
            assert peer.count_events("status", status="connecting") == 1, peer.events
            assert (await peer.call({"op": "info"}))["attempts"] == 1


# -- reserved docs -------------------------------------------------------------------------


@pytest.mark.parametrize("doc_name", ["chat", "_meta"])
async def test_reserved_doc_is_read_only(server: CollabServer, doc_name: str) -> None:
    room = f"room/{doc_name}"
    seen = dev_user(server)
    async with (
        JsPeer(server.ws_base, room, server.params) as writer,
        JsPeer(server.ws_base, room, server.params) as reader,
    ):
        await writer.wait_event("synced")
        await reader.wait_event("synced")
        await writer.call({"op": "insert", "index": 0, "text": "forged"})
        denied = await writer.wait_event("permission-denied")
        assert denied["reason"]
        await writer.call({"op": "insert", "index": 0, "text": "again"})

        # Barrier: the writer's awareness goes through the server after its updates.
        await writer.call({"op": "awareness", "state": {"name": "writer"}})
        await reader.call({"op": "wait_states", "has": [writer.client_id], "state": seen("writer")})
        assert await reader.text() == ""
        # Still open, still served: the reader's presence reaches the writer.
        await reader.call({"op": "awareness", "state": {"name": "reader"}})
        await writer.call({"op": "wait_states", "has": [reader.client_id], "state": seen("reader")})
        assert writer.count_events("close") == 0
        assert writer.count_events("permission-denied") == 1
        assert (await writer.call({"op": "info"}))["synced"] is True

    async with provider(server.ws_url("room", doc_name)) as (fresh, _prov):
        assert str(fresh.get("text", type=Text)) == ""
    await anyio.to_thread.run_sync(server.restart)
    async with provider(server.ws_url("room", doc_name), Doc()) as (fresh, _prov):
        assert str(fresh.get("text", type=Text)) == ""
