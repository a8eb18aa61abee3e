"""Several nodes in one process: registries on one store, fan-outs on one LocalBus.

Every test runs on the memory store (one store object shared) and on PostgreSQL (one
PostgresStore per node, each with its own pool, on one database: nodes as in production).

The whole cross-node path without a socket: an update committed on one node reaches the
others' peers and is stored once; entries out of order wait for the missing one; a lost entry
is read from the store (a gap, the head poll, a joiner's catch-up); deletions and re-creations
close every node's sockets; compaction with a hole loses nothing.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from pycrdt import Array, Doc, Text

from collab.errors import GenerationMismatch
from collab.fanout import Entry
from collab.fanout.local import LocalBus, LocalFanout
from collab.names import DocKey
from collab.store import open_store
from collab.store.base import DocumentStore, StoredDoc
from collab.sync.follower import GAP_WAIT
from collab.sync.heads import HeadPoller
from collab.sync.hooks import NoHooks
from collab.sync.livedoc import LiveDoc
from collab.sync.peer import Peer
from collab.sync.registry import RoomRegistry
from collab.wire import framing
from tests.support.waiting import wait_until
from tests.sync.conftest import KEY, GatedStore, make_peer, sent, settings, text_update

pytestmark = pytest.mark.anyio


class ReadCounter:
    """Counts a store's catch-up reads."""

    def __init__(self, store: DocumentStore) -> None:
        self.count = 0
        inner = store.updates_after

        async def counted(key: DocKey, seq: int) -> StoredDoc:
            self.count += 1
            return await inner(key, seq)

        store.updates_after = counted  # type: ignore[method-assign]


class LossyFanout(LocalFanout):
    """Loses the next ``drop_next`` entries it is asked to publish (a trimmed stream...); with
    a ``subscribe_gate``, a subscription (made at once) returns only once the gate opens (a
    slow Redis)."""

    drop_next = 0
    subscribe_gate: asyncio.Event | None = None

    async def subscribe(self, key: DocKey, subscriber: Any) -> None:
        await super().subscribe(key, subscriber)
        if self.subscribe_gate is not None:
            await self.subscribe_gate.wait()

    def publish(self, key: DocKey, entry: Entry) -> None:
        if self.drop_next:
            self.drop_next -= 1
            return
        super().publish(key, entry)


class Counting(NoHooks):
    def __init__(self) -> None:
        self.gap_rows = 0
        self.received = 0

    def gap_filled(self, rows: int) -> None:
        self.gap_rows += rows

    def fanout_received(self, lag: float) -> None:
        assert 0 <= lag < 60
        self.received += 1


class Node:
    def __init__(self, store: DocumentStore, bus: LocalBus, name: str, **kw: Any) -> None:
        self.store = store
        self.fanout = LossyFanout(bus, name)
        self.hooks = Counting()
        self.registry = RoomRegistry(store, settings(**kw), self.hooks, fanout=self.fanout)

    async def join(self, key: DocKey = KEY) -> tuple[LiveDoc, Peer]:
        live = await self.registry.acquire_current(key)
        peer = make_peer()
        await live.join(peer)
        return live, peer


Cluster = Callable[..., Awaitable[tuple[DocumentStore, LocalBus, list[Node]]]]


