"""Presence at its edges over real sockets: what the server itself sends stays within the caps
it holds clients to (docs/awareness.md, Caps)."""

from __future__ import annotations

import anyio
import pytest

from collab.wire import framing
from collab.wire.lib0 import MAX_SAFE_INT
from tests.support.frames import awareness_frame
from tests.support.jspeer import JsPeer
from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory

pytestmark = pytest.mark.anyio

ROOM = "team"


def clocks(peer: RawPeer, client: int) -> list[int]:
    """Every clock ``peer`` was sent for ``client``, read as lib0 reads it (no cap)."""
    found = []
    for frame in peer.awareness_frames:
        message = framing.decode_message(frame)
        assert isinstance(message, framing.Awareness)
        data, pos = message.payload, 0
        count, pos = lib0_varuint(data, pos)
        for _ in range(count):
            c, pos = lib0_varuint(data, pos)
            clock, pos = lib0_varuint(data, pos)
            length, pos = lib0_varuint(data, pos)
            pos += length
            if c == client:
                found.append(clock)
    return found


def lib0_varuint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


@pytest.mark.parametrize("how", ["leaves", "stops-typing"])
async def test_a_clock_at_the_cap_never_makes_the_server_send_one_past_it(
    server_factory: ServerFactory, how: str
) -> None:
    """A client may number its state 2**53-1 (the cap); the server's own next clock for that
    id (its removal when the socket closes, its clear of a stale ``typing``) must not be
    2**53: y-websocket clients echo it back and are closed 1007 for it, every one in the doc."""
    server = server_factory(typing_timeout=0.5)
    mallory = server.mint_token("mallory", ROOM, "viewer")
    alice = server.mint_token("alice", ROOM, "editor")
    watcher = await RawPeer.connect(server.ws_url(ROOM, "chat", token=alice))
    async with JsPeer(server.ws_base, f"{ROOM}/chat", {"token": alice}) as js:
        await js.wait_event("synced")
        peer = await RawPeer.connect(server.ws_url(ROOM, "chat", token=mallory))
        state = {"typing": True} if how == "stops-typing" else {"x": 1}
        await peer.websocket.send(awareness_frame((5, MAX_SAFE_INT, state)))
        with anyio.fail_after(10):
            await watcher.wait_for(lambda: len(clocks(watcher, 5)) >= 1)
        if how == "leaves":
            await peer.close()
        with anyio.fail_after(10):
            await watcher.wait_for(lambda: len(clocks(watcher, 5)) >= 2)
        await anyio.sleep(1.0)  # the y-websocket client's echo, if any, has been answered
        assert max(clocks(watcher, 5)) <= MAX_SAFE_INT, clocks(watcher, 5)
        closes = [e for e in js.events if e["event"] == "close"]
        assert closes == [], closes
        await peer.close()
    await watcher.close()
