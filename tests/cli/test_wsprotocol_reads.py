"""collab's uvicorn protocol, read side: frames cut off in ``data_received`` for the read loop's
``take`` (``READ_NOW``), and everything else left to websockets, in order."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from collab.cli.wsprotocol import take_frames
from collab.sync.readnow import WAKE
from tests.support.wsproto import DEFLATE, UPGRADE, FakeTransport, make_protocol

pytestmark = pytest.mark.anyio


def client_frame(data: bytes, opcode: Opcode = Opcode.BINARY, fin: bool = True) -> bytes:
    """A frame as a client sends it: masked (RFC 6455 §5.3)."""
    return Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])


class Taker:
    def __init__(self, declines_at: int | None = None) -> None:
        self.taken: list[bytes] = []
        self.declines_at = declines_at

    def __call__(self, payload: bytes) -> bool:
        if len(self.taken) == self.declines_at:
            return False
        self.taken.append(payload)
        return True


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 1000, 65535])
def test_a_masked_binary_frame_is_taken_whole(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    take = Taker()
    assert take_frames(client_frame(payload), take, None) == b""
    assert take.taken == [payload]


def test_frames_are_taken_in_order_until_one_is_not_a_whole_final_binary_frame() -> None:
    a, b, c = b"\x00\x02one", b"\x00\x02two", b"\x00\x02three"
    ping = client_frame(b"hi", Opcode.PING)
    rest = ping + client_frame(c)
    take = Taker()
    assert take_frames(client_frame(a) + client_frame(b) + rest, take, None) == rest
    assert take.taken == [a, b]  # the ping and all after it: websockets' (in order)


@pytest.mark.parametrize(
    "frame",
    [
        client_frame(b"text", Opcode.TEXT),
        client_frame(b"part", fin=False),  # a fragment
        client_frame(b"", Opcode.CLOSE),
        client_frame(b"x", Opcode.PONG),
        Frame(Opcode.BINARY, b"unmasked").serialize(mask=False, extensions=[]),
        client_frame(b"x" * 70_000),  # a 64-bit length: websockets'
        client_frame(b"\x00\x02whole")[:-1],  # cut by the read
        client_frame(b"\x00")[:5],  # shorter than any masked header
        bytes([0xC2]) + client_frame(b"rsv1")[1:],  # RSV1 without an extension
    ],
    ids=["text", "fragment", "close", "pong", "unmasked", "64bit", "cut", "short", "rsv1"],
)
def test_anything_else_goes_to_websockets_untouched(frame: bytes) -> None:
    take = Taker()
    assert take_frames(frame, take, None) is frame
    assert take.taken == []


def test_a_frame_over_the_size_limit_is_left_for_websockets_to_refuse() -> None:
    big = client_frame(b"x" * 200)
    take = Taker()
    assert take_frames(client_frame(b"ok") + big, take, 199) == big
    assert take.taken == [b"ok"]


def test_a_declined_frame_and_all_after_it_are_left() -> None:
    frames = [client_frame(bytes([n])) for n in range(4)]
    take = Taker(declines_at=2)
    assert take_frames(b"".join(frames), take, None) == frames[2] + frames[3]
    assert take.taken == [b"\x00", b"\x01"]


def _open_protocol(deflate: bool = False) -> Any:
    protocol = make_protocol(deflate)
    protocol.transport = FakeTransport()
    protocol.loop = _NoTasks()
    protocol.data_received(UPGRADE + (DEFLATE if deflate else b"") + b"\r\n")
    protocol.conn.send_response(protocol.response)  # what the app's accept does
    protocol.conn.data_to_send()
    protocol.handshake_complete = True
    assert protocol.conn.state is State.OPEN
    assert _queued(protocol) == [{"type": "websocket.connect"}]
    return protocol


class _NoTasks:
    """A loop stand-in that drops the ASGI task's coroutine instead of running it."""

    def create_task(self, coro: Any) -> Any:
        coro.close()
        return self

    def add_done_callback(self, callback: Any) -> None:
        pass


def _queued(protocol: Any) -> list[Any]:
    items: list[Any] = []
    while not protocol.queue.empty():
        items.append(protocol.queue._items[protocol.queue._head])
        protocol.queue._head += 1
    return items


