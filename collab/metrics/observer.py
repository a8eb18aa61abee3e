"""``SocketObserver``: pure ASGI middleware that sees every WebSocket from the outside.

It gives each socket a connection id (``collab.logs``), counts frames and bytes by type both
ways, open connections, handshakes refused before accept and each close (by code; refused
messages follow from the server's close code), then logs one line per closed socket. No code
runs in the read loop for this; HTTP passes straight through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collab import logs
from collab.metrics.definitions import Metrics, message_type
from collab.sync.peer import DIRECT_SEND, WRITE_NOW
from collab.sync.readnow import READ_NOW, WAKE, Register, Take

log = logging.getLogger("collab.ws")


class SocketObserver:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        logs.start_connection()
        watch = _Watch(self.metrics, receive, send, scope.get(WRITE_NOW), scope.get(READ_NOW))
        scope[DIRECT_SEND] = watch.send_frame  # the peer's frames: counted here too
        if watch.write is not None:  # collab's uvicorn protocol offers it
            scope[WRITE_NOW] = watch.write_frame
        if watch.register is not None:  # and its inline reads: counted as they are taken
            scope[READ_NOW] = watch.register_take
        started = time.monotonic()
        try:
            await self.app(scope, watch.receive, watch.send)
        finally:
            watch.finish(time.monotonic() - started)


class _Watch:
    """One socket's observed life: accepted yet, and who closed it with which code.

    Its wrappers of the server's receive, send and write are methods of one slotted object,
    not closures: one per open socket, for as long as it is open.
    """

    __slots__ = ("_receive", "_send", "_take", "accepted", "close", "metrics", "register", "write")

    def __init__(
        self,
        metrics: Metrics,
        receive: Receive,
        send: Send,
        write: Callable[[bytes], bool] | None,
        register: Register | None = None,
    ) -> None:
        self.metrics = metrics
        self._receive = receive
        self._send = send
        self.write = write  # the server's synchronous write (WRITE_NOW), when offered
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
                self.metrics.incoming.add("text", len(message.get("text") or ""))
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
        it took."""
        assert self.write is not None
        if self.write(data):
            self.metrics.outgoing.add(message_type(data), len(data))
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

    def finish(self, seconds: float) -> None:
        if not self.accepted:
            return
        self.metrics.connections.dec()
        code, by_server = self.close or (1006, False)
        self.metrics.closed(code, by_server)
        log.info(
            "socket closed by %s after %.1fs",
            "server" if by_server else "client",
            seconds,
            extra={"code": code},
        )
