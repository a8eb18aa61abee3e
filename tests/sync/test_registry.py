"""The registry and its loaded docs, in-process over the memory store: load once, evict after flush,
failures contained."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from pycrdt import Text

from collab.errors import RoomFailed
from collab.names import DocKey
from collab.sync.registry import RoomRegistry
from collab.wire import framing
from tests.support.waiting import wait_until
from tests.sync.conftest import KEY, GatedStore, edit, make_peer, sent, settings

pytestmark = pytest.mark.anyio


async def test_concurrent_joiners_share_one_load() -> None:
    store = GatedStore()
    store.load_gate.clear()
    registry = RoomRegistry(store, settings())
    with anyio.fail_after(5):
        tasks = [asyncio.ensure_future(registry.acquire(KEY)) for _ in range(10)]
        # The first joiner's load waits at the gate; the other nine, started in the same turn
        # of the loop, are waiting on it by then.
        await wait_until(lambda: store.loads == 1)
        store.load_gate.set()
        rooms = await asyncio.gather(*tasks)
    assert store.loads == 1
    assert all(room is rooms[0] for room in rooms) and rooms[0].refs == 10


async def test_failed_load_leaves_nothing_behind_and_is_retried() -> None:
    store = GatedStore()
    store.fail_loads = True
    store.load_gate.clear()
    registry = RoomRegistry(store, settings())
    with anyio.fail_after(5):
        tasks = [asyncio.ensure_future(registry.acquire(KEY)) for _ in range(3)]
        await wait_until(lambda: store.loads == 1)  # all three wait on the one load
        store.load_gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RoomFailed) for r in results)
    assert registry.get(KEY) is None and len(registry) == 0
    store.fail_loads = False
    room = await registry.acquire(KEY)
    assert registry.get(KEY) is room


async def test_idle_room_is_evicted_only_after_its_commit() -> None:
    store = GatedStore()
    registry = RoomRegistry(store, settings(room_idle_seconds=0.01))
    room = await registry.acquire(KEY)
    peer = make_peer()
    await room.join(peer)
    store.append_gate.clear()  # the commit hangs
    await room.handle(peer, edit("kept"))
    room.leave(peer)
    registry.release(room)
    # Time passes well past room_idle_seconds, to show that the eviction did not happen.
    await asyncio.sleep(0.1)
    assert registry.get(KEY) is room, "evicted with an uncommitted update"
    store.append_gate.set()
    await wait_until(lambda: registry.get(KEY) is None, 5)
    stored = await store.load(KEY)
    assert stored.updates or stored.snapshot
    again = await registry.acquire(KEY)
    assert str(again.doc.get("text", type=Text)) == "kept"


async def test_rejoin_during_idle_period_keeps_the_room() -> None:
    registry = RoomRegistry(GatedStore(), settings(room_idle_seconds=0.05))
    room = await registry.acquire(KEY)
    registry.release(room)
    assert await registry.acquire(KEY) is room
    await asyncio.sleep(0.1)  # past room_idle_seconds: the cancelled eviction does not happen
    assert registry.get(KEY) is room


async def test_relay_and_sync_answers_wait_for_the_commit() -> None:
    store = GatedStore()
    registry = RoomRegistry(store, settings())
    room = await registry.acquire(KEY)
    writer, reader = make_peer(), make_peer()
    await room.join(writer)
    await room.join(reader)
    before = len(sent(reader))
    store.append_gate.clear()
    await room.handle(writer, edit("x"))
    await room.handle(writer, framing.saved(7))
    joiner = make_peer()
    await room.join(joiner)
    await room.handle(joiner, framing.sync_step1(b"\x00"))
    await wait_until(lambda: store.appends == 1)  # the commit is in flight, held at the gate
    assert len(sent(reader)) == before, "relayed before commit"
    assert framing.saved(7) not in sent(writer)
    assert not any(f[:2] == b"\x00\x01" for f in sent(joiner)), "answered with uncommitted state"
    store.append_gate.set()
    with anyio.fail_after(5):
        await room.flush()
    assert len(sent(reader)) == before + 1
    assert framing.saved(7) in sent(writer)
    assert any(f[:2] == b"\x00\x01" for f in sent(joiner))


async def test_a_failing_store_closes_only_that_rooms_peers() -> None:
    store = GatedStore()
    registry = RoomRegistry(store, settings())
    bad, good = await registry.acquire(KEY), await registry.acquire(DocKey("r", "other"))
    bad_peer, good_peer, good_reader = make_peer(), make_peer(), make_peer()
    await bad.join(bad_peer)
    await good.join(good_peer)
    await good.join(good_reader)
    store.fail_appends_for.add(KEY)
    await bad.handle(bad_peer, edit("lost"))
    await good.handle(good_peer, edit("fine"))
    with anyio.fail_after(5):
        await bad.flush()
        await good.flush()
    assert bad_peer.close_code == 1011
    assert good_peer.close_code is None and good_reader.close_code is None
    assert any(f[:2] == b"\x00\x02" for f in sent(good_reader))
    # The failed room is dropped; the next joiner gets a fresh copy from the store.
    bad_peer_leaves = bad
    bad_peer_leaves.leave(bad_peer)
    registry.release(bad)
    store.fail_appends_for.clear()
    fresh = await registry.acquire(KEY)
    assert fresh is not bad and str(fresh.doc.get("text", type=Text)) == ""
