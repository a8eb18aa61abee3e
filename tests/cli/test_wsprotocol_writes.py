"""When collab's uvicorn protocol writes a relayed frame in place: every state transition.

``write_now`` asks one flag kept by the protocol instead of six checks per frame (issue 11).
Each test drives a socket through uvicorn's own code (the handshake bytes, the ASGI accept and
close, the transport's pause and resume, a client's close frame, a bad frame, a keepalive
timeout, the connection lost, a shutdown) and checks after every step that ``write_now``
answers what the six checks answer (``_six_checks``, the former test), and what it should.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader

from collab.cli.wsprotocol import DEFLATE_MIN, SmallUncompressed, frame_binary
from collab.sync.peer import WRITE_NOW
from tests.support.wsproto import DEFLATE, UPGRADE, FakeTransport, make_protocol

pytestmark = pytest.mark.anyio

FRAME = b"\x00\x02update"


def _six_checks(protocol: Any) -> bool:
    """What ``write_now`` asked of the connection before the flag (and still should)."""
    return bool(
        protocol.writable.is_set()
        and not protocol.close_sent
        and not protocol.disconnected
        and protocol.initial_response is None
        and protocol.conn.state is State.OPEN
        and not protocol.transport.is_closing()
    )


def _writes(protocol: Any) -> bool:
    """Whether the scope's write takes a frame now, checked against ``_six_checks``."""
    before = len(protocol.transport.written)
    took = protocol.scope[WRITE_NOW](FRAME)
    assert took == _six_checks(protocol)
    assert len(protocol.transport.written) == before + took
    return bool(took)


async def _connected(deflate: bool = False, lazy: bool = False) -> Any:
    """A protocol past the upgrade request, the app not yet answering it."""
    protocol = make_protocol(deflate, ws_ping_interval=None)
    protocol.connection_made(FakeTransport(lazy))
    protocol.data_received(UPGRADE + (DEFLATE if deflate else b"") + b"\r\n")
    return protocol


async def _accepted(deflate: bool = False, lazy: bool = False) -> Any:
    protocol = await _connected(deflate, lazy)
    assert not _writes(protocol)  # before the accept: the sender's
    await protocol.send({"type": "websocket.accept"})
    assert _writes(protocol)
    return protocol


def _client_frame(opcode: Opcode, data: bytes) -> bytes:
    return Frame(opcode, data).serialize(mask=True, extensions=[])


async def _finish(protocol: Any) -> None:
    for task in list(protocol.tasks):
        task.cancel()
    await asyncio.sleep(0)


async def test_the_accept_opens_the_writes_and_frames_go_whole() -> None:
    protocol = await _accepted()
    assert protocol.transport.written[-1] == frame_binary(FRAME)
    assert protocol.scope[WRITE_NOW] == protocol.write_now
    await _finish(protocol)


async def test_a_paused_transport_takes_nothing_until_it_resumes() -> None:
    protocol = await _accepted()
    protocol.pause_writing()
    assert not _writes(protocol)
    protocol.resume_writing()
    assert _writes(protocol)
    await _finish(protocol)


async def test_the_close_sent_by_the_app_ends_the_writes() -> None:
    protocol = await _accepted()
    await protocol.send({"type": "websocket.close", "code": 1013})
    assert not _writes(protocol)
    protocol.pause_writing()
    protocol.resume_writing()  # a resume after the close does not open them again
    assert not _writes(protocol)
    await _finish(protocol)


@pytest.mark.parametrize("paused", [False, True])
async def test_the_connection_lost_ends_the_writes_though_writable_is_set(paused: bool) -> None:
    protocol = await _accepted(lazy=True)
    if paused:
        protocol.pause_writing()
    protocol.connection_lost(OSError())  # uvicorn sets ``writable`` to free waiting sends
    assert protocol.writable.is_set()
    assert not _writes(protocol)
    await _finish(protocol)


async def test_a_close_frame_from_the_client_ends_the_writes_at_once() -> None:
    """Before the transport reports closing (a lazy one here): the connection is CLOSING."""
    protocol = await _accepted(lazy=True)
    protocol.data_received(_client_frame(Opcode.CLOSE, Close(1000, "bye").serialize()))
    assert protocol.conn.state is State.CLOSING and not protocol.transport.closing
    assert not _writes(protocol)
    protocol.pause_writing()
    protocol.resume_writing()  # a resume after it does not open them again
    assert not _writes(protocol)
    await _finish(protocol)


