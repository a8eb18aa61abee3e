"""Rate limits every node shares, in Redis: one bucket per (kind, key), one script per check.

A client can spread its requests over every node behind the balancer, so the limits that count
per user or per client address (handshakes, logins, failed credentials, the API's per-user
rates) keep their buckets in Redis, where all nodes spend from the same one. Each bucket is one
key, ``<prefix>:rl:<kind>:<key>``, holding the GCRA's "theoretical arrival time" (the time the
bucket is full again, in Redis's milliseconds: every node reads the same clock), set with a
``PX`` that ends when the bucket would be full anyway, so an idle key costs nothing. A check is
one ``EVALSHA`` (``GCRA_SCRIPT``): read, decide and write atomically, whichever node asks.
Keys hold user ids and addresses only, never a credential.

Redis must answer within ``TIMEOUT``. When it does not (down, blackholed, slow, or refusing
every check: out of memory, a read-only replica, the ACL), that check is
decided by the node's own ``RateLimiter`` instead (the same rate and burst, counted per node as
with one node: never unlimited, never a request held up longer than the bound) and counted in
``FanoutStats.rate_fallbacks``; for a pause after a failure (doubling up to ``PAUSE[1]``) every
check goes to the node's limiter at once, then Redis is tried again, and checks are shared again
as soon as it answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from collab.fanout.base import FanoutStats
from collab.fanout.connect import one_key
from collab.ratelimit import RateLimiter

log = logging.getLogger("collab.fanout")

TIMEOUT = 0.1  # seconds one check may wait for Redis before the node decides alone
PAUSE = (0.5, 4.0)  # seconds after a failure before Redis is tried again: first, longest
_PLAIN_KEY = re.compile(r"[A-Za-z0-9._:@-]{1,128}")

# GCRA over one key. KEYS: the bucket. ARGV: the interval between tokens (ms, 1000 / rate),
# the burst, "1" to take a token ("0": only look). Returns 0 (there is a token: taken when
# asked) or the whole milliseconds until there is one (nothing taken). The key holds the time
# the bucket is full again and expires then. TIME in a script that writes needs effects
# replication: the default from Redis 5 on (``replicate_commands`` for older ones).
GCRA_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then tat = now end
local wait = tat + interval - interval * tonumber(ARGV[2]) - now
if wait > 0 then return math.ceil(wait) end
if ARGV[3] == '1' then
  local full = tat + interval
  redis.call('SET', KEYS[1], string.format('%.3f', full), 'PX', math.ceil(full - now))
end
return 0
"""


def rate_key(prefix: str, kind: str, key: str) -> str:
    """The bucket's Redis key: the id or address itself, or its digest when it is not plain."""
    if not _PLAIN_KEY.fullmatch(key):
        key = "h-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{prefix}:rl:{kind}:{key}"


class SharedLimits:
    """One node's access to the shared buckets: the script, and whether Redis answers."""

    def __init__(
        self, redis: Redis, prefix: str, stats: FanoutStats, *, timeout: float | None = None
    ) -> None:
        self.prefix = prefix
        self.stats = stats
        self.timeout = TIMEOUT if timeout is None else timeout
        self._script = redis.register_script(GCRA_SCRIPT)
        self._retry_at = 0.0  # monotonic: no check goes to Redis before this
        self._pause = PAUSE[0]
        self._shared = True  # the last check went through Redis (for the log)

    def limiter(self, kind: str, local: RateLimiter) -> SharedLimiter:
        return SharedLimiter(self, kind, local)

    async def check(self, kind: str, key: str, rate: float, burst: float, take: bool) -> float:
        """Seconds until ``key`` has a token of ``kind`` (0.0: it had one, taken if ``take``);
        NotShared when Redis did not answer in time."""
        if time.monotonic() < self._retry_at:
            raise NotShared
        args: list[Any] = [f"{1000.0 / rate:.6f}", f"{burst:.6f}", "1" if take else "0"]
        try:
            async with asyncio.timeout(self.timeout):
                waited = await self._script(keys=[rate_key(self.prefix, kind, key)], args=args)
        except ResponseError as exc:
            if not one_key(exc):  # OOM, READONLY, NOPERM, BUSY...: every check would fail
                self._failed(exc)
            else:
                log.warning("rate limits: Redis refused a check of %s: %r", kind, exc)
            raise NotShared from exc
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise NotShared from exc
        if not self._shared:
            log.info("rate limits: shared through Redis again")
        self._shared = True
        self._pause = PAUSE[0]
        self.stats.rate_checks += 1
        return int(waited) / 1000.0

    def _failed(self, exc: BaseException) -> None:
        if self._shared:
            log.warning("rate limits: Redis did not answer (%r): each node limits alone", exc)
        self._shared = False
        self._retry_at = time.monotonic() + self._pause
        self._pause = min(self._pause * 2, PAUSE[1])


class NotShared(Exception):
    """Redis could not decide this check: the node's own limiter does."""


class SharedLimiter:
    """A ``collab.ratelimit.Limiter`` whose buckets every node shares; ``local`` (this node's,
    with the same rate and burst) decides while Redis does not answer."""

    def __init__(self, limits: SharedLimits, kind: str, local: RateLimiter) -> None:
        self.limits = limits
        self.kind = kind
        self.local = local
        self.rate = local.rate
        self.burst = local.burst

    async def take(self, key: str) -> float:
        try:
            return await self.limits.check(self.kind, key, self.rate, self.burst, take=True)
        except NotShared:
            self.limits.stats.rate_fallbacks += 1
            return self.local.acquire(key)

    async def peek(self, key: str) -> float:
        try:
            return await self.limits.check(self.kind, key, self.rate, self.burst, take=False)
        except NotShared:
            self.limits.stats.rate_fallbacks += 1
            return self.local.retry_after(key)
