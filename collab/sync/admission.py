"""Admission: limits that protect everyone from one client, none of which drops a Yjs update.

- Connections: a total cap and a per-user cap, checked before accept (HTTP 503 / 429), and an
  overload signal (event-loop lag) that turns new handshakes away with 503 rather than letting
  the server slow down for everyone already connected.
- Per connection: message and byte rates as token buckets that may go into debt. Over the rate
  the endpoint simply stops reading that socket until the debt is repaid: TCP backpressure
  slows the client down and nothing it sent is dropped. A client that stays over its rate for
  ``stall_seconds`` is closed with 1008; it resyncs on reconnect, losing nothing.
- Awareness has its own rate, kept by ``collab.sync.presence.AwarenessGate``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

from collab.ratelimit import Bucket


class Throttle:
    """One connection's inbound message and byte rates (stop reading when over)."""

    __slots__ = ("bytes", "clock", "messages", "stall_seconds", "throttled_since", "waits")

    def __init__(
        self,
        messages_per_second: float,
        bytes_per_second: float,
        *,
        message_burst: float,
        byte_burst: float,
        stall_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.messages = Bucket(messages_per_second, message_burst, clock)
        self.bytes = Bucket(bytes_per_second, byte_burst, clock)
        self.stall_seconds = stall_seconds
        self.clock = clock
        self.throttled_since: float | None = None
        self.waits = 0

    def account(self, size: int) -> float:
        """Count one received message; the pause before reading the next one."""
        pause = max(self.messages.take(1), self.bytes.take(size))
        if pause > 0:
            self.waits += 1
            if self.throttled_since is None:
                self.throttled_since = self.clock()
        else:
            self.throttled_since = None
        return pause

    @property
    def stalled(self) -> bool:
        """Over its rate for longer than ``stall_seconds`` without a break."""
        return (
            self.throttled_since is not None
            and self.clock() - self.throttled_since > self.stall_seconds
        )


class ConnectionLimits:
    """Open sockets in total and per user, decided before accept."""

    def __init__(self, max_total: int, max_per_user: int) -> None:
        self.max_total = max_total
        self.max_per_user = max_per_user
        self.total = 0
        self.per_user: Counter[str] = Counter()

    def refusal(self, user_id: str | None) -> int | None:
        """The HTTP status to refuse with (503 server full, 429 user over cap), or None."""
        if self.total >= self.max_total:
            return 503
        if user_id is not None and self.per_user[user_id] >= self.max_per_user:
            return 429
        return None

    def opened(self, user_id: str | None) -> None:
        self.total += 1
        if user_id is not None:
            self.per_user[user_id] += 1

    def closed(self, user_id: str | None) -> None:
        self.total -= 1
        if user_id is not None:
            self.per_user[user_id] -= 1
            if self.per_user[user_id] <= 0:
                del self.per_user[user_id]


class LoopLag:
    """Measures event-loop lag; ``overloaded`` while it exceeds a threshold."""

    def __init__(self, threshold: float, interval: float = 0.25) -> None:
        self.threshold = threshold
        self.interval = interval
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def overloaded(self) -> bool:
        return self.threshold > 0 and self.lag > self.threshold

    def start(self) -> None:
        if self.threshold > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.lag = max(0.0, loop.time() - started - self.interval)
