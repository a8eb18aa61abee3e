"""``SocketObserver``: pure ASGI middleware that sees every WebSocket from the outside.

It gives each socket a connection id (``collab.logs``), counts frames and bytes by type both
ways, open connections, handshakes refused before accept and each close (by code; refused
messages follow from the server's close code), then logs one line per closed socket. No code
runs in the read loop for this; HTTP passes straight through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collab import logs
from collab.metrics.collector import Traffic
from collab.metrics.definitions import Metrics, message_type
from collab.sync.peer import DIRECT_SEND, REFUSED_AS, WRITE_NOW
from collab.sync.readnow import READ_NOW, WAKE, Register, Take

log = logging.getLogger("collab.ws")


class SocketObserver:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.runs = _Runs(metrics.outgoing)  # the frames written in place, all sockets'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        logs.start_connection()
        write = scope.get(WRITE_NOW)
        watch = _Watch(
            self.metrics, receive, send, write or _refuse, self.runs, scope.get(READ_NOW)
        )
        scope[DIRECT_SEND] = watch.send_frame  # the peer's frames: counted here too
        if write is not None:  # collab's uvicorn protocol offers it
            scope[WRITE_NOW] = watch.write_frame
        if watch.register is not None:  # and its inline reads: counted as they are taken
            scope[READ_NOW] = watch.register_take
        started = time.monotonic()
        try:
            await self.app(scope, watch.receive, watch.send)
        finally:
            watch.finish(time.monotonic() - started, scope.get(REFUSED_AS))


def _refuse(data: bytes) -> bool:
    return False


def _utf8_len(text: str | None) -> int:
    """The bytes of a text frame (its UTF-8 payload), as a data frame's are counted."""
    return len(text.encode()) if text else 0


class _Runs:
    """The frames written in place (``WRITE_NOW``), counted per run of one payload.

    A relay writes one payload to every other socket of a room in a row. The first write of a
    payload is counted at once and begins its run; each later write of the same object only
    adds one to the run's repeats, which are counted together (``count`` frames of its size)
    when another payload begins a run, or at the end of the event loop's iteration (a
    callback scheduled by the first repeat). So the counters are exact, behind by at most
    one iteration of the loop, a frame relayed to one socket schedules nothing, and only the
    loop's thread writes them (a scrape on the metrics port reads them from another thread).
    """

    __slots__ = ("count", "data", "kind", "traffic")

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.data: bytes | None = None  # the payload of the run; None: no run
        self.kind = ""
        self.count = 0  # its repeats not counted yet

    def start(self, data: bytes) -> None:
        """A first write of ``data``: counted, and the run of it begins."""
        if self.count:
            self.flush()
        self.data = data
        self.kind = kind = message_type(data)
        self.traffic.add(kind, len(data))

    def repeat(self) -> None:
        """The run's first repeat: counted at the end of the loop's iteration at the latest."""
        self.count = 1
        asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Count the repeats of the run (its payload stays: a later write repeats it)."""
        if self.count and self.data is not None:
            self.traffic.add_run(self.kind, self.count, len(self.data))
        self.count = 0


class _Watch:
    """One socket's observed life: accepted yet, and who closed it with which code.

    Its wrappers of the server's receive, send and write are methods of one slotted object,
    not closures: one per open socket, for as long as it is open.
    """

    __slots__ = (
        "_receive",
        "_send",
        "_take",
        "accepted",
        "close",
        "metrics",
        "register",
        "runs",
        "write",
    )

    def __init__(
        self,
        metrics: Metrics,
        receive: Receive,
        send: Send,
        write: Callable[[bytes], bool],
        runs: _Runs,
        register: Register | None = None,
    ) -> None:
        self.metrics = metrics
        self._receive = receive
        self._send = send
        self.write = write  # the server's synchronous write (WRITE_NOW), when offered
        self.runs = runs
        self.register = register  # and its inline reads (READ_NOW)
        self._take: Take | None = None
        self.accepted = False
        self.close: tuple[int, bool] | None = None  # code, sent by the server

    async def receive(self) -> Message:
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.receive":
            data = message.get("bytes")
            if data is not None:
                self.metrics.incoming.add(message_type(data), len(data))
            elif message is not WAKE:  # WAKE: no frame, the read loop's own signal
                self.metrics.incoming.add("text", _utf8_len(message.get("text")))
        elif kind == "websocket.disconnect" and self.close is None and self.accepted:
            self.close = (int(message.get("code", 1005)), False)
        return message

    async def send(self, message: Message) -> None:
        m = self.metrics
        kind = message["type"]
        if kind == "websocket.send":
            data = message.get("bytes")
            if data is not None:
                m.outgoing.add(message_type(data), len(data))
            else:  # a text frame (the live stream's JSON), counted as received ones are
                m.outgoing.add("text", _utf8_len(message.get("text")))
        elif kind == "websocket.accept":
            self.accepted = True
            m.connections.inc()
        elif kind == "websocket.close":
            if not self.accepted:
                m.handshake_refused(403)  # uvicorn answers a close before accept with 403
            elif self.close is None:
                self.close = (int(message.get("code", 1000)), True)
        elif kind == "websocket.http.response.start":
            m.handshake_refused(int(message.get("status", 0)))
        await self._send(message)

    async def send_frame(self, data: bytes) -> None:
        """The socket's direct send of data frames (``collab.sync.peer.DIRECT_SEND``): each
        counted as ``send`` counts it, then handed to the server, past Starlette's WebSocket
        and the send wrappers of the middleware inside this one."""
        self.metrics.outgoing.add(message_type(data), len(data))
        await self._send({"type": "websocket.send", "bytes": data})

    def write_frame(self, data: bytes) -> bool:
        """The server's synchronous write (``collab.sync.peer.WRITE_NOW``), counting each frame
        it took (``_Runs``)."""
        if self.write(data):
            runs = self.runs
            if data is not runs.data:
                runs.start(data)
            elif runs.count:
                runs.count += 1
            else:
                runs.repeat()
            return True
        return False

    def register_take(self, take: Take) -> Callable[[], None]:
        """The server's ``READ_NOW``, with ``take`` counting each frame it took."""
        assert self.register is not None
        self._take = take
        return self.register(self.take)

    def take(self, frame: bytes) -> bool:
        assert self._take is not None
        if self._take(frame):
            self.metrics.incoming.add(message_type(frame), len(frame))
            return True
        return False

    def finish(self, seconds: float, refused_as: str | None = None) -> None:
        if not self.accepted:
            return
        self.metrics.connections.dec()
        code, by_server = self.close or (1006, False)
        self.metrics.closed(code, by_server, refused_as if by_server else None)
        log.info(
            "socket closed by %s after %.1fs",
            "server" if by_server else "client",
            seconds,
            extra={"code": code},
        )
