"""Awareness changes trimmed from a doc's stream before a node read them (issue 15), against a
real Redis (the shared one, a key prefix per test).

The channel: a full-size batch read after changes past its cursor were trimmed counts a gap
and tells the watcher (``on_awareness_gap``, not a resync); a full batch read whole does not;
a short batch asks Redis nothing (it cannot follow a gap). Two nodes with their registries: a
removal lost to trimming is applied by re-reading the doc's states, and the reading node does
not publish its own sockets' states again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from collab.auth.principal import Principal
from collab.fanout import AwarenessRecord, FanoutStats
from collab.fanout.channels import AwarenessChannel
from collab.fanout.records import awareness_keys, encode_record
from collab.fanout.sharing import AWARENESS_MAXLEN
from collab.fanout.streams import READ_COUNT, RedisFanout
from collab.store.memory import MemoryStore
from tests.fanout.test_sharing import Watcher
from tests.support.frames import awareness_frame
from tests.support.redisserver import delete_prefix, shared_redis, unique_prefix
from tests.support.waiting import wait_until
from tests.sync.conftest import KEY
from tests.sync.test_crossnode_presence import Node, seen, shows

pytestmark = pytest.mark.anyio

ALICE = Principal(user_id="u-alice", name="Alice", via="session")
BOB = Principal(user_id="u-bob", name="Bob", via="session")
WATCHER = Principal(user_id="u-watcher", name="Watcher", via="session")
Fields = dict[Any, Any]


def change(client: int, clock: int, name: str | None) -> tuple[bytes, Fields]:
    """One change of node a, as the stream holds it; and the record as the hash holds it."""
    state = None if name is None else f'{{"name": "{name}"}}'.encode()
    record = AwarenessRecord(client, clock, ALICE.user_id, state, "a", time.time() + 3600)
    value = encode_record(record)
    return value, {b"c": str(client).encode(), b"v": value}


async def add(client: Redis, skey: str, count: int) -> list[tuple[bytes, object]]:
    """``count`` changes of node a's client 1, as the reader hands them on: (id, fields)."""
    added: list[tuple[bytes, object]] = []
    for n in range(count):
        _, fields = change(1, n + 1, f"alice-{n}")
        entry_id = await client.xadd(skey, fields)
        assert isinstance(entry_id, bytes)
        added.append((entry_id, fields))
    return added


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    url, prefix = shared_redis(), unique_prefix()
    client = Redis.from_url(url)
    yield client, awareness_keys(prefix, KEY)[1]
    await client.aclose()
    delete_prefix(url, prefix)


def test_a_read_is_never_cut_below_the_batch_that_can_follow_a_trim() -> None:
    """The check's bound is exact only while an XREAD may return a whole stream's worth."""
    assert READ_COUNT >= AWARENESS_MAXLEN


