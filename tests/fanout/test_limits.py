"""Rate limits shared between nodes (``Fanout.limiter``): the contract over the in-process twin
and real Redis (the shared one, a unique key prefix per test), then, over a private
``redis-server``, what a node does when Redis dies, stops answering, or comes back."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import anyio
import pytest
import redis

import collab.fanout.limits as limits
from collab.fanout import Fanout
from collab.fanout.limits import PAUSE, rate_key
from collab.fanout.local import LocalBus, LocalFanout
from collab.fanout.streams import RedisFanout
from collab.ratelimit import Limiter, RateLimiter
from tests.support.redisserver import PrivateRedis, delete_prefix, shared_redis, unique_prefix
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

SLOW = 0.01  # tokens per second: nothing refills during a test
BOUND = limits.TIMEOUT  # how long a node's check waits for Redis in production


@pytest.fixture(autouse=True)
def patient_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The buckets' contract, not the node's 0.1 s bound: on a loaded machine a check that
    outlives the bound falls back to the node's own bucket while Redis may still spend the token
    (a token gone that no check counted), so these tests let a check wait 2 s. The tests of that
    bound (a paused Redis) set it back."""
    monkeypatch.setattr(limits, "TIMEOUT", 2.0)


@pytest.fixture(params=["local", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Fanout, Fanout]]:
    """Two nodes' fan-outs on one channel."""
    if request.param == "local":
        bus = LocalBus()
        yield LocalFanout(bus, "a"), LocalFanout(bus, "b")
        return
    url, prefix = shared_redis(), unique_prefix()
    a = RedisFanout(url, "a", prefix=prefix)
    b = RedisFanout(url, "b", prefix=prefix)
    yield a, b
    await a.close()
    await b.close()
    delete_prefix(url, prefix)


async def until_shared_again(fanout: RedisFanout, limiter: Limiter, key: str) -> None:
    """Wait (past the fallback's pause) until a check of ``key`` goes to Redis again."""
    checks = fanout.stats.rate_checks

    async def shared_again() -> bool:
        await limiter.take(key)
        return fanout.stats.rate_checks > checks

    await wait_until(shared_again, PAUSE[1] + 5, interval=0.1)


def limiters(fanout: Fanout, kind: str, rate: float, burst: float) -> Limiter:
    return fanout.limiter(kind, RateLimiter(rate, burst))


