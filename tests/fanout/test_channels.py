"""The notice channel's gap check against a real Redis (the shared one, a key per test): a
batch read after entries newer than its cursor were trimmed makes the watcher recheck, a batch
read whole does not, and a Redis that cannot say counts as a gap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from collab.fanout import ROLE, FanoutStats, Notice
from collab.fanout.channels import NoticeChannel
from collab.fanout.records import encode_notice
from tests.fanout.test_sharing import Watcher
from tests.support.redisserver import delete_prefix, shared_redis, unique_prefix

pytestmark = pytest.mark.anyio


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    url, prefix = shared_redis(), unique_prefix()
    client = Redis.from_url(url)
    yield client, f"{prefix}:notices"
    await client.aclose()
    delete_prefix(url, prefix)


async def add(client: Redis, key: str, count: int) -> list[tuple[bytes, object]]:
    """``count`` notices of node a, as the reader hands them on: (id, fields)."""
    added: list[tuple[bytes, object]] = []
    for n in range(count):
        fields: dict[Any, Any] = encode_notice(Notice(ROLE, "room-1", f"user-{n}", "a", 1.0))
        entry_id: Any = await client.xadd(key, fields)
        added.append((entry_id, fields))
    return added


async def test_only_a_trim_past_the_cursor_makes_the_watcher_recheck(
    redis: tuple[Redis, str],
) -> None:
    client, key = redis
    watcher, stats = Watcher(), FanoutStats()
    channel = NoticeChannel(watcher, "b", stats, client, key)
    entries = await add(client, key, 6)
    with anyio.fail_after(5):
        channel.deliver(entries[:2], b"0-0")
        await channel.checked()
        assert (watcher.resyncs, stats.notice_gaps) == (0, 0)
        # Entries 3 and 4 go before the channel reads them; the first two it had read go too.
        await client.xtrim(key, maxlen=2, approximate=False)
        channel.deliver(entries[4:], entries[1][0])
        await channel.checked()
        assert (watcher.resyncs, stats.notice_gaps) == (1, 1)
        assert len(watcher.notices) == 4
        # Trimmed up to the cursor's own entry, which stays: nothing unread went.
        channel.deliver(await add(client, key, 1), entries[5][0])
        await client.xtrim(key, maxlen=2, approximate=False)
        await channel.checked()
        assert watcher.resyncs == 1


async def test_a_redis_that_cannot_say_counts_as_a_gap(redis: tuple[Redis, str]) -> None:
    client, key = redis
    watcher, stats = Watcher(), FanoutStats()
    channel = NoticeChannel(watcher, "b", stats, client, key + ":none")  # no such stream
    with anyio.fail_after(5):
        channel.deliver(await add(client, key, 1), b"0-0")
        await channel.checked()
    assert (watcher.resyncs, stats.notice_gaps, len(watcher.notices)) == (1, 1, 1)


async def test_a_check_that_fails_for_a_reason_but_redis_counts_as_a_gap(
    redis: tuple[Redis, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the check raises, the channel cannot tell: it rechecks (the task that checks
    must not end with the error, the gap unreported)."""
    client, key = redis

    async def broken(name: str) -> object:
        raise OSError("not a RedisError")

    monkeypatch.setattr(client, "xinfo_stream", broken)
    watcher, stats = Watcher(), FanoutStats()
    channel = NoticeChannel(watcher, "b", stats, client, key)
    with anyio.fail_after(5):
        channel.deliver(await add(client, key, 1), b"0-0")
        await channel.checked()
    assert (watcher.resyncs, stats.notice_gaps, len(watcher.notices)) == (1, 1, 1)
