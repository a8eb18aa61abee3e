"""Presence at its edges over real sockets: what the server itself sends stays within the caps
it holds clients to (docs/awareness.md, Caps)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from collab.client.frames import read_varuint
from collab.wire import framing
from collab.wire.lib0 import MAX_SAFE_INT
from tests.support.frames import awareness_frame, awareness_states
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
        count, pos = read_varuint(data, pos)
        for _ in range(count):
            c, pos = read_varuint(data, pos)
            clock, pos = read_varuint(data, pos)
            length, pos = read_varuint(data, pos)
            pos += length
            if c == client:
                found.append(clock)
    return found


def states(peer: RawPeer, client: int) -> list[Any]:
    """Every state ``peer`` was sent for ``client`` (None: a removal), in order."""
    return [
        s for frame in peer.awareness_frames for c, _, s in awareness_states(frame) if c == client
    ]


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


async def test_a_closed_sockets_client_id_stays_its_users(server_factory: ServerFactory) -> None:
    """Alice's tab drops; before it reconnects (keeping its Yjs client id), Bob sets a state
    under that id. The id is Alice's (docs/awareness.md, Ownership): Bob's entry changes
    nothing, and Alice's reconnected tab shows again."""
    server = server_factory()
    alice = server.mint_token("alice", ROOM, "editor")
    bob = server.mint_token("bob", ROOM, "viewer")
    watcher = await RawPeer.connect(server.ws_url(ROOM, "chat", token=alice))
    tab = await RawPeer.connect(server.ws_url(ROOM, "chat", token=alice))
    await tab.websocket.send(awareness_frame((9, 3, {"cursor": 1})))
    with anyio.fail_after(10):
        await watcher.wait_for(lambda: len(states(watcher, 9)) == 1)
    tab.abort()  # a network drop
    with anyio.fail_after(10):
        await watcher.wait_for(lambda: len(states(watcher, 9)) == 2)
    squatter = await RawPeer.connect(server.ws_url(ROOM, "chat", token=bob))
    await squatter.websocket.send(awareness_frame((9, 1, {"cursor": 666})))
    # The tab reconnects and sends its state again, as y-websocket does (its own clock).
    tab = await RawPeer.connect(server.ws_url(ROOM, "chat", token=alice))
    await tab.websocket.send(awareness_frame((9, 3, {"cursor": 2})))
    await tab.request_saved(1)
    with anyio.fail_after(10):
        await tab.wait_for(lambda: tab.saved == 1)
        await watcher.wait_for(lambda: len(states(watcher, 9)) >= 3)
    await anyio.sleep(0.3)
    shown = states(watcher, 9)[2:]
    assert [s and s["cursor"] for s in shown] == [2], shown
    assert shown[0]["user"]["name"] == "alice"
    for peer in (tab, squatter, watcher):
        await peer.close()


async def test_query_awareness_is_answered_within_the_awareness_rate(
    server_factory: ServerFactory,
) -> None:
    """Each query-awareness message (3 bytes) makes the server encode and send every state of
    the doc (here 4 x 15 KB): past the socket's awareness rate (docs/awareness.md, Caps) the
    queries are not answered, as SyncStep1 has its own rate for the same reason."""
    server = server_factory(awareness_per_second=2, awareness_burst=4)
    alice = server.mint_token("alice", ROOM, "editor")
    mallory = server.mint_token("mallory", ROOM, "viewer")
    holder = await RawPeer.connect(server.ws_url(ROOM, "chat", token=alice))
    big = {"note": "x" * 15_000}
    await holder.websocket.send(awareness_frame(*((c, 1, big) for c in (1, 2, 3, 4))))
    peer = await RawPeer.connect(server.ws_url(ROOM, "chat", token=mallory))
    with anyio.fail_after(10):
        await peer.wait_for(lambda: len(states(peer, 4)) == 1)
    started = time.monotonic()
    for _ in range(500):
        await peer.websocket.send(bytes([framing.MSG_QUERY_AWARENESS]))
    await peer.request_saved(1)  # handled in order: every query above was read
    with anyio.fail_after(30):
        await peer.wait_for(lambda: peer.saved == 1 or peer.closed.is_set())
    await anyio.sleep(0.5)
    elapsed = time.monotonic() - started
    answered = len(states(peer, 4)) - 1
    assert not peer.closed.is_set(), (peer.close_code, answered)
    assert answered <= 4 + 2 * elapsed + 1, (answered, elapsed)
    for p in (peer, holder):
        await p.close()
