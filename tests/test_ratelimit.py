from __future__ import annotations

import pytest

from collab.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another address has its own bucket
    clock.now = 0.5  # one token back at 2/s
    assert limiter.allow("a") and not limiter.allow("a")
    clock.now = 100
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_memory_is_bounded_by_evicting_the_least_recent() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_keys=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100


def test_acquire_says_how_long_until_the_next_token() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.5, burst=2, clock=clock)
    assert [limiter.acquire("u") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("u") == 2.0  # nothing taken: a refusal spends no token
    clock.now = 1.5
    assert limiter.acquire("u") == 0.5
    clock.now = 2.0
    assert limiter.acquire("u") == 0.0


@pytest.mark.anyio
async def test_the_limiter_seam_of_one_node_is_the_same_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    assert await limiter.peek("a") == 0.0  # a key never seen: a full bucket
    assert await limiter.take("a") == 0.0
    assert await limiter.take("a") == 1.0 and await limiter.peek("a") == 1.0
    assert not limiter.allow("a")  # the same bucket as the sync calls
    clock.now = 1.0
    assert await limiter.peek("a") == 0.0 and await limiter.take("a") == 0.0