async def test_a_bad_frame_from_the_client_ends_the_writes() -> None:
    protocol = await _accepted(lazy=True)
    bad = Frame(Opcode.BINARY, b"x").serialize(mask=False, extensions=[])  # must be masked
    protocol.data_received(bad)
    assert not _writes(protocol)
    await _finish(protocol)


async def test_a_keepalive_timeout_ends_the_writes() -> None:
    protocol = await _accepted(lazy=True)
    protocol.keepalive_timeout()
    assert not _writes(protocol)
    await _finish(protocol)


async def test_a_closing_transport_takes_nothing() -> None:
    protocol = await _accepted()
    protocol.transport.closing = True  # the event loop closed it (an error)
    assert not _writes(protocol)
    protocol.transport.closing = False
    assert _writes(protocol)
    protocol.shutdown()  # the server stopping: 1012 and the transport closed
    assert not _writes(protocol)
    await _finish(protocol)


@pytest.mark.parametrize("how", ["close", "http"])
async def test_a_refused_handshake_never_writes(how: str) -> None:
    protocol = await _connected()
    if how == "close":
        await protocol.send({"type": "websocket.close"})  # 403
    else:
        await protocol.send({"type": "websocket.http.response.start", "status": 429})
    assert not _writes(protocol)
    await _finish(protocol)


def _client_deflate() -> PerMessageDeflate:
    """The client's end of what ``DEFLATE`` negotiates (context takeover both ways)."""
    return PerMessageDeflate(False, False, 15, 15)


def _decoded(written: list[bytes]) -> list[tuple[bool, bytes]]:
    """The server's frames (one a write) as a client reads them: (compressed, payload) each,
    decoded in order through one client decoder, as its compression context requires."""
    deflate = _client_deflate()
    frames: list[tuple[bool, bytes]] = []
    for chunk in written:
        reader = StreamReader()
        reader.feed_data(chunk)
        parse = Frame.parse(reader.read_exact, mask=False, max_size=None, extensions=[deflate])
        with pytest.raises(StopIteration) as done:
            next(parse)
        assert not reader.buffer  # one whole frame a write
        frames.append((bool(chunk[0] & 0x40), bytes(done.value.value.data)))  # RSV1
    return frames


async def test_with_deflate_each_socket_compresses_and_a_close_frame_ends_the_writes() -> None:
    protocol = await _accepted(deflate=True, lazy=True)
    assert protocol.conn.extensions and protocol.scope[WRITE_NOW] == protocol.write_deflated
    protocol.data_received(_client_frame(Opcode.CLOSE, Close(1000, "bye").serialize()))
    assert not _writes(protocol)
    await _finish(protocol)


async def test_with_deflate_a_small_payload_goes_uncompressed_and_the_context_holds() -> None:
    protocol = await _accepted(deflate=True)
    assert protocol.transport.written[-1] == frame_binary(FRAME)  # under DEFLATE_MIN: as is
    protocol.transport.written.clear()
    large = [bytes([i]) * 20 + b"the same words again " * 60 for i in range(3)]
    assert all(len(p) >= DEFLATE_MIN for p in large)
    small = [b"\x00\x02" + bytes([i]) * (DEFLATE_MIN - 3) for i in range(2)]  # the largest
    sent = [large[0], small[0], large[1], small[1], large[2]]
    for payload in sent:
        assert protocol.scope[WRITE_NOW](payload)
    frames = _decoded(protocol.transport.written)
    assert [payload for _, payload in frames] == sent
    assert [compressed for compressed, _ in frames] == [True, False, True, False, True]
    # compressed with the socket's context across the uncompressed ones: the repeats shrink
    assert len(protocol.transport.written[4]) < len(protocol.transport.written[0]) < 400
    # an ASGI send (the sender's path, through websockets) follows the same rule, in the
    # same context: small ones as they are, text or binary, large ones compressed
    assert isinstance(protocol.conn.extensions[0], SmallUncompressed)
    await protocol.send({"type": "websocket.send", "bytes": FRAME})
    await protocol.send({"type": "websocket.send", "text": "a small text"})
    await protocol.send({"type": "websocket.send", "bytes": large[0]})
    frames = _decoded(protocol.transport.written)
    assert frames[5:] == [(False, FRAME), (False, b"a small text"), (True, large[0])]
    await _finish(protocol)
