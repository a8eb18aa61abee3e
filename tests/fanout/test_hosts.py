"""Solo docs (``collab.fanout.hosts``) against real Redis: a doc no other node hosts has its
updates left unpublished; nodes that come to host it find each other on its stream, and every
update the solo node skipped reaches the newcomer through a resync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import redis

from collab.fanout import GONE, Entry
from collab.fanout.entries import stream_key
from collab.fanout.hosts import Hosts
from collab.fanout.streams import RedisFanout
from collab.names import DocKey
from tests.fanout.test_contract import Inbox
from tests.fanout.test_streams import pair, private_pair
from tests.support.redisserver import delete_prefix, shared_redis, unique_prefix
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

GEN = "g1"
KEY = DocKey("room", "doc")


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[str, RedisFanout, RedisFanout]]:
    url, prefix = shared_redis(), unique_prefix()
    a, b = await pair(url, prefix)
    yield prefix, a, b
    await a.close()
    await b.close()
    delete_prefix(url, prefix)


def kinds(prefix: str) -> list[bytes]:
    with redis.Redis.from_url(shared_redis()) as client:
        return [f[b"kind"] for _, f in client.xrange(stream_key(prefix, KEY))]


async def test_a_doc_no_other_node_hosts_publishes_nothing_but_its_join(
    nodes: tuple[str, RedisFanout, RedisFanout],
) -> None:
    prefix, a, _ = nodes
    await a.subscribe(KEY, Inbox())
    for seq in range(1, 6):
        a.publish(KEY, Entry(seq, GEN, b"u"))
    await wait_until(lambda: a.stats.published == 1)
    assert a.solo(KEY) and a.stats.unshared == 5
    assert kinds(prefix) == [b"join"]


async def test_a_second_host_resyncs_and_then_both_publish(
    nodes: tuple[str, RedisFanout, RedisFanout],
) -> None:
    """What the solo node committed while alone is in the store: the joiner is told to read
    it (a resync), and every later update travels as an entry both ways."""
    _, a, b = nodes
    at_a, at_b = Inbox(), Inbox()
    await a.subscribe(KEY, at_a)
    a.publish(KEY, Entry(1, GEN, b"alone"))
    await b.subscribe(KEY, at_b)
    await wait_until(lambda: not a.solo(KEY) and not b.solo(KEY))
    await wait_until(lambda: at_b.resyncs >= 1)  # a's answer: read what a did not publish
    assert at_b.entries == [] and at_a.entries == []  # joins and answers are not entries
    a.publish(KEY, Entry(2, GEN, b"u2"))
    b.publish(KEY, Entry(3, GEN, b"u3"))
    await wait_until(lambda: at_b.seqs() == [2] and at_a.seqs() == [3])
    assert a.stats.unshared == 1 and b.stats.unshared == 0


async def test_updates_a_joiner_commits_before_it_hears_the_answer_reach_by_resync(
    nodes: tuple[str, RedisFanout, RedisFanout],
) -> None:
    _, a, b = nodes
    at_a, at_b = Inbox(), Inbox()
    await a.subscribe(KEY, at_a)
    await b.subscribe(KEY, at_b)
    b.publish(KEY, Entry(1, GEN, b"early"))  # b may still think it is alone
    await wait_until(lambda: not a.solo(KEY) and not b.solo(KEY))
    # Either the entry itself travelled, or b was solo, skipped it, and its answer made a
    # resync; a lacks nothing either way.
    await wait_until(lambda: at_a.seqs() == [1] or at_a.resyncs >= 1)


async def test_a_node_that_does_not_host_the_doc_always_publishes(
    nodes: tuple[str, RedisFanout, RedisFanout],
) -> None:
    """A delete announced through any node reaches a solo host at once."""
    _, a, b = nodes
    at_a = Inbox()
    await a.subscribe(KEY, at_a)
    b.publish(KEY, Entry(7, GEN, kind=GONE))
    await wait_until(lambda: [e.kind for e in at_a.entries] == [GONE])
    assert not a.solo(KEY)  # another node writes here: from now on a publishes


async def test_an_unreadable_entry_on_a_solo_docs_stream_makes_it_shared(
    nodes: tuple[str, RedisFanout, RedisFanout],
) -> None:
    prefix, a, _ = nodes
    at_a = Inbox()
    await a.subscribe(KEY, at_a)
    with redis.Redis.from_url(shared_redis()) as client:
        client.xadd(stream_key(prefix, KEY), {b"kind": b"join", b"evil": b"1"})
    await wait_until(lambda: not a.solo(KEY) and at_a.resyncs >= 1)
    a.publish(KEY, Entry(1, GEN, b"u"))
    await wait_until(lambda: b"update" in kinds(prefix))


async def test_an_entry_dropped_by_the_publisher_makes_every_solo_doc_shared(
    nodes: tuple[str, RedisFanout, RedisFanout],
) -> None:
    """A dropped entry may have been a join or an answer: no doc can stay solo on that."""
    _, a, _ = nodes
    other = DocKey("room", "other")
    await a.subscribe(KEY, Inbox())
    await a.subscribe(other, Inbox())
    a.stats.publish_dropped += 1  # as the publisher counts a batch it gave up on
    a.publish(KEY, Entry(1, GEN, b"u"))
    assert not a.solo(KEY) and not a.solo(other)
    assert a.stats.unshared == 0


async def test_after_redis_restarted_empty_every_doc_is_shared_again(tmp_path: Path) -> None:
    """The joins and answers were lost with Redis: each node announces its docs anew."""
    with anyio.fail_after(40):
        await _restarted_empty(tmp_path)


async def _restarted_empty(tmp_path: Path) -> None:
    async with private_pair(tmp_path) as (server, a, b):
        at_a, at_b = Inbox(), Inbox()
        await a.subscribe(KEY, at_a)
        await wait_until(lambda: a.solo(KEY))
        server.kill()
        await wait_until(lambda: not a.healthy, 10)
        await b.subscribe(KEY, at_b)  # while Redis is down: its join cannot be sent
        server.start()
        await wait_until(lambda: a.healthy and b.healthy, 15)
        await wait_until(lambda: not a.solo(KEY) and not b.solo(KEY), 10)
        a.publish(KEY, Entry(5, GEN, b"u5"))
        await wait_until(lambda: 5 in at_b.seqs(), 10)


def test_hosts_answer_every_join_and_announce_once() -> None:
    sent: list[tuple[str, str]] = []
    hosts = Hosts(lambda skey, entry: sent.append((skey, entry.kind)))
    hosts.joined("s")
    assert hosts.solo("s") and sent == [("s", "join")]
    assert hosts.skips("s", Entry(1, GEN, b"u")) and not hosts.skips("s", Entry(1, GEN, kind=GONE))
    assert not hosts.heard("s", "update")  # an update of another node: delivered, and ...
    assert not hosts.solo("s") and sent[-1] == ("s", "host")  # ... we announce ourselves
    assert not hosts.heard("s", "update") and len(sent) == 2  # once
    assert hosts.heard("s", "join") and sent[-1] == ("s", "host")  # every join is answered
    hosts.left("s")
    assert not hosts.skips("t", Entry(1, GEN, b"u"))  # not hosted here: always published