async def test_every_node_spends_from_one_bucket_per_key(pair: tuple[Fanout, Fanout]) -> None:
    a, b = pair
    on_a, on_b = limiters(a, "api_chat", SLOW, 3), limiters(b, "api_chat", SLOW, 3)
    waits = [await limiter.take("u1") for limiter in (on_a, on_b, on_a, on_b)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 90 < waits[3] <= 100  # one token per 100 s: the next one is ~100 s away
    assert 90 < await on_a.peek("u1") <= 100
    assert await on_b.take("u2") == 0.0  # another key has its own bucket
    assert await limiters(a, "login", SLOW, 3).take("u1") == 0.0  # and another kind
    assert await on_a.peek("u2") == 0.0 and await on_a.peek("u2") == 0.0  # peeking spends none
    assert [await on_a.take("u2") > 0 for _ in range(3)] == [False, False, True]
    assert a.stats.rate_checks + b.stats.rate_checks > 0
    assert a.stats.rate_fallbacks == b.stats.rate_fallbacks == 0


async def test_a_bucket_refills_at_its_rate(pair: tuple[Fanout, Fanout]) -> None:
    a, b = pair
    on_a, on_b = limiters(a, "handshake", 20, 1), limiters(b, "handshake", 20, 1)
    assert await on_a.take("10.0.0.1") == 0.0
    wait = await on_b.take("10.0.0.1")
    assert 0 < wait <= 0.05
    await anyio.sleep(wait + 0.05)
    assert await on_b.take("10.0.0.1") == 0.0


@pytest.fixture
async def shared() -> AsyncIterator[tuple[str, str]]:
    url, prefix = shared_redis(), unique_prefix()
    yield url, prefix
    delete_prefix(url, prefix)


async def test_a_bucket_is_one_key_that_expires_when_full_and_names_no_secret(
    shared: tuple[str, str],
) -> None:
    url, prefix = shared
    fanout = RedisFanout(url, "a", prefix=prefix)
    raw = redis.Redis.from_url(url)
    try:
        limiter = limiters(fanout, "api_chat", 2, 4)  # full again 2 s after the last take
        await limiter.take("user-1")
        key = f"{prefix}:rl:api_chat:user-1"
        assert key == rate_key(prefix, "api_chat", "user-1")
        assert 0 < raw.pttl(key) <= 500  # one token is 0.5 s
        for _ in range(3):
            await limiter.take("user-1")
        assert 1500 < raw.pttl(key) <= 2000
        odd = "secret token/with spaces " + "x" * 200
        await limiter.take(odd)
        keys = [k.decode() for k in raw.scan_iter(match=f"{prefix}:rl:*")]
        assert len(keys) == 2 and not any("secret" in k for k in keys)
        assert all(len(k) < 100 for k in keys)
    finally:
        raw.close()
        await fanout.close()


async def test_a_key_of_another_type_is_limited_by_the_node_and_others_stay_shared(
    shared: tuple[str, str],
) -> None:
    url, prefix = shared
    fanout = RedisFanout(url, "a", prefix=prefix)
    raw = redis.Redis.from_url(url)
    try:
        raw.hset(rate_key(prefix, "login", "10.0.0.9"), "x", "1")  # not collab's
        limiter = limiters(fanout, "login", SLOW, 2)
        assert [await limiter.take("10.0.0.9") > 0 for _ in range(3)] == [False, False, True]
        assert fanout.stats.rate_fallbacks == 3
        assert await limiter.take("10.0.0.8") == 0.0  # the channel is not written off
        assert fanout.stats.rate_checks == 1
    finally:
        raw.close()
        await fanout.close()


async def test_with_redis_dead_each_node_limits_alone_then_shares_again(
    private_redis: PrivateRedis,
) -> None:
    a, b = RedisFanout(private_redis.url, "a"), RedisFanout(private_redis.url, "b")
    on_a, on_b = limiters(a, "api_chat", SLOW, 2), limiters(b, "api_chat", SLOW, 2)
    try:
        assert await on_a.take("u") == 0.0 and await on_b.take("u") == 0.0
        assert await on_a.take("u") > 0  # shared: the burst of 2 is spent
        private_redis.kill()
        # Each node's own bucket decides: its burst, then 429s. Never unlimited.
        assert [await on_a.take("u") > 0 for _ in range(3)] == [False, False, True]
        assert [await on_b.take("u") > 0 for _ in range(3)] == [False, False, True]
        assert a.stats.rate_fallbacks == 3 and b.stats.rate_fallbacks == 3
        private_redis.start()  # empty: the shared buckets start full
        await until_shared_again(a, on_a, "probe")
        await until_shared_again(b, on_b, "probe")
        waits = [await limiter.take("v") for limiter in (on_b, on_a, on_a)]
        assert waits[:2] == [0.0, 0.0] and waits[2] > 0  # one bucket of 2 again
    finally:
        await a.close()
        await b.close()


async def test_a_paused_redis_holds_no_check_up(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGSTOP: connections are accepted, nothing answers. A check waits at most its bound
    (not Redis's socket timeout), later ones go to the node's limiter at once."""
    monkeypatch.setattr(limits, "TIMEOUT", BOUND)
    fanout = RedisFanout(private_redis.url, "a")
    limiter = limiters(fanout, "handshake", SLOW, 5)
    assert private_redis.proc is not None
    try:
        assert await limiter.take("10.1.1.1") == 0.0
        os.kill(private_redis.proc.pid, signal.SIGSTOP)
        try:
            with anyio.fail_after(1.5):  # ten checks; one Redis timeout would be 2 s
                waits = [await limiter.take("10.1.1.1") for _ in range(10)]
        finally:
            os.kill(private_redis.proc.pid, signal.SIGCONT)
        assert waits[:5] == [0.0] * 5 and all(w > 0 for w in waits[5:])
        assert fanout.stats.rate_fallbacks == 10
        await until_shared_again(fanout, limiter, "10.1.1.2")
    finally:
        await fanout.close()


async def test_a_redis_refusing_every_write_is_paused_as_a_dead_one(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """OOM (likewise READONLY, NOPERM, BUSY): Redis answers every check with an error, which is
    the channel's, not one key's: the node limits alone for the pause, warned once, and does
    not ask Redis again per check until the pause is over."""
    fanout = RedisFanout(private_redis.url, "a")
    limiter = limiters(fanout, "login", SLOW, 2)
    raw = redis.Redis.from_url(private_redis.url)
    try:
        assert await limiter.take("10.2.2.2") == 0.0
        raw.config_set("maxmemory-policy", "noeviction")
        raw.config_set("maxmemory", "1")
        caplog.set_level("WARNING", logger="collab.fanout")
        waits = [await limiter.take(f"10.2.2.{n}") for n in range(20)]
        assert waits[0] == 0.0 and fanout.stats.rate_fallbacks == 20
        warned = [r for r in caplog.records if "rate limits" in r.getMessage()]
        assert len(warned) == 1, [r.getMessage() for r in warned]
        raw.config_set("maxmemory", "0")
        await until_shared_again(fanout, limiter, "10.2.3.1")
    finally:
        raw.close()
        await fanout.close()
