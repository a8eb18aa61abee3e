"""The Fanout contract, run over every implementation: the in-process twin and Redis Streams
(the shared Redis, a unique key prefix per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from collab.fanout import GONE, Entry, Fanout
from collab.fanout.local import LocalBus, LocalFanout
from collab.names import DocKey
from tests.support.redisserver import delete_prefix, shared_redis, unique_prefix
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

GEN = "g1"
Make = Callable[[str], Fanout]


class Inbox:
    """A subscriber that keeps what it is given."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.resyncs = 0

    def on_entry(self, entry: Entry) -> None:
        self.entries.append(entry)

    def on_resync(self) -> None:
        self.resyncs += 1

    def seqs(self) -> list[int]:
        return [e.seq for e in self.entries]


@pytest.fixture(params=["local", "redis"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """Make node fan-outs that share one channel; all are started and closed here."""
    made: list[Fanout] = []
    if request.param == "local":
        bus = LocalBus()

        def factory(node: str) -> Fanout:
            return LocalFanout(bus, node)

        url, prefix = "", ""
    else:
        from collab.fanout.streams import RedisFanout

        url, prefix = shared_redis(), unique_prefix()

        def factory(node: str) -> Fanout:
            return RedisFanout(url, node, prefix=prefix, max_update=1 << 20)

    def make(node: str) -> Fanout:
        fanout = factory(node)
        made.append(fanout)
        return fanout

    yield make
    for fanout in made:
        await fanout.close()
    if url:
        delete_prefix(url, prefix)


async def start(*fanouts: Fanout) -> None:
    for fanout in fanouts:
        await fanout.start()
    await wait_until(lambda: all(f.healthy for f in fanouts), 10, what="healthy")


async def hosting(key: DocKey, *fanouts: Fanout) -> None:
    """Wait until the hosts of ``key`` know of each other: the Redis fan-out publishes a doc's
    updates only from then on (``collab.fanout.hosts``); the in-process twin always does."""

    def solo(fanout: Fanout) -> bool:
        return bool(getattr(fanout, "solo", lambda _: False)(key))

    await wait_until(
        lambda: not any(solo(f) for f in fanouts), what=lambda: [solo(f) for f in fanouts]
    )


async def test_an_entry_reaches_every_other_node_of_that_doc_only(nodes: Make) -> None:
    key, other_key = DocKey("r", "d"), DocKey("r", "e")
    a, b, c, x = nodes("a"), nodes("b"), nodes("c"), nodes("x")
    await start(a, b, c, x)
    got = {name: Inbox() for name in "abcx"}
    await a.subscribe(key, got["a"])
    await b.subscribe(key, got["b"])
    await c.subscribe(key, got["c"])
    await x.subscribe(other_key, got["x"])
    await hosting(key, a, b, c)
    a.publish(key, Entry(1, GEN, b"u1"))
    await wait_until(lambda: got["b"].seqs() == [1] and got["c"].seqs() == [1])
    entry = got["b"].entries[0]
    assert entry.update == b"u1" and entry.generation == GEN and entry.node == "a"
    assert entry.sent_at > 0
    c.unsubscribe(key, got["c"])
    b.publish(key, Entry(2, GEN, b"u2"))
    await wait_until(lambda: got["a"].seqs() == [2])
    b.unsubscribe(key, got["b"])
    b.unsubscribe(key, got["b"])  # twice is harmless
    sent = a.stats.published  # its joins and answers too, on Redis
    a.publish(key, Entry(3, GEN, b"u3"))
    await wait_until(lambda: a.stats.published == sent + 1)  # sent, so 4 comes after it
    c.publish(key, Entry(4, GEN, b"u4"))
    await wait_until(lambda: 4 in got["a"].seqs())
    assert got["a"].seqs() == [2, 4]  # never its own entries back
    assert got["b"].seqs() == [1] and got["c"].seqs() == [1] and got["x"].entries == []


async def test_entries_of_one_node_arrive_in_order_controls_included(nodes: Make) -> None:
    key = DocKey("r", "d")
    a, b = nodes("a"), nodes("b")
    await start(a, b)
    inbox = Inbox()
    await b.subscribe(key, inbox)
    for seq in range(1, 201):
        a.publish(key, Entry(seq, GEN, f"u{seq}".encode()))
    a.publish(key, Entry(200, GEN, kind=GONE))
    await wait_until(lambda: len(inbox.entries) == 201, what=lambda: len(inbox.entries))
    assert inbox.seqs()[:200] == list(range(1, 201))
    assert inbox.entries[-1].kind == GONE and inbox.entries[-1].update is None


async def test_a_later_subscriber_replaces_the_earlier_one(nodes: Make) -> None:
    """A doc reloaded on a node: the new copy gets the entries, and the old copy's late
    unsubscribe does not cut the new one off."""
    key = DocKey("r", "d")
    a, b = nodes("a"), nodes("b")
    await start(a, b)
    old, new = Inbox(), Inbox()
    await b.subscribe(key, old)
    await b.subscribe(key, new)
    b.unsubscribe(key, old)
    a.publish(key, Entry(1, GEN, b"u"))
    await wait_until(lambda: new.seqs() == [1])
    assert old.entries == []
