"""One socket's outbound side: a bounded queue and one sender task.

Rooms never await a socket: they call ``Peer.send`` (non-blocking) and move on. The queue is
bounded in bytes; a consumer that lets it overflow, or blocks one send for ``send_timeout``, is
a slow consumer: its queue is dropped at once (memory returns) and it is closed with 1013. It
resyncs on reconnect, so nothing is lost. Only this module and ``endpoint`` touch the socket.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

if TYPE_CHECKING:
    from collab.auth.principal import Principal
    from collab.limits import Bucket
    from collab.wire import AwarenessEntry

log = logging.getLogger("collab.peer")

_ids = itertools.count(1)
SLOW_CONSUMER = "slow consumer"  # the close reason


class Peer:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        max_queue_bytes: int,
        send_timeout: float,
        readonly: bool = False,
        opted_in: bool = False,
        principal: Principal | None = None,
    ) -> None:
        self.id = next(_ids)
        self.websocket = websocket
        self.principal = principal
        self.readonly = readonly
        self.opted_in = opted_in  # receives collab's own message types (>= 100)
        self.denied_once = False
        self.awareness_clients: set[int] = set()
        # Awareness over the rate: the latest state per client id, sent when allowed.
        self.awareness_bucket: Bucket | None = None
        self.awareness_pending: dict[int, AwarenessEntry] = {}
        self.awareness_flush_scheduled = False
        self.max_queue_bytes = max_queue_bytes
        self.send_timeout = send_timeout
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = asyncio.Event()  # set once the close frame was handed to the server
        self.on_slow_consumer: Callable[[], None] | None = None  # metrics

    def __repr__(self) -> str:
        return f"<Peer {self.id}>"

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def send(self, data: bytes) -> None:
        """Queue a frame; never blocks. Overflow closes the socket with 1013."""
        if self.closing:
            return
        if self._queued_bytes + len(data) > self.max_queue_bytes and self._queue:
            self._close_slow_consumer()
            return
        self._queue.append(data)
        self._queued_bytes += len(data)
        self._wake.set()

    def _close_slow_consumer(self) -> None:
        if not self.closing and self.on_slow_consumer is not None:
            self.on_slow_consumer()
        self.close(1013, SLOW_CONSUMER)

    def close(self, code: int, reason: str = "") -> None:
        """Ask for the socket to close with ``code``; queued frames are dropped."""
        if self.closing:
            return
        self.close_code = code
        self.close_reason = reason
        self._queue.clear()
        self._queued_bytes = 0
        self._wake.set()

    async def run_sender(self) -> None:
        """Drain the queue until close() is called, then send the close frame."""
        try:
            while not self.closing:
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                data = self._queue.popleft()
                self._queued_bytes -= len(data)
                send = asyncio.ensure_future(self.websocket.send_bytes(data))
                done, _ = await asyncio.wait({send}, timeout=self.send_timeout)
                if not done:
                    send.cancel()
                    self._close_slow_consumer()
                    break
                send.result()
        except Exception as exc:  # the client went away under us
            log.debug("peer %s send failed: %r", self.id, exc)
            if not self.closing:
                self.close(1006, "")
            self.closed.set()
            return
        await self._send_close()

    async def _send_close(self) -> None:
        code = self.close_code or 1000
        if code == 1006:  # nothing to send: the transport is gone
            self.closed.set()
            return
        try:
            # Blocks while the transport is paused (a consumer that does not read): the frame
            # goes out when it drains, and the wait ends when the connection is lost.
            await self.websocket.close(code, self.close_reason)
        except Exception as exc:
            log.debug("peer %s close failed: %r", self.id, exc)
        finally:
            self.closed.set()