async def test_only_a_full_batch_after_a_trim_past_the_cursor_is_a_gap(
    redis: tuple[Redis, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, skey = redis
    asked = 0
    xinfo_stream = client.xinfo_stream

    async def counted(name: str) -> Any:
        nonlocal asked
        asked += 1
        return await xinfo_stream(name)

    monkeypatch.setattr(client, "xinfo_stream", counted)
    watcher, stats = Watcher(), FanoutStats()
    channel = AwarenessChannel(watcher, "b", stats, client, skey, full=4)
    entries = await add(client, skey, 8)
    with anyio.fail_after(5):
        channel.deliver(entries[:2], b"0-0")  # short: nothing asked
        await channel.checked()
        assert (asked, stats.awareness_gaps) == (0, 0)
        # Changes 3 and 4 go before the channel reads them; the two it had read go too.
        await client.xtrim(skey, maxlen=4, approximate=False)
        channel.deliver(entries[4:], entries[1][0])
        await channel.checked()
        assert (asked, stats.awareness_gaps, watcher.gaps, watcher.resyncs) == (1, 1, 1, 0)
        assert len(watcher.records) == 6
        # A full batch read whole: asked, no gap.
        more = await add(client, skey, 4)
        channel.deliver(more, entries[7][0])
        await channel.checked()
        assert (asked, stats.awareness_gaps, watcher.gaps) == (2, 1, 1)
        # A short batch is not asked about, even with its cursor gone (cannot happen with
        # MAXLEN ~ and full = MAXLEN: the trim would have left a full batch unread).
        late = await add(client, skey, 1)
        await client.xtrim(skey, maxlen=1, approximate=False)
        channel.deliver(late, more[2][0])
        await channel.checked()
        assert (asked, stats.awareness_gaps) == (2, 1)


@pytest.fixture
async def two() -> AsyncIterator[tuple[Redis, str, Node[RedisFanout], Node[RedisFanout]]]:
    url, prefix, store = shared_redis(), unique_prefix(), MemoryStore()
    a = Node(store, RedisFanout(url, "a", prefix=prefix))
    b = Node(store, RedisFanout(url, "b", prefix=prefix))
    client = Redis.from_url(url)
    for node in (a, b):
        await node.fanout.start()
    yield client, prefix, a, b
    for node in (a, b):
        await node.registry.close()
        await node.fanout.close()
    await client.aclose()
    delete_prefix(url, prefix)


async def test_a_removal_trimmed_away_is_applied_by_a_re_read_that_republishes_nothing(
    two: tuple[Redis, str, Node[RedisFanout], Node[RedisFanout]],
) -> None:
    client, prefix, a, b = two
    hkey, skey = awareness_keys(prefix, KEY)
    live_a, alice = await a.join(ALICE)
    live_b, watcher = await b.join(WATCHER)
    _, bob = await b.join(BOB)
    await live_a.handle(alice, awareness_frame((1, 1, {"name": "alice"}), (3, 1, {"name": "c"})))
    await live_b.handle(bob, awareness_frame((2, 1, {"name": "bob"})))
    await wait_until(lambda: shows(watcher, 1, "alice") and shows(watcher, 3, "c"), 5)
    await wait_until(lambda: shows(alice, 2, "bob"), 5)
    published = b.fanout.stats.awareness_published
    # As if node a had sent them while b was slow: client 3 removed, then a flood of client
    # 1's changes, and the stream trimmed (exactly, as MAXLEN ~ may) before b reads any.
    flood = AWARENESS_MAXLEN
    async with client.pipeline(transaction=True) as pipe:
        _, fields = change(3, 2, None)
        pipe.hdel(hkey, "3")
        pipe.xadd(skey, fields)
        for n in range(flood):
            value, fields = change(1, n + 2, f"alice-{n}")
            pipe.xadd(skey, fields)
        pipe.hset(hkey, "1", value)
        pipe.xtrim(skey, maxlen=flood, approximate=False)
        await pipe.execute()
    await wait_until(lambda: shows(watcher, 3, None), 5, what=lambda: seen(watcher, 3))
    assert shows(watcher, 1, f"alice-{flood - 1}")
    assert b.fanout.stats.awareness_gaps == 1
    assert live_b.presence.remote_clients() == [1]
    # Nothing of b's was queued by the re-read, and the stream holds no change of b since.
    with anyio.fail_after(5):
        await b.fanout._shared()
    assert b.fanout.stats.awareness_published == published
    after: Any = await client.xrange(skey)
    assert [f for _, f in after if f[b"v"].split(b"\n")[1] == b"b"] == []
    # Another flood read whole (nothing trimmed past b's cursor): asked, not a gap.
    async with client.pipeline(transaction=True) as pipe:
        for n in range(flood):
            pipe.xadd(skey, change(1, n + flood + 2, f"again-{n}")[1])
        await pipe.execute()
    await wait_until(lambda: shows(watcher, 1, f"again-{flood - 1}"), 5)
    with anyio.fail_after(5):
        await b.fanout._followed[KEY].checked()
    assert b.fanout.stats.awareness_gaps == 1


@pytest.mark.parametrize("how", ["unfollow", "close"])
async def test_a_gap_check_in_flight_ends_with_its_doc_or_its_node(
    redis: tuple[Redis, str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Unfollowed, a doc's check is cancelled (its watcher is gone); closing, the node waits
    for every check before its clients close."""
    client, skey = redis
    prefix = skey.split(":{", 1)[0]
    node = RedisFanout(shared_redis(), "b", prefix=prefix)
    asked, never = anyio.Event(), anyio.Event()

    async def stuck(name: str) -> Any:
        asked.set()
        await never.wait()

    monkeypatch.setattr(node.redis, "xinfo_stream", stuck)
    watcher = Watcher()
    try:
        await node.start()
        # Healthy first: a doc followed before the reader's first answer gets its cursor later,
        # from the stream's newest entry, and the batch below would be behind it, never read
        # (the test then waited on a check never asked for: its one flake, 1 run in 8).
        await wait_until(lambda: node.healthy, 5)
        await node.follow_awareness(KEY, watcher)
        channel = node._followed[KEY]
        async with client.pipeline(transaction=True) as pipe:  # read as one full batch
            for n in range(AWARENESS_MAXLEN):
                pipe.xadd(skey, change(1, n + 1, f"alice-{n}")[1])
            await pipe.execute()
        with anyio.fail_after(5):
            await asked.wait()
            if how == "unfollow":
                node.unfollow_awareness(KEY, watcher)
                await channel.checked()
            else:
                await node.close()
        assert channel.gaps is not None and channel.gaps._checking is not None
        assert channel.gaps._checking.cancelled()
        assert (watcher.gaps, node.stats.awareness_gaps) == (0, 0)
    finally:
        await node.close()
