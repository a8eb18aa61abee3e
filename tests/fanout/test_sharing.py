"""Notices, shared awareness and heartbeats: the Fanout contract over both implementations
(the in-process twin, and Redis: the shared one, a key prefix per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from collab.fanout import ROLE, AwarenessRecord, Fanout, Notice
from collab.fanout.local import LocalBus, LocalFanout
from collab.names import DocKey
from tests.support.redisserver import delete_prefix, shared_redis, unique_prefix
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

KEY = DocKey("r", "d")
Make = Callable[[str], Fanout]


class Watcher:
    """A NoticeWatcher and AwarenessWatcher that keeps what it is given."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self.records: list[AwarenessRecord] = []
        self.refused: list[AwarenessRecord] = []
        self.resyncs = 0
        self.gaps = 0

    def on_notice(self, notice: Notice) -> None:
        self.notices.append(notice)

    def on_notice_resync(self) -> None:
        self.resyncs += 1

    def on_awareness(self, record: AwarenessRecord) -> None:
        self.records.append(record)

    def on_awareness_refused(self, record: AwarenessRecord) -> None:
        self.refused.append(record)

    def on_awareness_resync(self) -> None:
        self.resyncs += 1

    def on_awareness_gap(self) -> None:
        self.gaps += 1


@pytest.fixture(params=["local", "redis"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
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
            return RedisFanout(url, node, prefix=prefix)

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


async def test_a_notice_reaches_every_other_node(nodes: Make) -> None:
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    await start(a, b, c)
    got = {name: Watcher() for name in "abc"}
    for name, fanout in zip("abc", (a, b, c), strict=True):
        await fanout.watch_notices(got[name])
    a.notify(Notice(ROLE, "room-1", "user-1"))
    await wait_until(lambda: got["b"].notices and got["c"].notices, 5)
    for name in "bc":
        (notice,) = got[name].notices
        assert (notice.kind, notice.room, notice.user) == (ROLE, "room-1", "user-1")
        assert notice.node == "a"
    assert got["a"].notices == []


async def test_a_client_id_stays_its_principals_across_nodes(nodes: Make) -> None:
    a, b = nodes("a"), nodes("b")
    await start(a, b)
    wa, wb = Watcher(), Watcher()
    assert await a.follow_awareness(KEY, wa) == []
    await b.follow_awareness(KEY, wb)
    a.publish_awareness(KEY, [AwarenessRecord(7, 1, "alice", b'{"n":1}')], wa)
    await wait_until(lambda: wb.records, 5)
    assert (wb.records[0].client, wb.records[0].principal, wb.records[0].node) == (7, "alice", "a")
    # Another principal's set or removal of id 7 is refused, and reaches nobody.
    b.publish_awareness(KEY, [AwarenessRecord(7, 9, "mallory", b'{"n":2}')], wb)
    b.publish_awareness(KEY, [AwarenessRecord(7, 10, "mallory", None)], wb)
    await wait_until(lambda: len(wb.refused) == 2, 5)
    # What a node loading the doc now reads: alice's state, as a set it was.
    states = await b.awareness_states(KEY)
    assert [(r.client, r.clock, r.principal, r.state) for r in states] == [
        (7, 1, "alice", b'{"n":1}')
    ]
    # The same principal through another node may take it over; her removal frees it.
    b.publish_awareness(KEY, [AwarenessRecord(7, 2, "alice", b'{"n":3}')], wb)
    await wait_until(lambda: wa.records, 5)
    assert wa.records[-1].state == b'{"n":3}' and wb.refused[2:] == []
    # Its old node's removal no longer counts (the id moved); the new node's does.
    a.publish_awareness(KEY, [AwarenessRecord(7, 3, "alice", None)], wa)
    await wait_until(lambda: a.stats.awareness_published == 2, 5)
    assert [(r.client, r.node) for r in await a.awareness_states(KEY)] == [(7, "b")]
    b.publish_awareness(KEY, [AwarenessRecord(7, 3, "alice", None)], wb)
    await wait_until(lambda: wa.records[-1].state is None, 5)
    assert [r.state for r in wb.records] == [b'{"n":1}']
    assert await a.awareness_states(KEY) == []
    assert all(r.principal == "alice" for r in wa.records + wb.records)


def is_alive(fanout: Fanout, nodes: set[str]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await fanout.nodes_alive(nodes | {"zz"}) == nodes

    return check


async def test_a_dead_nodes_states_can_be_forgotten(nodes: Make) -> None:
    a, b = nodes("a"), nodes("b")
    await start(a, b)
    wa, wb = Watcher(), Watcher()
    await a.follow_awareness(KEY, wa)
    await b.follow_awareness(KEY, wb)
    a.publish_awareness(KEY, [AwarenessRecord(5, 1, "p", b"{}")], wa)
    await wait_until(lambda: wb.records, 5)
    await wait_until(is_alive(b, {"a", "b"}), 5)
    assert await b.nodes_alive({"a", "b", "zz"}) == {"a", "b"}
    await b.forget_awareness(KEY, "someone-else", [5])  # not set through that node: kept
    assert [r.client for r in await b.awareness_states(KEY)] == [5]
    await b.forget_awareness(KEY, "a", [5])
    assert await b.awareness_states(KEY) == []


async def test_notices_trimmed_before_a_node_read_them_make_it_recheck() -> None:
    """The notice stream is capped: a node that fell behind loses notices to trimming, and
    rechecks what they are hints for (roles, credentials, feeds) instead of missing them."""
    from redis.asyncio import Redis

    from collab.fanout.records import encode_notice, notice_key
    from collab.fanout.streams import RedisFanout

    url, prefix = shared_redis(), unique_prefix()
    node, client = RedisFanout(url, "b", prefix=prefix), Redis.from_url(url)
    try:
        await start(node)
        watcher = Watcher()
        await node.watch_notices(watcher)
        # Five notices of node a and a trim to the last two, in one transaction: the node's
        # reader cannot have read the three trimmed ones, as if it had been slow.
        async with client.pipeline(transaction=True) as pipe:
            for n in range(5):
                notice = Notice(ROLE, "room-1", f"user-{n}", "a", 1.0)
                fields: dict[Any, Any] = encode_notice(notice)
                pipe.xadd(notice_key(prefix), fields)
            pipe.xtrim(notice_key(prefix), maxlen=2, approximate=False)
            await pipe.execute()
        await wait_until(lambda: watcher.resyncs, 5, what="a recheck")
        assert [n.user for n in watcher.notices] == ["user-3", "user-4"]
        assert node.stats.notice_gaps == 1
    finally:
        await node.close()
        await client.aclose()
        delete_prefix(url, prefix)
