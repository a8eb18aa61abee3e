"""uvicorn's WebSocket protocol with a synchronous write for relayed frames (issue 11).

An ASGI ``send`` is a coroutine: every frame relayed to every socket went through a sender
task's wake-up, a coroutine and uvicorn's ``send``, which builds a websockets ``Frame``, checks
and serializes it, per socket. When a socket's transport is writable that ``send`` never
waits, so the work around it is pure overhead.

This subclass of uvicorn's ``WebSocketsSansIOProtocol`` (what uvicorn's "auto" picks) puts a
plain function in each socket's scope under ``collab.sync.peer.WRITE_NOW``: ``write(data) ->
bool`` writes one binary frame to the transport at once and returns True, or does nothing and
returns False when the frame cannot go now (the transport is paused by a consumer that does
not read, closing or gone, the handshake not done): the caller then queues it for its sender,
whose ordinary ``send`` waits or fails as always. A peer calls it only when nothing of its own
is queued or in flight, so frames keep their order.

Whether a frame can go now is one flag the protocol keeps at every transition of the socket
(see ``WriteNowProtocol``), not six checks per frame: per frame and socket, those checks were
about a quarter of the Python around a relayed frame (tests/cli/test_wsprotocol_writes.py
drives every transition and checks the flag against them).

Without a negotiated extension (permessage-deflate off) the frame is framed once for every
socket it goes to: a server's frame is not masked, so the bytes of a frame depend only on its
payload, and a frame relayed to 49 sockets is framed once and written 49 times.

With deflate, a whole message under ``DEFLATE_MIN`` bytes (the threshold of Node's ``ws``,
behind Hocuspocus and y-websocket) is sent uncompressed, whichever way it goes: the socket's
negotiated extension is ``SmallUncompressed``, websockets' permessage-deflate with that
threshold, and a relayed frame under it is framed once for every socket as without deflate.
RFC 7692 lets a sender leave any message uncompressed (RSV1 clear), and such a message takes no
part in either side's compression context, so the socket's later compressed frames still
decode. A typed character's update is a few dozen bytes: compressing it cost each socket a zlib
call and saved nothing. A larger message is compressed with the socket's own context.

Each socket's receive queue is an ``Inbox``, not an ``asyncio.Queue`` (memory per idle socket).

It also offers ``collab.sync.inline.READ_NOW``: while the socket's read loop waits with nothing
queued, each whole, final, masked binary frame at the front of what the socket received is cut
off here (``take_frames``) and handed to the read loop's ``take``, past websockets' parser and
uvicorn's queue; the first frame it cannot take (a control frame, a fragment, a frame cut by
the read, one over the size limit, a compressed frame) and all after it go through websockets as
before. Only where a frame starts, which ``FrameBounds`` knows from the bytes websockets got: a
read may end inside a frame's header, and what follows (its mask, its masked payload) can look
like a frame of its own. With deflate negotiated, an uncompressed frame (RSV1 clear, what a
``ws`` client sends under its 1 KB threshold) is what websockets' decoder would hand on
untouched, with no change to its context, so it is taken too while websockets is between
messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from collab.cli.wsframes import FrameBounds
from collab.sync.readnow import READ_NOW, WAKE, Take

_BINARY_FIN = 0x82  # FIN + opcode 2 (RSV1 clear: not compressed)
DEFLATE_MIN = 1024  # with deflate, a whole message under this many bytes goes uncompressed
_DATA = (Opcode.TEXT, Opcode.BINARY)
_OPEN = State.OPEN


def take_frames(data: bytes, take: Take, max_size: int | None) -> bytes:
    """Hand each whole, final, masked binary frame at the front of ``data`` (a client's frames,
    RFC 6455 §5.2) to ``take`` until a frame is not one, or ``take`` declines it: what is left,
    from that frame on, for websockets to parse."""
    pos, n = 0, len(data)
    while n - pos >= 6:
        size = data[pos + 1]
        if data[pos] != _BINARY_FIN or size < 0x80:  # another frame, or not masked
            break
        size &= 0x7F
        start = pos + 6
        if size == 126:
            start += 2
            size = int.from_bytes(data[pos + 2 : pos + 4], "big")
        elif size == 127:
            break
        end = start + size
        if end > n or (max_size is not None and size > max_size):
            break
        if not take(apply_mask(data[start:end], data[start - 4 : start])):
            break
        pos = end
    return data[pos:] if pos else data


class SmallUncompressed(PerMessageDeflate):
    """websockets' permessage-deflate, leaving a whole message under ``DEFLATE_MIN`` bytes
    uncompressed (RSV1 clear, the encoder's context untouched); decoding is websockets'."""

    def encode(self, frame: Frame) -> Frame:
        if frame.fin and frame.opcode in _DATA and len(frame.data) < DEFLATE_MIN:
            return frame
        return super().encode(frame)


def frame_binary(data: bytes) -> bytes:
    """An unmasked, final binary frame carrying ``data`` (RFC 6455 §5.2)."""
    n = len(data)
    if n < 126:
        head = bytes((_BINARY_FIN, n))
    elif n < 65536:
        head = bytes((_BINARY_FIN, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((_BINARY_FIN, 127)) + n.to_bytes(8, "big")
    return head + data


class _LastFrame:
    """The frame of the payload written last: a relay writes one payload to many sockets in a
    row, so one entry catches them all (held until the next payload replaces it)."""

    __slots__ = ("data", "frame")

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.frame = b""

    def of(self, data: bytes) -> bytes:
        if data is not self.data:
            self.frame = frame_binary(data)
            self.data = data
        return self.frame


class Inbox:
    """The socket's receive queue: what uvicorn's protocol uses of ``asyncio.Queue``
    (``put_nowait``, ``get``, ``empty``) in a list, without the queue's three deques and its
    Event (about 3 KB per socket, idle sockets included). uvicorn pauses reading after each
    message and resumes when the queue is empty, so it holds a handful of messages at most
    (one read's frames).

    Any number of ``get`` may wait (a single reader in practice): a put wakes them all and
    those that find nothing wait again, so a waiter cancelled after its wake-up loses no
    message for the others.
    """

    __slots__ = ("_head", "_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._head = 0
        self._waiters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiters = self._waiters
        if waiters is not None:
            self._waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def empty(self) -> bool:
        return self._head >= len(self._items)

    def qsize(self) -> int:
        return len(self._items) - self._head

    async def get(self) -> Any:
        while self._head >= len(self._items):
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = [waiter]
            else:
                self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if self._waiters is not None and waiter in self._waiters:
                    self._waiters.remove(waiter)
                    if not self._waiters:
                        self._waiters = None
        item = self._items[self._head]
        self._head += 1
        if self._head >= len(self._items):
            self._items.clear()
            self._head = 0
        return item


class InlineReads:
    """The read side of collab's protocol (``READ_NOW``): mixed in before uvicorn's class,
    whose attributes it uses (``conn``, ``queue``, ``transport``, ``read_paused``...)."""

    conn: Any
    queue: Any
    transport: Any
    read_paused: bool
    close_sent: bool
    take: Take | None = None  # the read loop's, once it registered
    _bounds: FrameBounds | None = None  # from the first frame on (after the request)

    def read_now(self, take: Take) -> Callable[[], None]:
        self.take = take
        return self.wake

    def wake(self) -> None:
        """Queue ``WAKE`` for the read loop, pausing reading as for any queued message."""
        self.queue.put_nowait(WAKE)
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        bounds = self._bounds
        if bounds is None:
            # The opening handshake's request: uvicorn hands it over whole and alone (rebuilt
            # from what its HTTP parser read), so the next byte opens the first frame.
            self._bounds = FrameBounds()
        else:
            take = self.take
            if take is not None and bounds.at_start and self.queue.empty() and self._parser_idle():
                data = take_frames(data, take, self.conn.max_message_size)
                if not data:
                    return
            bounds.feed(data)
        super().data_received(data)  # type: ignore[misc]

    def _parser_idle(self) -> bool:
        """Open, and websockets' parser between frames and messages (so, with deflate, its
        decoder is not inside a compressed message)."""
        conn = self.conn
        return (
            conn.state is _OPEN
            and not self.close_sent
            and not conn.reader.buffer
            and conn.current_size is None
            and conn.parser_exc is None
        )


class _WriteFlag(asyncio.Protocol):
    """What ``write_now`` asks of uvicorn's connection, kept in one flag (``_writes``) that
    every transition recomputes (mixed into ``WriteNowProtocol``, before uvicorn's class).

    The three attributes uvicorn sets below are properties here, so whichever of its methods
    sets them (the accept, a refusal, the close sent, a keepalive timeout, a parser error, the
    connection lost) updates the flag; writing pauses and resumes through ``pause_writing`` /
    ``resume_writing``; a close frame from the client goes through ``handle_close``. A refusal
    by HTTP response never completes the handshake. A transport closed by anyone (uvicorn's
    ``shutdown``, the end of the app, the event loop on an error) is still asked each time.
    """

    _handshake_complete = False
    _close_sent = False
    _disconnected = False
    _paused = False
    _close_received = False
    _writes = False

    def _update(self) -> None:
        self._writes = (
            self._handshake_complete
            and not self._close_sent
            and not self._disconnected
            and not self._paused
            and not self._close_received
        )

    def pause_writing(self) -> None:
        self._paused = True
        self._update()
        super().pause_writing()

    def resume_writing(self) -> None:
        self._paused = False
        super().resume_writing()
        self._update()

    def handle_close(self, event: Any) -> None:
        self._close_received = True
        self._update()
        super().handle_close(event)  # type: ignore[misc]

    @property
    def handshake_complete(self) -> bool:
        return self._handshake_complete

    @handshake_complete.setter
    def handshake_complete(self, value: bool) -> None:
        self._handshake_complete = value
        self._update()

    @property
    def close_sent(self) -> bool:
        return self._close_sent

    @close_sent.setter
    def close_sent(self, value: bool) -> None:
        self._close_sent = value
        self._update()

    @property
    def disconnected(self) -> bool:
        return self._disconnected

    @disconnected.setter
    def disconnected(self, value: bool) -> None:
        self._disconnected = value
        self._update()


def write_now_protocol() -> type[asyncio.Protocol]:
    """uvicorn's ``ws`` protocol class offering ``WRITE_NOW``. uvicorn is imported here, when
    ``serve`` runs, not with the CLI."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from collab.sync.peer import WRITE_NOW

    last = _LastFrame()

    class WriteNowProtocol(InlineReads, _WriteFlag, WebSocketsSansIOProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.queue = Inbox()

        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            scope = getattr(self, "scope", None)  # absent: the handshake was refused
            if scope is not None:
                deflate = bool(self.conn.extensions)  # negotiated by the handshake's accept
                for extension in self.conn.extensions:
                    if type(extension) is PerMessageDeflate:  # the same state, our encode
                        extension.__class__ = SmallUncompressed
                scope[WRITE_NOW] = self.write_deflated if deflate else self.write_now
                scope[READ_NOW] = self.read_now

        def write_now(self, data: bytes) -> bool:
            """Write one uncompressed binary frame now, or return False."""
            if not self._writes or self.transport.is_closing():
                return False
            frame = last.frame if data is last.data else last.of(data)
            self.transport.write(frame)
            return True

        def write_deflated(self, data: bytes) -> bool:
            """``write_now`` with permessage-deflate: a payload under ``DEFLATE_MIN`` bytes is
            what ``SmallUncompressed`` leaves as is, so it goes as without deflate; a larger
            one is compressed with this socket's context."""
            if len(data) < DEFLATE_MIN:
                return self.write_now(data)
            if not self._writes or self.transport.is_closing() or self.conn.state is not _OPEN:
                return False
            self.conn.send_binary(data)
            self.transport.write(b"".join(self.conn.data_to_send()))
            return True

    return WriteNowProtocol
