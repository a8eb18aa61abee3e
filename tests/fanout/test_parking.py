"""Parked doc streams (collab.fanout.parking): a stream only this node writes leaves the
blocking read and costs no wake-up per edit; whatever another node writes into it (an update,
a deletion's ``gone`` from a node that does not host the doc), a trim past its cursor, a key
that stops being a stream, a failed poll and a Redis restarted empty each take it back into
the read with nothing lost. Against real Redis (the shared one, a prefix per test; a private
one for the restart)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import redis
from redis.exceptions import RedisError

from collab.fanout import Entry
from collab.fanout.base import GONE
from collab.fanout.entries import stream_key
from collab.fanout.parking import PARK_POLL, Parking
from collab.fanout.streams import RedisFanout
from collab.names import DocKey
from tests.fanout.test_contract import Inbox
from tests.support.redisserver import PrivateRedis, delete_prefix, shared_redis, unique_prefix
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

GEN = "g1"
Q, P = DocKey("quiet", "doc"), DocKey("other", "doc")
AFTER = 5  # own entries in a row before parking, in these tests (PARK_QUIET: 0)
REACH = PARK_POLL + 1.0  # another node's entry reaches a parked stream's subscriber within


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the bookkeeping alone --------------------------------------------------------------------


def test_a_stream_is_parked_after_enough_own_entries_and_a_quiet_spell() -> None:
    clock = Clock()
    parking = Parking(after=3, quiet=5.0, clock=clock)
    parking.watch("s")
    parking.read("s", own=3, foreign=0)
    assert "s" not in parking.parked  # quiet only since the subscription: not long enough
    clock.now += 5.0
    parking.read("s", own=1, foreign=0)
    assert parking.parked == {"s"}
    assert parking.stats.parks == 1


def test_another_nodes_entry_starts_the_count_and_the_quiet_spell_again() -> None:
    clock = Clock()
    parking = Parking(after=3, quiet=5.0, clock=clock)
    parking.watch("s")
    clock.now += 10
    parking.read("s", own=2, foreign=0)
    parking.read("s", own=5, foreign=1)  # mixed: another node writes here
    clock.now += 4.9
    parking.read("s", own=10, foreign=0)
    assert not parking.parked
    clock.now += 0.1
    parking.read("s", own=1, foreign=0)
    assert parking.parked == {"s"}


def test_an_unparked_stream_needs_the_whole_count_and_quiet_again() -> None:
    clock = Clock()
    parking = Parking(after=3, quiet=5.0, clock=clock)
    parking.watch("s")
    clock.now += 10
    parking.read("s", own=3, foreign=0)
    parking.unpark("s")
    assert (parking.parked, parking.stats.unparks) == (set(), 1)
    parking.read("s", own=3, foreign=0)
    assert not parking.parked
    clock.now += 5
    parking.read("s", own=1, foreign=0)
    assert parking.parked == {"s"}


def test_a_parked_stream_idle_for_long_is_unparked() -> None:
    clock = Clock()
    parking = Parking(after=1, quiet=0.0, idle=30.0, clock=clock)
    parking.watch("s")
    parking.read("s", own=1, foreign=0)
    clock.now += 29
    assert parking.polled("s", moved=False)
    assert parking.polled("s", moved=True)  # new own entries: active again
    clock.now += 29
    assert parking.polled("s", moved=False)
    clock.now += 1
    assert not parking.polled("s", moved=False)
    assert not parking.parked


def test_after_a_failed_poll_nothing_is_parked_for_the_backoff() -> None:
    clock = Clock()
    parking = Parking(after=1, quiet=0.0, backoff=60.0, clock=clock)
    for skey in ("s", "t"):
        parking.watch(skey)
        parking.read(skey, own=1, foreign=0)
    parking.unpark_all(backoff=True)
    assert not parking.parked
    parking.read("s", own=10, foreign=0)
    clock.now += 59
    parking.read("s", own=10, foreign=0)
    assert not parking.parked
    clock.now += 1
    parking.read("s", own=1, foreign=0)
    assert parking.parked == {"s"}


def test_a_forgotten_or_rewatched_stream_is_not_parked() -> None:
    parking = Parking(after=1, quiet=0.0)
    parking.watch("s")
    parking.read("s", own=1, foreign=0)
    parking.watch("s")  # its cursor fetched anew
    assert not parking.parked
    parking.read("s", own=1, foreign=0)
    parking.forget("s")
    assert not parking.parked
    assert not parking.polled("s", moved=True)


# -- against Redis ----------------------------------------------------------------------------


@pytest.fixture
async def shared() -> AsyncIterator[tuple[str, str]]:
    url, prefix = shared_redis(), unique_prefix()
    yield url, prefix
    delete_prefix(url, prefix)


@contextlib.asynccontextmanager
async def nodes(url: str, prefix: str = "collab") -> AsyncIterator[tuple[RedisFanout, RedisFanout]]:
    """Node ``a`` (only ever publishes here) and node ``b``, which parks quickly."""
    a = RedisFanout(url, "a", prefix=prefix, max_update=1 << 20)
    b = RedisFanout(
        url, "b", prefix=prefix, max_update=1 << 20, parking=Parking(after=AFTER, quiet=0)
    )
    try:
        for node in (a, b):
            await node.start()
        await wait_until(lambda: a.healthy and b.healthy, 10)
        yield a, b
    finally:
        await a.close()
        await b.close()


async def parked(b: RedisFanout, key: DocKey, inbox: Inbox, prefix: str, first: int = 1) -> int:
    """``b`` subscribed to ``key`` and publishing its own entries until the stream is parked;
    the next seq."""
    await b.subscribe(key, inbox)
    skey, seq = stream_key(prefix, key), first
    with anyio.fail_after(10):
        while skey not in b.parking.parked:
            b.publish(key, Entry(seq, GEN, b"own"))
            seq += 1
            await anyio.sleep(0.02)
    return seq


def newest(url: str, skey: str) -> bytes:
    client = redis.Redis.from_url(url)
    try:
        return client.xrevrange(skey, count=1)[0][0]
    finally:
        client.close()


async def test_a_stream_only_this_node_writes_costs_no_read_per_edit(
    shared: tuple[str, str],
) -> None:
    url, prefix = shared
    async with nodes(url, prefix) as (_, b):
        inbox = Inbox()
        seq = await parked(b, Q, inbox, prefix)
        skey = stream_key(prefix, Q)
        reads = b.reads
        for n in range(seq, seq + 100):
            b.publish(Q, Entry(n, GEN, b"own"))
        await wait_until(lambda: b.stats.published >= seq + 99)
        last = newest(url, skey)
        # The polls walk the cursor past the node's own entries, inside Redis.
        await wait_until(lambda: b._cursors.get(skey) == last, 5)
        assert b.reads - reads <= 2  # the XREAD's own 1 s timeouts at most, not 100 wake-ups
        assert (inbox.entries, inbox.resyncs, b.stats.received) == ([], 0, 0)
        assert (b.parking.parked, b.stats.parks, b.stats.unparks) == ({skey}, 1, 0)


async def test_another_nodes_entries_take_a_parked_stream_back_in_order(
    shared: tuple[str, str],
) -> None:
    url, prefix = shared
    async with nodes(url, prefix) as (a, b):
        inbox = Inbox()
        seq = await parked(b, Q, inbox, prefix)
        for n in range(seq, seq + 3):
            a.publish(Q, Entry(n, GEN, b"theirs"))
        with anyio.fail_after(REACH):
            await wait_until(lambda: len(inbox.entries) == 3)
        assert inbox.seqs() == [seq, seq + 1, seq + 2]
        assert (b.parking.parked, b.stats.unparks, inbox.resyncs) == (set(), 1, 0)
        a.publish(Q, Entry(seq + 3, GEN, b"next"))  # through the XREAD again
        with anyio.fail_after(1):
            await wait_until(lambda: inbox.seqs()[-1:] == [seq + 3])


async def test_a_gone_from_a_node_that_does_not_host_the_doc_reaches_a_parked_host(
    shared: tuple[str, str],
) -> None:
    url, prefix = shared
    async with nodes(url, prefix) as (a, b):
        inbox = Inbox()
        seq = await parked(b, Q, inbox, prefix)
        a.publish(Q, Entry(seq, GEN, None, GONE))  # a never subscribed: the API's delete
        with anyio.fail_after(REACH):
            await wait_until(lambda: [e.kind for e in inbox.entries] == [GONE])


async def test_a_parked_stream_trimmed_past_its_cursor_resyncs(shared: tuple[str, str]) -> None:
    url, prefix = shared
    async with nodes(url, prefix) as (a, b):
        inbox = Inbox()
        seq = await parked(b, Q, inbox, prefix)
        skey = stream_key(prefix, Q)
        client = redis.Redis.from_url(url)
        try:
            client.xtrim(skey, maxlen=0)  # the cursor's entry and everything before it gone
            # An entry past the cursor that b never saw: may there have been others?
            client.xadd(
                skey, {"kind": "update", "seq": str(seq), "gen": GEN, "node": "b", "at": "1"}
            )
        finally:
            client.close()
        with anyio.fail_after(REACH):
            await wait_until(lambda: inbox.resyncs == 1)
        assert not b.parking.parked
        a.publish(Q, Entry(seq + 1, GEN, b"after"))
        with anyio.fail_after(2):
            await wait_until(lambda: inbox.seqs() == [seq + 1])


async def test_a_parked_key_that_stops_being_a_stream_is_set_aside_alone(
    shared: tuple[str, str],
) -> None:
    url, prefix = shared
    async with nodes(url, prefix) as (a, b):
        poisoned, fine = Inbox(), Inbox()
        seq = await parked(b, Q, poisoned, prefix)
        await parked(b, P, fine, prefix, first=seq)
        client = redis.Redis.from_url(url)
        try:
            client.delete(stream_key(prefix, Q))
            client.set(stream_key(prefix, Q), b"not a stream")
        finally:
            client.close()
        with anyio.fail_after(REACH):
            await wait_until(lambda: b.stats.bad_keys == 1 and poisoned.resyncs == 1)
        a.publish(P, Entry(1000, GEN, b"still"))  # the other parked stream: unharmed
        with anyio.fail_after(REACH):
            await wait_until(lambda: fine.seqs() == [1000])
        assert fine.resyncs == 0


async def test_a_failed_poll_takes_every_stream_back_into_the_read(
    shared: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, prefix = shared
    async with nodes(url, prefix) as (a, b):
        inbox = Inbox()
        seq = await parked(b, Q, inbox, prefix)

        async def refused(**_: object) -> object:
            raise RedisError("NOPERM this user has no permissions to run the 'evalsha' command")

        monkeypatch.setattr(b, "_poll", refused)
        with anyio.fail_after(REACH):
            await wait_until(lambda: not b.parking.parked)
        for n in range(seq, seq + AFTER * 2):
            b.publish(Q, Entry(n, GEN, b"own"))  # not parked again: the poll failed
        await wait_until(lambda: b.stats.published >= seq + AFTER * 2 - 1)
        a.publish(Q, Entry(seq + 100, GEN, b"theirs"))
        with anyio.fail_after(1):
            await wait_until(lambda: inbox.seqs() == [seq + 100])
        assert (b.stats.parks, b.parking.parked) == (1, set())


async def test_redis_restarted_empty_while_a_stream_is_parked(tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        async with nodes(server.url) as (a, b):
            inbox = Inbox()
            seq = await parked(b, Q, inbox, "collab")
            server.kill()
            await wait_until(lambda: not b.healthy, 10)
            server.start()  # same port, empty
            await wait_until(lambda: a.healthy and b.healthy, 15)
            await wait_until(lambda: inbox.resyncs >= 1, 10)
            assert not b.parking.parked
            a.publish(Q, Entry(seq, GEN, b"theirs"))
            with anyio.fail_after(2):
                await wait_until(lambda: inbox.seqs() == [seq])
    finally:
        server.stop()
