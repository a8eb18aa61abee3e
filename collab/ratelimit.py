"""Token buckets per client address, bounded in memory.

Used for WebSocket handshakes (HTTP 429 before accept) and login attempts. The address is the
ASGI client, which uvicorn's proxy-headers handling sets from ``X-Forwarded-For`` when the
proxy is in ``forwarded_allow_ips``, so the real address counts, not the proxy's.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.requests import HTTPConnection


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        # key -> (tokens, last refill); least recently used first, so eviction is O(1).
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        now = self.clock()
        tokens, stamp = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)  # the least recently seen address
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)