@pytest.fixture(params=["memory", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    else:
        yield request.getfixturevalue("pg_url")  # a fresh, migrated database


@pytest.fixture
async def cluster(store_url: str) -> AsyncIterator[Cluster]:
    """``await cluster(n, **settings)``: (a store to look at, the bus, n nodes)."""
    opened: list[DocumentStore] = []

    async def make(n: int, **kw: Any) -> tuple[DocumentStore, LocalBus, list[Node]]:
        bus = LocalBus()
        if store_url == "memory://":
            shared = GatedStore()
            stores: list[DocumentStore] = [shared] * (n + 1)
        else:
            stores = [open_store(store_url) for _ in range(n + 1)]
            for store in stores:
                await store.open()
                opened.append(store)
        return stores[n], bus, [Node(stores[i], bus, f"n{i}", **kw) for i in range(n)]

    yield make
    for store in opened:
        await store.close()


def text_of(live: LiveDoc) -> str:
    return str(live.doc.get("text", type=Text))


def client_view(peer: Peer) -> str:
    """The text a client would hold from everything ``peer`` was sent."""
    doc: Doc[Any] = Doc()
    for frame in sent(peer):
        if frame[:2] in (b"\x00\x01", b"\x00\x02"):
            doc.apply_update(framing.decode_message(frame).update)  # type: ignore[union-attr]
    return str(doc.get("text", type=Text))


def relayed_two(peer: Peer) -> bool:
    """Whether ``peer``'s client holds the two other nodes' letters (never its own echo)."""
    return len(client_view(peer)) == 2


def edit_on(source: Doc[Any], text: str) -> bytes:
    return framing.sync_update(text_update(text, source))


async def test_an_update_crosses_nodes_and_is_stored_once(cluster: Cluster) -> None:
    store, _, (a, b, c) = await cluster(3)
    joined = [await node.join() for node in (a, b, c)]
    sources: list[Doc[Any]] = [Doc(), Doc(), Doc()]
    for (live, peer), source, text in zip(joined, sources, "abc", strict=True):
        await live.handle(peer, edit_on(source, text))
    with anyio.fail_after(5):
        await wait_until(
            lambda: all(sorted(text_of(live)) == ["a", "b", "c"] for live, _ in joined)
        )
        # ... and every client got the others' updates relayed by its own node.
        for _, peer in joined:
            await wait_until(functools.partial(relayed_two, peer))
    assert len((await store.load(KEY)).updates) == 3  # one row per client update, none twice
    assert a.hooks.received == 2 and b.hooks.received == 2


async def test_entries_out_of_order_wait_for_the_missing_one(cluster: Cluster) -> None:
    store, _, (_, b) = await cluster(2)
    source: Doc[Any] = Doc()
    await store.append(KEY, [text_update("0", source)])
    live_b, peer_b = await b.join()  # holds seq 1
    await live_b.handle(peer_b, framing.sync_step1(Doc().get_state()))  # its client has it too
    u2, u3 = text_update("2", source), text_update("3", source)
    await store.append(KEY, [u2, u3])  # committed by some node; its entries arrive swapped
    generation = live_b.generation
    assert generation is not None
    reads = ReadCounter(b.store)
    live_b.nodes.follower.on_entry(Entry(3, generation, u3))  # type: ignore[union-attr]
    assert text_of(live_b) == "0"  # 3 waits for 2
    live_b.nodes.follower.on_entry(Entry(2, generation, u2))  # type: ignore[union-attr]
    assert text_of(live_b) == "320"
    assert reads.count == 0  # no store read was needed
    assert client_view(peer_b) == "320"


async def shared_doc(a: Node, b: Node) -> tuple[LiveDoc, Peer, LiveDoc, Doc[Any]]:
    """A doc both nodes hold (B learnt its generation from A's first update)."""
    live_a, peer_a = await a.join()
    live_b, _ = await b.join()
    source: Doc[Any] = Doc()
    await live_a.handle(peer_a, edit_on(source, "w"))
    await wait_until(lambda: text_of(live_b) == "w")
    return live_a, peer_a, live_b, source


async def test_a_lost_entry_is_read_from_the_store_after_the_gap(cluster: Cluster) -> None:
    _, _, (a, b) = await cluster(2)
    live_a, peer_a, live_b, source = await shared_doc(a, b)
    a.fanout.drop_next = 1
    await live_a.handle(peer_a, edit_on(source, "x"))  # seq 2: its entry is lost
    await live_a.flush()
    await live_a.handle(peer_a, edit_on(source, "y"))  # seq 3: B sees a gap, waits, reads
    with anyio.fail_after(GAP_WAIT + 5):
        await wait_until(lambda: text_of(live_b) == "yxw")
    assert b.hooks.gap_rows >= 1


async def test_a_refused_entry_is_read_from_the_store(cluster: Cluster) -> None:
    _, _, (a, b) = await cluster(2)
    live_a, peer_a, live_b, source = await shared_doc(a, b)
    a.fanout.drop_next = 1
    await live_a.handle(peer_a, edit_on(source, "real"))
    await live_a.flush()
    assert live_a.generation is not None
    # A poisoned channel: the right seq and generation, bytes that are not an update.
    poison = Entry(2, live_a.generation, b"\xff\xff\xff\x01")
    live_b.nodes.follower.on_entry(poison)  # type: ignore[union-attr]
    with anyio.fail_after(5):
        await wait_until(lambda: text_of(live_b) == "realw")
    assert live_b.failed is None


async def test_with_the_channel_down_the_head_poll_delivers(cluster: Cluster) -> None:
    _, bus, (a, b) = await cluster(2)
    live_a, peer_a = await a.join()
    _, peer_b = await b.join()
    poller = HeadPoller(b.registry, b.fanout, NoHooks(), interval=60, degraded_interval=0.05)
    poller.start()
    try:
        bus.set_up(False)
        await live_a.handle(peer_a, edit_on(Doc(), "while down"))
        with anyio.fail_after(5):
            await wait_until(lambda: client_view(peer_b) == "while down")
        assert a.fanout.stats.publish_dropped == 1
    finally:
        await poller.stop()


async def test_the_last_update_before_a_crash_arrives_by_the_head_check(cluster: Cluster) -> None:
    """A node commits, then dies before publishing: the channel is healthy, no later entry
    shows a gap, and only the periodic head check (``head_poll_interval``) brings it."""
    _, _, (a, b) = await cluster(2)
    live_a, peer_a, live_b, source = await shared_doc(a, b)
    poller = HeadPoller(b.registry, b.fanout, NoHooks(), interval=0.2, degraded_interval=60)
    poller.start()
    try:
        a.fanout.drop_next = 1  # the publish that never happened
        await live_a.handle(peer_a, edit_on(source, "last"))
        with anyio.fail_after(5):
            await wait_until(lambda: text_of(live_b) == "lastw")
    finally:
        await poller.stop()


async def test_a_joiner_catches_up_before_its_sync_is_answered(cluster: Cluster) -> None:
    """Read-your-writes: "saved" on A, then a join on B, whose copy has heard nothing."""
    _, bus, (a, b) = await cluster(2)
    live_a, peer_a = await a.join()
    live_b, _ = await b.join()  # loaded and followed, but the channel will lose everything
    bus.set_up(False)
    await live_a.handle(peer_a, edit_on(Doc(), "saved on A"))
    await live_a.handle(peer_a, framing.saved(1))
    await wait_until(lambda: framing.saved(1) in sent(peer_a))
    assert text_of(live_b) == ""
    again, joiner = await b.join()  # acquire_current: one store read started after the join
    assert again is live_b and text_of(live_b) == "saved on A"
    await live_b.handle(joiner, framing.sync_step1(Doc().get_state()))
    assert client_view(joiner) == "saved on A"


async def test_a_doc_deleted_on_one_node_closes_every_nodes_sockets(cluster: Cluster) -> None:
    store, _, (a, b) = await cluster(2)
    live_a, peer_a = await a.join()
    live_b, peer_b = await b.join()
    await live_a.handle(peer_a, edit_on(Doc(), "doomed"))
    await wait_until(lambda: text_of(live_b) == "doomed")
    generation = live_a.generation
    await a.registry.drop(KEY, 4404, "document deleted")  # what DELETE /docs/{doc} does
    await store.delete_doc(KEY)
    a.registry.announce_deleted(KEY, generation)
    with anyio.fail_after(5):
        await wait_until(lambda: peer_b.close_code == 4404)
    assert peer_a.close_code == 4404 and b.registry.get(KEY) is None
    fresh, _ = await b.join()  # a new joiner gets a fresh, empty doc
    assert fresh is not live_b and not fresh.exists and text_of(fresh) == ""


async def test_a_doc_recreated_elsewhere_closes_4409_without_the_announcement(
    cluster: Cluster,
) -> None:
    store, _, (a, b) = await cluster(2)
    live_a, peer_a = await a.join()
    live_b, peer_b = await b.join()
    await live_a.handle(peer_a, edit_on(Doc(), "old"))
    await wait_until(lambda: text_of(live_b) == "old")
    old = live_b.generation
    await a.registry.drop(KEY, 4404, "document deleted")
    await store.delete_doc(KEY)  # the "gone" entry is never sent
    again, peer_a2 = await a.join()
    await again.handle(peer_a2, edit_on(Doc(), "new"))  # re-created: a new generation
    with anyio.fail_after(5):
        await wait_until(lambda: peer_b.close_code == 4409)
    assert again.generation != old
    assert live_b.nodes is not None
    with pytest.raises(GenerationMismatch):  # the stale copy refuses; a joiner loads afresh
        await live_b.nodes.catch_up()
    fresh, _ = await b.join()
    assert text_of(fresh) == "new"


@pytest.mark.parametrize("recreated", [False, True])
async def test_a_write_through_a_node_that_missed_the_delete_is_not_stored(
    cluster: Cluster, recreated: bool
) -> None:
    """Issue 15: B has not heard of A's delete (the channel is down) when its client writes.
    The update must not bring the doc back (nor, ``recreated``, land in the doc A re-created
    meanwhile): B's commit names the generation B loaded, the store refuses it, and B closes
    the doc's sockets as the notice would have (4404, or 4409), acknowledging nothing of it,
    relaying nothing of it, and forgetting its copy."""
    store, bus, (a, b) = await cluster(2)
    live_a, _ = await a.join()
    live_b, peer_b = await b.join()
    _, watcher = await b.join()  # another socket on B
    source: Doc[Any] = Doc()
    await live_b.handle(peer_b, edit_on(source, "kept"))
    await live_b.handle(peer_b, framing.saved(1))
    await wait_until(lambda: framing.saved(1) in sent(peer_b))  # "saved" before the delete
    await wait_until(lambda: text_of(live_a) == "kept")
    bus.set_up(False)  # from now on B hears nothing from A
    generation = live_a.generation
    await a.registry.drop(KEY, 4404, "document deleted")
    await store.delete_doc(KEY)
    a.registry.announce_deleted(KEY, generation)  # lost
    if recreated:
        again, peer_again = await a.join()
        await again.handle(peer_again, edit_on(Doc(), "new"))
        await again.flush()
    relayed_before = len(sent(watcher))
    await live_b.handle(peer_b, edit_on(source, "stray"))
    await live_b.handle(peer_b, framing.saved(2))
    assert len(sent(watcher)) == relayed_before  # held until its commit
    with anyio.fail_after(5):
        await wait_until(lambda: peer_b.close_code is not None)
    code = 4409 if recreated else 4404
    assert (peer_b.close_code, watcher.close_code) == (code, code)
    assert live_b.journal.committed == 1 < live_b.journal.recorded  # never acknowledged
    assert live_b.outbox.deliveries == []  # nor relayed: what waited for the commit is gone
    assert b.registry.get(KEY) is None
    stored = await store.load(KEY)
    if recreated:
        assert stored.generation == again.generation and len(stored.updates) == 1
        assert text_of(again) == "new"  # A never took in the stray update
    else:
        assert not stored.exists and await store.list_docs(KEY.room) == []
    fresh, _ = await b.join()  # a new joiner on B loads the store as it is
    assert fresh is not live_b and text_of(fresh) == ("new" if recreated else "")


async def test_a_rebuild_finding_another_generation_closes_instead_of_adopting_it(
    cluster: Cluster,
) -> None:
    """A copy rebuilt from the store (``schedule_heal``: yrs refused an update) after the doc
    was deleted and re-created elsewhere must not take the new generation for its own: its
    next commits would put the old doc's edits into the new one."""
    store, _, (b,) = await cluster(1)
    live_b, peer_b = await b.join()
    await live_b.handle(peer_b, edit_on(Doc(), "old"))
    await live_b.flush()
    await store.delete_doc(KEY)  # through another node, whose notice B has not read
    new = text_update("new")
    await store.append(KEY, [new])
    live_b.schedule_heal()
    with anyio.fail_after(5):
        await wait_until(lambda: peer_b.close_code is not None)
    assert peer_b.close_code == 4409 and b.registry.get(KEY) is None
    assert [u for _, u in (await store.load(KEY)).updates] == [new]


async def test_compaction_with_a_hole_loses_nothing(cluster: Cluster) -> None:
    store, _, (a, b) = await cluster(2, compact_rows=1)  # compact after every commit
    live_a, peer_a = await a.join()
    live_b, peer_b = await b.join()
    src_a: Doc[Any] = Doc()
    src_b: Doc[Any] = Doc()

    async def write(live: LiveDoc, peer: Peer, source: Doc[Any], text: str) -> None:
        await live.handle(peer, edit_on(source, text))
        await live.flush()

    await write(live_a, peer_a, src_a, "1")
    await wait_until(lambda: "1" in text_of(live_b))
    await write(live_b, peer_b, src_b, "2")
    a.fanout.drop_next = 1
    await write(live_a, peer_a, src_a, "3")  # B never hears of 3 from the channel
    await write(live_b, peer_b, src_b, "4")  # B holds 1, 2, 4: it may fold only up to 2
    assert live_b.journal.held.head == 2 and 4 in live_b.journal.held
    cold = await LiveDoc.load(KEY, store, settings())
    assert sorted(text_of(cold)) == ["1", "2", "3", "4"]


async def test_the_server_authored_chat_doc_crosses_nodes_too(cluster: Cluster) -> None:
    store, _, (a, b) = await cluster(2)
    key = DocKey("r", "chat")
    live_a, _ = await a.join(key)
    live_b, _ = await b.join(key)

    def post(doc: Doc[Any]) -> None:
        doc.get("messages", type=Array).append("hello")

    committed = await live_a.author(post)
    await committed
    with anyio.fail_after(5):
        await wait_until(lambda: list(live_b.doc.get("messages", type=Array)) == ["hello"])
    assert len((await store.load(key)).updates) == 1


async def test_a_load_cancelled_while_it_subscribes_leaves_no_subscription(
    cluster: Cluster,
) -> None:
    """The first joiner goes away while its node subscribes to the doc's entries (a slow
    Redis): the load is cancelled there, and the doc's subscription goes with it, not left
    behind for a follower nobody holds (found in review: the subscribe was outside the
    load's cleanup)."""
    _, bus, (a, _) = await cluster(2)
    a.fanout.subscribe_gate = asyncio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.join)
        await wait_until(lambda: "n0" in bus.subscribers.get(KEY, {}))
        tg.cancel_scope.cancel()
    assert "n0" not in bus.subscribers.get(KEY, {})
    a.fanout.subscribe_gate = None
    live, _ = await a.join()  # a later joiner loads it afresh
    assert live.nodes is not None
    assert bus.subscribers[KEY]["n0"] is live.nodes.follower


async def test_a_resync_while_the_first_joiners_read_runs_reads_again(cluster: Cluster) -> None:
    """Another node's ``host`` answer (``collab.fanout.hosts``) asks for a read while the
    doc's first joiner is catching up, with nobody joined yet: the joiner's read may have
    begun before the other node's unpublished commit, so it reads once more (before, the
    idle doc ignored the resync and the commit waited for the head check)."""
    _, _, (a, b) = await cluster(2)
    live_a, peer_a = await a.join()
    reading, release = asyncio.Event(), asyncio.Event()
    inner = b.store.updates_after

    async def held_read(key: DocKey, seq: int) -> StoredDoc:
        stored = await inner(key, seq)  # what the store held when the read began
        if not reading.is_set():  # the first read only: B's (A's node may read too)
            reading.set()
            await release.wait()
        return stored

    b.store.updates_after = held_read  # type: ignore[method-assign]
    joined: list[LiveDoc] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_append_join, b, joined)
            await reading.wait()  # B's catch-up read has begun
            a.fanout.drop_next = 1  # A, solo, does not publish it
            await live_a.handle(peer_a, edit_on(Doc(), "unpublished"))
            await live_a.flush()
            live_b = b.registry._docs[KEY]
            assert live_b.nodes is not None
            live_b.nodes.follower.on_resync()  # A's answer: read the store
            release.set()
    with anyio.fail_after(2):
        await wait_until(lambda: text_of(joined[0]) == "unpublished")


async def _append_join(node: Node, joined: list[LiveDoc]) -> None:
    live, _ = await node.join()
    joined.append(live)
