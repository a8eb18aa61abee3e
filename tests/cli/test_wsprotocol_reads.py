"""collab's uvicorn protocol, read side: frames cut off in ``data_received`` for the read loop's
``take`` (``READ_NOW``), and everything else left to websockets, in order."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.utils import apply_mask

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


def _frame_with_mask(payload: bytes, mask: bytes) -> bytes:
    """A client's final binary frame with the mask given (a client picks any, RFC 6455 §5.3)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x82, 0x80 | n))
    elif n < 65536:
        head = bytes((0x82, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x82, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + mask + apply_mask(payload, mask)


_LOOKS_LIKE_A_FRAME = b"\x82\x85"  # a final binary frame, masked, 5 bytes


def _cut_frame(size: int, cut: str) -> tuple[bytes, bytes, int]:
    """A plain update of ``size`` bytes, its frame and where a read ends in its header: right
    after the length (then the mask opens the next read) or after the mask (then the masked
    payload does); the mask is one of 2**32 a client may draw, such that what opens the next
    read looks like a whole masked binary frame to ``take_frames``."""
    payload = b"\x00\x02" + bytes(i % 251 for i in range(size - 2))
    length_end = 2 if size < 126 else 4 if size < 65536 else 10
    if cut == "after-length":
        mask = _LOOKS_LIKE_A_FRAME + b"\x5a\xa5"
        return payload, _frame_with_mask(payload, mask), length_end
    mask = bytes(a ^ b for a, b in zip(payload[:2], _LOOKS_LIKE_A_FRAME, strict=True))
    return payload, _frame_with_mask(payload, mask + b"\x5a\xa5"), length_end + 4


@pytest.mark.parametrize("cut", ["after-length", "after-mask"])
@pytest.mark.parametrize("size", [40, 300, 70_000], ids=["7bit", "16bit", "64bit"])
async def test_a_frame_cut_at_the_end_of_its_header_is_not_cut_again(size: int, cut: str) -> None:
    """websockets' reader consumes a frame's header as soon as it has it: cut by the read right
    there, the frame is half parsed with nothing buffered (``reader.buffer`` empty,
    ``current_size`` None). The bytes of the next read are the rest of that frame, not a new
    one: they must go to websockets, whatever they look like."""
    payload, whole, at = _cut_frame(size, cut)
    protocol = _open_protocol()
    take = Taker()
    protocol.read_now(take)
    protocol.data_received(whole[:at])  # the header only: consumed by websockets
    protocol.data_received(whole[at:] + client_frame(b"after"))
    assert take.taken == []
    assert [m["bytes"] for m in _queued(protocol)] == [payload, b"after"]
    assert protocol.conn.state is State.OPEN


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
