"""The one token bucket, buckets per key bounded in memory, and the ``Limiter`` seam.

``Bucket`` may go into debt: ``take`` spends and says how long to wait until it is repaid
(a socket over its byte rate stops being read for that long), ``try_take`` spends only what is
there (awareness, sync requests). Those stay in the node: a socket lives on one node.

``RateLimiter`` keeps one bucket per key, for what a client could spread over several nodes:
WebSocket handshakes (HTTP 429 before accept), login attempts and failed credentials per
client address, and the API's per-user rates. Those are used through ``Limiter`` (async, one
call per check), which ``RateLimiter`` is on one node; with a fan-out, the fan-out's limiter
shares each bucket between the nodes (``collab.fanout.limits``: Redis), falling back to this
node's ``RateLimiter`` when the channel does not answer. The address is the ASGI client, which
uvicorn's proxy-headers handling sets from ``X-Forwarded-For`` when the proxy is in
``forwarded_allow_ips``, so the real address counts, not the proxy's.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from starlette.requests import HTTPConnection

Clock = Callable[[], float]


class Bucket:
    """``burst`` tokens refilled at ``rate`` per second."""

    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, amount: float) -> float:
        """Spend ``amount``, going into debt if need be; the seconds until out of debt."""
        self._refill()
        self.tokens -= amount
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def try_take(self, amount: float = 1.0) -> bool:
        """Spend ``amount`` only if it is there (never into debt)."""
        self._refill()
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False

    def wait_for(self, amount: float = 1.0) -> float:
        """Seconds until ``amount`` is there."""
        self._refill()
        return 0.0 if self.tokens >= amount else (amount - self.tokens) / self.rate


class Limiter(Protocol):
    """A rate and a burst per key: a ``RateLimiter`` (this node), or one bucket per key every
    node shares (``collab.fanout.Fanout.limiter``)."""

    async def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when taken, else the seconds until one is there
        (nothing taken; an HTTP ``Retry-After``)."""

    async def peek(self, key: str) -> float:
        """Seconds until ``key``'s bucket holds a token again (0: it holds one); spends none."""


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


class RateLimiter:
    """One ``Bucket`` per key; at most ``max_keys``, the least recently seen dropped first.
    The ``Limiter`` of one node (``take``, ``peek``: ``acquire``, ``retry_after``)."""

    def __init__(
        self, rate: float, burst: float, *, max_keys: int = 100_000, clock: Clock = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def _bucket(self, key: str) -> Bucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = Bucket(self.rate, self.burst, self.clock)
        self._buckets[key] = bucket  # most recently seen last, so eviction is O(1)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return bucket

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        return self._bucket(key).try_take()

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when taken, else the seconds until one is there
        (nothing taken; an HTTP ``Retry-After``)."""
        bucket = self._bucket(key)
        return 0.0 if bucket.try_take() else bucket.wait_for()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key``'s bucket holds a token again (0: it holds one); spends none."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait_for(1.0)

    async def take(self, key: str) -> float:
        return self.acquire(key)

    async def peek(self, key: str) -> float:
        return self.retry_after(key)

    def __len__(self) -> int:
        return len(self._buckets)
