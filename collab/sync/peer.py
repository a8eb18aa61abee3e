"""One socket's outbound side: a bounded queue and one sender task.

Rooms never await a socket: they call ``Peer.send`` (non-blocking) and move on. The queue is
bounded in bytes; a consumer that lets it overflow, or blocks one send for ``send_timeout``, is
a slow consumer: its queue is dropped at once (memory returns) and it is closed with 1013. It
resyncs on reconnect, so nothing is lost. Only this module and ``endpoint`` touch the socket
(in-process tests pass none).

A frame sent while nothing is queued and no send is in flight is written in place through the
server's synchronous write (``WRITE_NOW``) when the transport takes it now: no task, coroutine
or await per frame, which is most frames of a relay. Otherwise it is queued, and a sender task
drains the queue, awaiting each send itself, and ends once the queue is empty: an idle socket
has no task (nor its frames, its future and its context: 1.5 KB of every open socket). One
watchdog timer per socket enforces the deadlines: armed by a send when none is armed, it looks
at the send in flight when it fires; the same send still in flight is a slow consumer (the
sender task is cancelled out of it), a later one re-arms it for its own deadline, none leaves
it unarmed.

The initial sync is judged apart (``send_initial``): the answer to a peer's first SyncStep1 is
the whole document for a new client, and any document up to ``max_doc_size`` must open, also
one larger than the queue. That one frame is admitted beyond the cap and not counted in it, and
the consumer gets time to take it in proportion to its size: ``send_timeout`` for every
``max_queue_bytes`` (the rate the backlog rule already asks of everyone), on top of the usual
``send_timeout``. Frames queued after it are judged as always, so a joiner that stops reading
is still closed 1013, and a room's backlog for one socket stays bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from collab.auth.principal import Principal
from collab.meta import Role
from collab.sync.requests import SocketRequests, Unserved

log = logging.getLogger("collab.peer")

_ids = itertools.count(1)
SLOW_CONSUMER = "slow consumer"  # the close reason
GONE = 1006  # the close code of a socket whose transport is gone (nothing is sent)


# The ASGI scope key of a lighter send for a socket's data frames, offered by a middleware
# (collab.metrics' SocketObserver, which counts them): ``async (bytes) -> None``, raising OSError
# once the client is gone, like the server's send. Per frame and per peer, Starlette's
# ``WebSocket.send`` and the middleware's send wrappers added about a quarter to the server's
# own send, socket write included (bench/profiles/README.md).
DIRECT_SEND = "collab.direct_send"

# The ASGI scope key of a synchronous write of one data frame, offered by collab's uvicorn
# protocol (collab.cli.wsprotocol) and counted by the same middleware: ``(bytes) -> bool``,
# True once the frame was handed to the transport, False when it cannot go now (paused,
# closing, gone), in which case nothing was written. A peer with nothing queued or in flight
# writes a frame with it in place: no sender wake-up, no coroutine, no await per frame.
WRITE_NOW = "collab.write_now"

# The ASGI scope key a socket sets to name the refusal its close stands for when its close
# code alone would name another (metrics: collab.metrics.definitions.REFUSAL_BY_CODE).
REFUSED_AS = "collab.refused_as"


class Socket(Protocol):
    """What a peer needs of its WebSocket (Starlette's satisfies it; tests pass a fake)."""

    async def send_bytes(self, data: bytes) -> None: ...
    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class DirectSocket:
    """A WebSocket whose data frames take the scope's ``DIRECT_SEND`` (see above), past
    Starlette and the middleware; its close goes through Starlette's WebSocket as always."""

    __slots__ = ("_close", "send_bytes", "write_now")
    send_bytes: Callable[[bytes], Coroutine[Any, Any, None]]

    def __init__(
        self,
        send_bytes: Callable[[bytes], Coroutine[Any, Any, None]],
        close: Callable[[int, str | None], Awaitable[None]],
        write_now: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.send_bytes = send_bytes
        self._close = close
        self.write_now = write_now  # WRITE_NOW, when the server offers it

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self._close(code, reason)


def _ignore() -> None:
    return None


class Peer:
    # No per-socket __dict__: one Peer per open socket, thousands per node.
    __slots__ = (
        "_closed",
        "_deadline",
        "_finished",
        "_grace_until",
        "_in_flight",
        "_initial",
        "_initial_used",
        "_on_slow_consumer",
        "_queue",
        "_queued_bytes",
        "_sender",
        "_sends",
        "_started",
        "_timed_out",
        "_watchdog",
        "_write_now",
        "close_code",
        "close_reason",
        "denied_once",
        "id",
        "max_queue_bytes",
        "opted_in",
        "principal",
        "readonly",
        "requests",
        "role",
        "send_timeout",
        "websocket",
    )

    def __init__(
        self,
        websocket: Socket | None,
        *,
        max_queue_bytes: int,
        send_timeout: float,
        readonly: bool = False,
        opted_in: bool = False,
        principal: Principal | None = None,
        on_slow_consumer: Callable[[], None] = _ignore,
    ) -> None:
        self.id = next(_ids)
        self.websocket = websocket
        self.principal = principal
        self.readonly = readonly
        self.role: Role | None = None  # the role it was admitted with, or last told (access)
        self.opted_in = opted_in  # receives collab's own message types (>= 100)
        self.requests: SocketRequests | Unserved = Unserved(self.send)  # chat requests (101)
        self.denied_once = False
        self.max_queue_bytes = max_queue_bytes
        self.send_timeout = send_timeout
        # Made when a frame has to wait and dropped once drained: most frames are written in
        # place (WRITE_NOW), and an idle socket's empty deque would hold a 0.7 KB block.
        self._queue: deque[bytes] | None = None
        self._queued_bytes = 0  # what the cap counts: everything but the initial sync
        self._initial: bytes | None = None  # the initial-sync frame while it is queued
        self._initial_used = False
        self._grace_until = 0.0  # loop time until which sends may take longer (initial sync)
        self._started = False  # ``start``: frames go to the socket (else they stay queued)
        self._sender: asyncio.Task[None] | None = None  # draining the queue, or closing
        self._sends = 0  # sends started so far, which numbers them
        self._in_flight = 0  # the number of the send being awaited (0: none)
        self._deadline = 0.0  # loop time by which the send in flight must have returned
        self._watchdog: asyncio.TimerHandle | None = None
        self._timed_out = False  # the watchdog cancelled the sender out of a send
        self.close_code: int | None = None
        self.close_reason = ""
        self._closed: asyncio.Event | None = None  # ``closed``, made when first asked for
        self._finished = False  # the close frame was handed to the server (or none is due)
        self._on_slow_consumer = on_slow_consumer  # metrics
        # The socket's WRITE_NOW while the peer is started and not closing, else None: the
        # one attribute ``send``'s fast path asks first.
        self._write_now: Callable[[bytes], bool] | None = None

    def __repr__(self) -> str:
        return f"<Peer {self.id}>"

    @property
    def presence_owner(self) -> str:
        """Who owns this socket's awareness client ids: its user (a reconnecting tab of the
        same user takes its ids over), or the socket itself when unauthenticated (tests)."""
        return self.principal.user_id if self.principal is not None else f"peer:{self.id}"

    @property
    def closed(self) -> asyncio.Event:
        """Set once the close frame was handed to the server (or the transport was gone).

        Made when first asked for: most sockets are never waited on, and an Event is 0.9 KB.
        """
        if self._closed is None:
            self._closed = asyncio.Event()
            if self._finished:
                self._closed.set()
        return self._closed

    def _set_closed(self) -> None:
        self._finished = True
        if self._closed is not None:
            self._closed.set()

    @property
    def closing(self) -> bool:
        """Whether a close was asked for or the transport is gone: nothing more is sent."""
        return self.close_code is not None

    @property
    def takes_input(self) -> bool:
        """Whether frames read from this socket are still handled.

        Until the server closes the socket (a refusal, a slow consumer, a revoked access):
        from then on what the client sends is discarded. A socket found gone (a send failed:
        ``GONE``) still takes what its client sent before it went, up to the disconnect the
        reader gets last: a tab that typed and closed at once keeps its edit, whether the
        reader or a send to that tab comes first after its bytes arrived.
        """
        return self.close_code is None or self.close_code == GONE

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be sent, the initial sync included (the metrics' view)."""
        return self._queued_bytes + (len(self._initial) if self._initial is not None else 0)

    def send(self, data: bytes) -> None:
        """Queue a frame; never blocks. Overflow closes the socket with 1013.

        A frame larger than the cap still goes when nothing counted is queued before it.
        """
        # Started, not closing, nothing queued, no send in flight (the queue is dropped only
        # once drained, and a sender cancelled by others may leave frames in it): write in
        # place if the transport takes it now, else queue as usual.
        write_now = self._write_now
        if write_now is not None and self._queue is None and write_now(data):
            return
        if self.close_code is not None:
            return
        if self._queued_bytes + len(data) > self.max_queue_bytes and self._queued_bytes:
            self._close_slow_consumer()
            return
        if self._queue is None:
            self._queue = deque()
        self._queue.append(data)
        self._queued_bytes += len(data)
        self._spawn()

    def _spawn(self) -> None:
        """Start the sender task unless one runs (or the peer is not started)."""
        if self._sender is None and self._started:
            self._sender = asyncio.get_running_loop().create_task(self._drain())

    def send_initial(self, data: bytes) -> None:
        """Queue the answer to the peer's first SyncStep1, judged apart (see the module doc).

        Only the first call is: a later full-state request is an ordinary frame, so one socket
        cannot make the server hold more than one document's worth beyond its cap.
        """
        if self._initial_used:
            self.send(data)
            return
        self._initial_used = True
        if self.closing:
            return
        self._initial = data
        if self._queue is None:
            self._queue = deque()
        self._queue.append(data)
        self._spawn()

    def _close_slow_consumer(self) -> None:
        if not self.closing:
            self._on_slow_consumer()
        self.close(1013, SLOW_CONSUMER)

    def close(self, code: int, reason: str = "") -> None:
        """Ask for the socket to close with ``code``; queued frames are dropped."""
        if self.closing:
            return
        self.close_code = code
        self.close_reason = reason
        self._write_now = None
        self._queue = None
        self._queued_bytes = 0
        self._initial = None
        if code == GONE and self._sender is None:
            self._set_closed()  # no frame to send, and no send in flight to wait for
        else:
            self._spawn()  # one in flight sends the close frame after it

    def start(self) -> None:
        """From now on frames go to the socket: a sender task runs while any wait."""
        assert self.websocket is not None, "a peer without a socket has no sender"
        self._started = True
        if not self.closing:
            self._write_now = getattr(self.websocket, "write_now", None)
        if self._queue or self.closing:
            self._spawn()

    async def stopped(self) -> None:
        """Wait until the close frame asked for (``close``) was handed to the server."""
        if self._sender is not None:
            await self._sender

    async def run_sender(self) -> None:
        """``start``, then wait until the close frame was sent (a cancel stops the sender)."""
        self.start()
        try:
            await self.closed.wait()
        except asyncio.CancelledError:
            if self._sender is not None:
                self._sender.cancel()
            raise
        await self.stopped()

    async def _drain(self) -> None:
        """The sender: send what is queued; end when it is empty, or send the close frame."""
        assert self.websocket is not None
        sender = asyncio.current_task()
        assert sender is not None
        try:
            await self._send_queued(self.websocket)
        except asyncio.CancelledError:
            # The watchdog's cancel ends here (a slow consumer: closed below); others' go on,
            # leaving no sender behind: a later frame or close starts another.
            if not self._timed_out or sender.uncancel():
                if self._sender is sender:
                    self._sender = None
                raise
        except Exception as exc:  # the client went away under us
            log.debug("peer %s send failed: %r", self.id, exc)
            if not self.closing:
                self.close(GONE, "")
            if not self._timed_out:
                self._set_closed()
                return
        finally:
            self._in_flight = 0
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
        if self.close_code is None:  # drained: the next frame that has to wait starts another
            self._sender = None
            return
        await self._send_close()

    async def _send_queued(self, websocket: Socket) -> None:
        loop = asyncio.get_running_loop()
        while self.close_code is None:
            if not self._queue:
                self._queue = None  # dropped until a frame has to wait again
                return
            data = self._queue.popleft()
            now = loop.time()
            if data is self._initial:
                self._initial = None
                # send_timeout per max_queue_bytes of it, on top of the usual send_timeout:
                # it covers this send and the ones waiting behind it for the bytes to drain
                # (uvicorn writes a frame at once and makes the *next* send wait).
                size_share = len(data) / self.max_queue_bytes
                self._grace_until = now + self.send_timeout * (1 + size_share)
            else:
                self._queued_bytes -= len(data)
            self._sends += 1
            self._in_flight = self._sends
            self._deadline = max(now + self.send_timeout, self._grace_until)
            if self._watchdog is None:
                self._watchdog = loop.call_at(self._deadline, self._watch, self._sends)
            await websocket.send_bytes(data)
            self._in_flight = 0

    def _watch(self, send: int) -> None:
        """The watchdog fired at the deadline of send number ``send`` (see the module doc)."""
        self._watchdog = None
        if not self._in_flight:
            return  # idle: the next send arms it again
        if self._in_flight != send:  # a later send (deadlines never decrease): wait for its own
            loop = asyncio.get_running_loop()
            self._watchdog = loop.call_at(self._deadline, self._watch, self._in_flight)
            return
        self._timed_out = True
        self._close_slow_consumer()
        assert self._sender is not None
        self._sender.cancel()

    async def _send_close(self) -> None:
        assert self.websocket is not None
        code = self.close_code or 1000
        if code == GONE:  # nothing to send: the transport is gone
            self._set_closed()
            return
        try:
            # Blocks while the transport is paused (a consumer that does not read): the frame
            # goes out when it drains, and the wait ends when the connection is lost.
            await self.websocket.close(code, self.close_reason)
        except Exception as exc:
            log.debug("peer %s close failed: %r", self.id, exc)
        finally:
            self._set_closed()
