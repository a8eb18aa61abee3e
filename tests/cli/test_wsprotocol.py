"""collab's uvicorn WebSocket protocol: the synchronous write of relayed frames (issue 11).

In-process: the frames it builds are websockets' own bytes (when it writes them:
test_wsprotocol_writes.py). Through real servers: relayed edits arrive whole with and
without permessage-deflate, many sockets at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from pycrdt import Doc, Text
from websockets.frames import Frame, Opcode
from websockets.utils import apply_mask

from collab.cli.wsprotocol import Inbox, frame_binary
from collab.sync.peer import WRITE_NOW
from collab.wire import framing
from tests.support.jspeer import JsPeer
from tests.support.rawpeer import RawPeer, raw_socket
from tests.support.server import CollabServer
from tests.support.wsproto import FakeTransport, make_protocol

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_frame_is_the_bytes_websockets_would_send(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    expected = Frame(Opcode.BINARY, data).serialize(mask=False, extensions=[])
    assert frame_binary(data) == expected


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never called here
    raise AssertionError


def _protocol(deflate: bool = False) -> Any:
    protocol = make_protocol(deflate, app=_app)
    protocol.transport = FakeTransport()
    return protocol


async def test_the_handshake_puts_the_write_in_the_scope() -> None:
    from websockets.http11 import Request

    protocol = _protocol()
    created: list[Any] = []
    protocol.loop = _NoTasks(created)
    headers = [
        ("Host", "x"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    from websockets.datastructures import Headers

    protocol.handle_connect(Request("/ws/r/d", Headers(headers)))
    assert protocol.scope[WRITE_NOW] == protocol.write_now
    refused = _protocol()
    refused.loop = _NoTasks(created)
    refused.handle_connect(Request("/ws/r/d", Headers([("Host", "x")])))  # not an upgrade
    assert not hasattr(refused, "scope")
    for coro in created:
        coro.close()


class _NoTasks:
    """A loop stand-in that keeps the ASGI task's coroutine instead of running it."""

    def __init__(self, created: list[Any]) -> None:
        self.created = created

    def create_task(self, coro: Any) -> Any:
        self.created.append(coro)
        return _Done()


class _Done:
    def add_done_callback(self, callback: Callable[..., None]) -> None:
        pass


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
async def test_relayed_edits_arrive_whole_to_every_socket(
    server_factory: Callable[..., CollabServer], deflate: bool
) -> None:
    server = server_factory(ws_per_message_deflate=deflate)
    url = server.ws_url("relay", "doc")
    with anyio.fail_after(60):
        writer = await RawPeer.connect(url)
        readers = [await RawPeer.connect(url) for _ in range(12)]
        if deflate:
            response = readers[0].websocket.response
            assert response is not None
            negotiated = response.headers.get("Sec-WebSocket-Extensions")
            assert negotiated and "permessage-deflate" in negotiated
        expected = ""
        for i in range(40):
            chunk = f"edit {i} " + "x" * (i * 97)  # small and large frames (126+ bytes)
            await writer.insert(len(expected), chunk)
            expected += chunk
        for reader in readers:
            await reader.wait_for(lambda r=reader: str(r.text) == expected, timeout=30)
        for peer in (writer, *readers):
            await peer.close()


def _update_frame(update: bytes, mask: bytes) -> bytes:
    """A client's update frame with the mask given (a client draws any of 2**32)."""
    payload = framing.sync_update(update)
    assert len(payload) < 126
    return bytes((0x82, 0x80 | len(payload))) + mask + apply_mask(payload, mask)


async def test_an_update_whose_header_arrives_alone_is_applied_and_the_socket_stays_open(
    server_factory: Callable[..., CollabServer],
) -> None:
    """A client that writes a frame's header and its payload apart (two segments, two reads):
    websockets has consumed the header, so the next read is that frame's mask and payload. With
    this mask (82 85 ..., one mask in 512 starts so) they look like a frame of their own; they
    are the rest of the first one (``FrameBounds``): both updates are applied, the socket stays
    open (before: the update was lost and the socket closed 1002)."""
    server = server_factory()
    url = server.ws_url("split", "doc")
    doc: Doc[Any] = Doc()
    text = doc.get("text", type=Text)
    updates = []
    for chunk in ("hello", " world"):
        before = doc.get_state()
        text.insert(len(str(text)), chunk)
        updates.append(doc.get_update(before))
    with anyio.fail_after(30):
        watcher = await RawPeer.connect(url)
        reader, writer = await raw_socket(url)
        first = _update_frame(updates[0], b"\x82\x85\x5a\xa5")
        writer.write(first[:2])  # the header on its own
        await writer.drain()
        await anyio.sleep(0.3)  # a read of its own
        writer.write(first[2:] + _update_frame(updates[1], b"\x01\x02\x03\x04"))
        await writer.drain()
        await watcher.wait_for(lambda: str(watcher.text) == "hello world", timeout=10)
        assert not reader.at_eof()
        writer.close()
        await watcher.close()


async def test_y_websocket_clients_with_deflate_converge_on_small_and_large_edits(
    server_factory: Callable[..., CollabServer],
) -> None:
    """Node's ``ws`` (y-websocket's socket) negotiates deflate and compresses only messages of
    1 KB and more: the server takes the small ones in place and decodes the large ones with
    the socket's context, and relays small ones uncompressed, large ones compressed."""
    server = server_factory(ws_per_message_deflate=True)
    with anyio.fail_after(60):
        async with (
            JsPeer(server.ws_base, "deflate/doc", server.params) as writer,
            JsPeer(server.ws_base, "deflate/doc", server.params) as reader,
        ):
            await writer.wait_event("synced")
            await reader.wait_event("synced")
            for peer in (writer, reader):
                assert "permessage-deflate" in (await peer.call({"op": "info"}))["extensions"]
            expected = ""
            for i in range(30):
                chunk = f"edit {i} " + ("long words " * 150 if i % 3 == 0 else "x" * i)
                await writer.call({"op": "insert", "index": len(expected), "text": chunk})
                expected += chunk
            with anyio.fail_after(30):
                while await reader.text() != expected:
                    await anyio.sleep(0.05)
            assert await writer.text() == expected


async def test_the_inbox_hands_out_in_order_and_wakes_a_waiting_reader() -> None:
    inbox = Inbox()
    assert inbox.empty()
    for n in range(3):
        inbox.put_nowait(n)
    assert inbox.qsize() == 3 and not inbox.empty()
    assert [await inbox.get() for _ in range(3)] == [0, 1, 2]
    assert inbox.empty()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            got: list[int] = []

            async def read() -> None:
                got.append(await inbox.get())

            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            inbox.put_nowait(7)
    assert got == [7] and inbox.empty()


async def test_a_reader_cancelled_after_its_wake_up_loses_nothing_for_another() -> None:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    first = loop.create_task(inbox.get())
    second = loop.create_task(inbox.get())
    await asyncio.sleep(0)  # both wait
    inbox.put_nowait(1)  # wakes both
    first.cancel()  # before it runs: the message stays for the other
    with anyio.fail_after(5):
        assert await second == 1
        with pytest.raises(asyncio.CancelledError):
            await first
    assert inbox.empty()
    inbox.put_nowait(2)  # no waiter left behind by the cancelled one
    assert await inbox.get() == 2