async def test_without_a_taker_every_frame_goes_through_the_queue() -> None:
    protocol = _open_protocol()
    protocol.data_received(client_frame(b"a") + client_frame(b"b"))
    assert [m["bytes"] for m in _queued(protocol)] == [b"a", b"b"]
    assert not protocol.transport.reading  # uvicorn's: reading waits for the app


async def test_a_registered_taker_gets_frames_while_nothing_is_queued() -> None:
    protocol = _open_protocol()
    take = Taker()
    wake = protocol.read_now(take)
    protocol.data_received(client_frame(b"a") + client_frame(b"b"))
    assert take.taken == [b"a", b"b"]
    assert _queued(protocol) == [] and protocol.transport.reading
    # a ping: websockets answers it; the frame after it is queued, in order
    protocol.data_received(client_frame(b"hi", Opcode.PING) + client_frame(b"c"))
    assert [m["bytes"] for m in _queued(protocol)] == [b"c"]
    assert any(w.startswith(b"\x8a") for w in protocol.transport.written)  # the pong
    protocol.transport.reading, protocol.read_paused = True, False
    wake()
    assert _queued(protocol) == [WAKE] and not protocol.transport.reading


async def test_the_taker_waits_while_a_message_is_queued() -> None:
    protocol = _open_protocol()
    take = Taker()
    protocol.read_now(take)
    protocol.queue.put_nowait({"type": "websocket.receive", "bytes": b"first"})
    protocol.data_received(client_frame(b"second"))
    assert take.taken == []
    assert [m["bytes"] for m in _queued(protocol)] == [b"first", b"second"]


async def test_the_taker_waits_while_websockets_holds_part_of_a_frame_or_message() -> None:
    protocol = _open_protocol()
    take = Taker()
    protocol.read_now(take)
    whole = client_frame(b"\x00\x02split")
    protocol.data_received(whole[:4])  # cut: websockets buffers it
    protocol.data_received(whole[4:] + client_frame(b"after"))
    assert take.taken == []
    assert [m["bytes"] for m in _queued(protocol)] == [b"\x00\x02split", b"after"]
    protocol.data_received(client_frame(b"fra", fin=False))  # a fragmented message begins
    protocol.data_received(client_frame(b"next"))  # not a continuation: websockets fails it
    assert take.taken == []
    assert protocol.conn.parser_exc is not None  # closed 1002, as without the taker
    [disconnect] = _queued(protocol)
    assert disconnect["type"] == "websocket.disconnect" and disconnect["code"] == 1002


async def test_with_deflate_uncompressed_frames_are_taken_and_compressed_ones_decoded() -> None:
    protocol = _open_protocol(deflate=True)
    assert protocol.conn.extensions  # negotiated
    take = Taker()
    protocol.read_now(take)
    client = PerMessageDeflate(False, False, 15, 15)  # the client's end: context takeover

    def compressed(data: bytes, fin: bool = True) -> bytes:
        return Frame(Opcode.BINARY, data, fin=fin).serialize(mask=True, extensions=[client])

    words = b"the same words again " * 60
    protocol.data_received(client_frame(b"a") + compressed(words) + client_frame(b"b"))
    assert take.taken == [b"a"]  # a compressed frame and all after it: websockets'
    assert [m["bytes"] for m in _queued(protocol)] == [words, b"b"]
    protocol.data_received(client_frame(b"c") + compressed(b"x" + words))  # the queue is empty
    assert take.taken == [b"a", b"c"]
    assert [m["bytes"] for m in _queued(protocol)] == [b"x" + words]  # the context held
    # inside a compressed message cut in fragments, websockets' decoder has it to the end
    protocol.data_received(compressed(words[:500], fin=False))
    protocol.data_received(client_frame(b"d"))  # not a continuation: websockets fails it
    assert take.taken == [b"a", b"c"] and protocol.conn.parser_exc is not None
    [disconnect] = _queued(protocol)
    assert disconnect["type"] == "websocket.disconnect" and disconnect["code"] == 1002


@pytest.mark.parametrize("state", ["close_sent", "closing"])
async def test_the_taker_is_not_used_once_closing(state: str) -> None:
    protocol = _open_protocol()
    if state == "close_sent":
        protocol.close_sent = True
    else:
        protocol.conn.state = State.CLOSING
    take = Taker()
    protocol.read_now(take)
    protocol.data_received(client_frame(b"a"))
    assert take.taken == []
