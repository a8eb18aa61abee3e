"""The socket's read loop in-process: a real Starlette WebSocket over a scripted ASGI channel,
the real Peer and its sender, a LiveDoc over the memory store; no server process.

The channel behaves as uvicorn's websockets protocol does once a client's last frames and its
close frame have arrived in one read: the frames wait in its queue for the app, then the
disconnect; a send from then on raises ``ClientDisconnected``. Which of the app's two tasks
runs first after those bytes arrive, the reader or the sender (woken by a relay in the same
loop turn), is up to the event loop; the first test puts the sender first.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest
from pycrdt import Text
from starlette.types import Message
from starlette.websockets import WebSocket
from uvicorn.protocols.utils import ClientDisconnected

from collab.store.memory import MemoryStore
from collab.sync.endpoint import read_loop
from collab.sync.livedoc import LiveDoc
from collab.sync.peer import GONE, Peer
from tests.sync.conftest import KEY, GatedStore, edit, make_peer, sent, settings

pytestmark = pytest.mark.anyio

SYNC_UPDATE = b"\x00\x02"


class Channel:
    """One socket's ASGI side: the client's frames, then its disconnect, are queued for the
    app; once ``client_gone`` is set, a send raises like uvicorn's after the close arrived."""

    def __init__(self, frames: list[bytes]) -> None:
        self.inbox: list[Message] = [{"type": "websocket.connect"}]
        self.inbox += [{"type": "websocket.receive", "bytes": frame} for frame in frames]
        self.inbox.append({"type": "websocket.disconnect", "code": 1000})
        self.client_gone = False
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return self.inbox.pop(0)

    async def send(self, message: Message) -> None:
        if message["type"] != "websocket.accept" and self.client_gone:
            raise ClientDisconnected()
        self.sent.append(message)


async def accepted(channel: Channel) -> WebSocket:
    scope = {"type": "websocket", "path": "/ws/r/d", "headers": [], "query_string": b""}
    websocket = WebSocket(scope, channel.receive, channel.send)
    await websocket.accept()
    return websocket


def text_of(live: LiveDoc) -> str:
    return str(live.doc.get("text", type=Text))


async def test_an_edit_sent_just_before_leaving_is_kept_though_a_send_to_the_leaver_failed() -> (
    None
):
    live = await LiveDoc.load(KEY, MemoryStore(), settings())
    resident = make_peer()
    await live.join(resident)
    channel = Channel([edit("typed, then the tab closed")])
    websocket = await accepted(channel)
    leaver = Peer(websocket, max_queue_bytes=1 << 20, send_timeout=1.0)
    sender = asyncio.get_running_loop().create_task(leaver.run_sender())
    await live.join(leaver)  # the greeting is queued: the sender sends it first
    channel.client_gone = True  # ... after the client's edit and close arrived
    with anyio.fail_after(5):
        await leaver.closed.wait()
    assert leaver.close_code == GONE  # the sender found the transport gone
    with anyio.fail_after(5):
        await read_loop(websocket, live, leaver, live.settings)
        await live.flush()
        await sender
    assert text_of(live) == "typed, then the tab closed"
    assert [frame[:2] for frame in sent(resident)][-1] == SYNC_UPDATE  # relayed, once committed
    stored = await live.journal.store.load(KEY)
    assert len(stored.updates) == 1


async def test_a_socket_the_server_closed_takes_nothing_more() -> None:
    live = await LiveDoc.load(KEY, MemoryStore(), settings())
    channel = Channel([edit("sent after the server closed this socket")])
    websocket = await accepted(channel)
    peer = Peer(websocket, max_queue_bytes=1 << 20, send_timeout=1.0)
    await live.join(peer)
    peer.close(4403, "removed from room")
    with anyio.fail_after(5):
        await read_loop(websocket, live, peer, live.settings)
        await live.flush()
    assert text_of(live) == ""
    assert not peer.takes_input


async def test_a_frame_waiting_for_a_rebuild_is_discarded_if_the_socket_was_closed_meanwhile() -> (
    None
):
    """A frame read while the doc is being rebuilt waits for the rebuild; if the server closes
    its socket meanwhile (the member removed from the room: 4403, a revoked session), the frame
    is discarded like any other input of a closed socket, not applied, committed and relayed
    (found in review). Inline frames go this way too while the doc is rebuilt."""
    store = GatedStore()
    live = await LiveDoc.load(KEY, store, settings())
    resident = make_peer()
    await live.join(resident)
    channel = Channel([edit("sent before removal, handled after")])
    websocket = await accepted(channel)
    peer = Peer(websocket, max_queue_bytes=1 << 20, send_timeout=1.0)
    await live.join(peer)
    store.load_gate.clear()
    live.schedule_heal()  # another peer's update made yrs refuse: the doc is being rebuilt
    reader = asyncio.get_running_loop().create_task(read_loop(websocket, live, peer, live.settings))
    with anyio.fail_after(5):
        while store.loads < 2:  # the rebuild reads the store (held), the frame waits for it
            await asyncio.sleep(0)
        for _ in range(10):
            await asyncio.sleep(0)
    assert not reader.done() and text_of(live) == ""  # the frame is read, waiting
    peer.close(4403, "removed from room")  # follow_role: the user is no longer a member
    store.load_gate.set()
    with anyio.fail_after(5):
        await reader
        await live.flush()
    assert not peer.takes_input
    assert text_of(live) == ""  # the removed member's edit was not applied
