"""Protocol edge cases over raw `websockets` against a real ``collab serve``.

Frames are built by hand (or by pycrdt for real updates) so each test says exactly which bytes
went over the wire, and what close code or reply came back.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from collab.auth.devmode import DEV_NAME as DEV
from collab.wire import encode_varuint, framing
from tests.support.frames import awareness_frame, awareness_states
from tests.support.pyclient import provider
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio

SYNC_STEP1_EMPTY = b"\x00\x00\x01\x00"  # sync, step1, buf(state vector with 0 clients)


def buf(payload: bytes) -> bytes:
    return encode_varuint(len(payload)) + payload


def saved(counter: int) -> bytes:
    return encode_varuint(100) + encode_varuint(counter)


def text_update(doc: Doc[Any], edit: Any) -> bytes:
    """The update one local edit of ``doc``'s Text "text" produces."""
    before = doc.get_state()
    edit(doc.get("text", type=Text))
    return doc.get_update(before)


@asynccontextmanager
async def raw(
    server: CollabServer, doc: str = "doc", query: str = ""
) -> AsyncIterator[ClientConnection]:
    async with connect(server.ws_url("room", doc, query), max_size=None, open_timeout=10) as ws:
        yield ws


async def close_code(ws: ClientConnection) -> int:
    """Read (and drop) frames until the server closes; its close code."""
    with anyio.fail_after(5):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code


async def next_frame(ws: ClientConnection, prefix: bytes) -> bytes:
    """The next frame that starts with ``prefix`` (others are dropped)."""
    with anyio.fail_after(5):
        while True:
            frame = await ws.recv()
            assert isinstance(frame, bytes)
            if frame.startswith(prefix):
                return frame


async def assert_still_syncs(ws: ClientConnection) -> None:
    await ws.send(SYNC_STEP1_EMPTY)
    await next_frame(ws, b"\x00\x01")  # SyncStep2


async def test_text_frame_closes_1003(server: CollabServer) -> None:
    async with raw(server) as ws:
        await ws.send("hello")
        assert await close_code(ws) == 1003


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\x01\x05ab",  # SyncStep2 whose length runs past the frame
        b"\x00\x01\x01ab",  # trailing bytes after the payload
        b"\x00\x07\x00",  # unknown sync message type
        b"\x00",  # sync with nothing after it
        b"",  # empty frame
        b"\x01\x05\x00",  # awareness payload truncated
        b"\x03\x00",  # query-awareness with trailing bytes
        b"\x64",  # saved without its counter
        b"\xff" * 12,  # a varint that never ends / overflows
    ],
    ids=repr,
)
async def test_malformed_frame_closes_1002(server: CollabServer, frame: bytes) -> None:
    async with raw(server) as ws:
        await ws.send(frame)
        assert await close_code(ws) == 1002


@pytest.mark.parametrize(
    "update",
    [
        b"\x05\x01\x02garbage",
        b"\x01\x01\xff\xff\xff\xff\x0f\x00\xff",
        bytes(random.Random(7).randrange(256) for _ in range(64)),
    ],
    ids=["short", "huge-clock", "random"],
)
async def test_garbage_update_closes_1007(server: CollabServer, update: bytes) -> None:
    async with raw(server) as bystander:
        await assert_still_syncs(bystander)
        async with raw(server) as ws:
            await ws.send(framing.sync_update(update))
            assert await close_code(ws) == 1007
        await assert_still_syncs(bystander)  # one peer's garbage is its own problem


async def test_unknown_message_types_are_ignored(server: CollabServer) -> None:
    async with raw(server) as ws:
        await ws.send(b"\x07\x01\x02")  # a future type
        await ws.send(b"\x02\x00" + buf(b"let me in"))  # auth, client -> server
        await ws.send(b"\x02" + buf(b'{"type": "jupyter request"}'))  # JupyterLab's 2
        await assert_still_syncs(ws)
        # ... and it still writes: an update after them reaches the doc.
        update = text_update(Doc(), lambda t: t.insert(0, "after unknowns"))
        await ws.send(framing.sync_update(update))
        await ws.send(saved(1))
        assert await next_frame(ws, b"\x64") == saved(1)
    async with provider(server.ws_url("room", "doc")) as (doc, _prov):
        assert str(doc.get("text", type=Text)) == "after unknowns"


async def test_query_awareness_is_answered(server: CollabServer) -> None:
    async with raw(server) as present:
        await present.send(awareness_frame((1234, 1, {"name": "present"})))
        async with raw(server) as asker:
            # On join the server tells who is here; a query (type 3) asks it again.
            on_join = await next_frame(asker, b"\x01")
            await asker.send(b"\x03")
            answer = await next_frame(asker, b"\x01")
        assert answer == on_join
        # As sent, plus the ``user`` the server stamps from the socket's principal.
        ((client, clock, state),) = awareness_states(answer)
        assert (client, clock, state["name"], state["user"]["name"]) == (1234, 1, "present", DEV)


async def test_saved_echo_follows_commit(server: CollabServer) -> None:
    doc: Doc[Any] = Doc()
    async with raw(server) as ws:
        await ws.send(framing.sync_update(text_update(doc, lambda t: t.insert(0, "hello world"))))
        await ws.send(saved(1))
        await ws.send(framing.sync_update(text_update(doc, lambda t: t.__delitem__(slice(0, 6)))))
        await ws.send(saved(300))  # a multi-byte counter
        assert await next_frame(ws, b"\x64") == saved(1)
        assert await next_frame(ws, b"\x64") == saved(300)
    # "Saved" means on disk: even a SIGKILL right after the echo loses nothing, deletions too.
    await anyio.to_thread.run_sync(server.kill9)
    await anyio.to_thread.run_sync(server.start)
    async with provider(server.ws_url("room", "doc")) as (fresh, _prov):
        assert str(fresh.get("text", type=Text)) == "world"


async def test_saved_echo_without_updates_is_immediate(server: CollabServer) -> None:
    async with raw(server, query="collab=1") as ws:
        await ws.send(saved(42))
        assert await next_frame(ws, b"\x64") == saved(42)
        await assert_still_syncs(ws)
