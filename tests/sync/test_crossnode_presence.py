"""Awareness and role changes across nodes in one process (registries on one memory store,
fan-outs on one LocalBus): the rules tests/test_nodes_awareness.py and tests/test_nodes_roles.py
check with real processes, Redis and sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

import pytest

from collab.auth.principal import Principal
from collab.fanout import Fanout
from collab.fanout.local import LocalBus, LocalFanout
from collab.meta import MetaStore, Role, open_meta_store
from collab.store.memory import MemoryStore
from collab.sync.livedoc import LiveDoc
from collab.sync.nodesweep import PresenceSweeper
from collab.sync.peer import Peer
from collab.sync.registry import RoomRegistry
from collab.sync.roles import RoleFollower
from collab.wire import framing
from tests.support.frames import awareness_frame, awareness_states
from tests.support.waiting import wait_until
from tests.sync.conftest import KEY, sent, settings

pytestmark = pytest.mark.anyio

ALICE = Principal(user_id="u-alice", name="Alice", via="session")
MALLORY = Principal(user_id="u-mallory", name="Mallory", via="session")
WATCHER = Principal(user_id="u-watcher", name="Watcher", via="session")


F = TypeVar("F", bound=Fanout)


class Node(Generic[F]):
    """A node's registry over ``fanout`` (in process or Redis), sharing ``store``."""

    def __init__(self, store: MemoryStore, fanout: F) -> None:
        self.fanout: F = fanout
        self.registry = RoomRegistry(store, settings(), fanout=fanout)

    async def join(self, principal: Principal) -> tuple[LiveDoc, Peer]:
        live = await self.registry.acquire_current(KEY)
        peer = Peer(None, max_queue_bytes=1 << 20, send_timeout=1.0, principal=principal)
        await live.join(peer)
        return live, peer


@pytest.fixture
async def two() -> AsyncIterator[tuple[LocalBus, Node[LocalFanout], Node[LocalFanout]]]:
    bus, store = LocalBus(), MemoryStore()
    a, b = Node(store, LocalFanout(bus, "a")), Node(store, LocalFanout(bus, "b"))
    for node in (a, b):
        await node.fanout.start()
    yield bus, a, b
    for node in (a, b):
        await node.registry.close()
        await node.fanout.close()


def seen(peer: Peer, client: int) -> list[tuple[int, Any]]:
    return [
        (clock, state)
        for frame in sent(peer)
        if frame[0] == framing.MSG_AWARENESS
        for c, clock, state in awareness_states(frame)
        if c == client
    ]


def shows(peer: Peer, client: int, name: str | None) -> bool:
    """Whether ``peer``'s client last heard ``client`` say ``name`` (None: removed)."""
    found = seen(peer, client)
    if not found:
        return False
    state = found[-1][1]
    return state is None if name is None else state is not None and state.get("name") == name


async def test_a_state_set_on_one_node_is_shown_on_the_other_and_removed_with_its_socket(
    two: tuple[LocalBus, Node[LocalFanout], Node[LocalFanout]],
) -> None:
    _, a, b = two
    live_a, alice = await a.join(ALICE)
    live_b, watcher = await b.join(WATCHER)
    await live_a.handle(alice, awareness_frame((1, 1, {"name": "alice"})))
    await wait_until(lambda: shows(watcher, 1, "alice"), 2)
    assert seen(watcher, 1)[-1][1]["user"]["id"] == "u-alice"  # stamped on A
    _, late = await b.join(WATCHER)  # a newcomer on B is greeted with it
    assert shows(late, 1, "alice")
    live_a.leave(alice)
    await wait_until(lambda: shows(watcher, 1, None) and shows(late, 1, None), 2)
    assert live_b.presence.remote_clients() == []


async def test_another_principal_cannot_take_an_id_held_on_another_node(
    two: tuple[LocalBus, Node[LocalFanout], Node[LocalFanout]],
) -> None:
    _, a, b = two
    live_a, alice = await a.join(ALICE)
    live_b, watcher = await b.join(WATCHER)
    _, mallory = await b.join(MALLORY)
    await live_a.handle(alice, awareness_frame((1, 1, {"name": "alice"})))
    await wait_until(lambda: shows(watcher, 1, "alice"), 2)
    # B knows the id is alice's: mallory's set and removal are ignored there, as on one node.
    await live_b.handle(mallory, awareness_frame((1, 9, {"name": "mallory"})))
    await live_b.handle(mallory, awareness_frame((1, 10, None)))
    await live_b.handle(mallory, awareness_frame((2, 1, {"name": "mallory's own"})))
    await wait_until(lambda: shows(alice, 2, "mallory's own"), 2)
    assert all(state["name"] == "alice" for _, state in seen(watcher, 1))
    # alice is shown her own state back (every change goes to its sender too), never mallory's
    assert [state["name"] for _, state in seen(alice, 1)] == ["alice"]
    assert mallory.close_code is None


async def test_in_a_race_the_channel_keeps_the_id_for_whoever_held_it_first(
    two: tuple[LocalBus, Node[LocalFanout], Node[LocalFanout]],
) -> None:
    bus, a, b = two
    live_a, alice = await a.join(ALICE)
    live_b, watcher = await b.join(WATCHER)
    _, mallory = await b.join(MALLORY)
    # In the same instant: B has not heard of alice's id when mallory sets it there.
    await live_a.handle(alice, awareness_frame((1, 1, {"name": "alice"})))
    await live_b.handle(mallory, awareness_frame((1, 1, {"name": "mallory"})))
    # The channel refused mallory's; B takes alice's state instead, A never shows mallory's.
    await wait_until(lambda: shows(watcher, 1, "alice"), 2)
    assert bus.states[KEY][1].principal == "u-alice"
    assert all(state["name"] == "alice" for _, state in seen(alice, 1) if state)
    await live_b.handle(mallory, awareness_frame((1, 2, {"name": "mallory again"})))
    await live_a.handle(alice, awareness_frame((1, 2, {"name": "alice again"})))
    await wait_until(lambda: shows(watcher, 1, "alice again"), 2)
    assert not any(s and s["name"] == "mallory again" for _, s in seen(watcher, 1))


async def test_a_dead_nodes_states_are_dropped_and_forgotten(
    two: tuple[LocalBus, Node[LocalFanout], Node[LocalFanout]],
) -> None:
    bus, a, b = two
    live_a, alice = await a.join(ALICE)
    _, watcher = await b.join(WATCHER)
    await live_a.handle(alice, awareness_frame((1, 1, {"name": "alice"})))
    await wait_until(lambda: shows(watcher, 1, "alice"), 2)
    sweeper = PresenceSweeper(b.registry, b.fanout)
    assert await sweeper.sweep() == 0  # A beats: nothing goes
    bus.alive.discard("a")  # A stops beating (killed)
    assert await sweeper.sweep() == 1
    assert shows(watcher, 1, None)
    assert KEY not in bus.states or 1 not in bus.states[KEY]


@pytest.fixture
async def meta() -> AsyncIterator[MetaStore]:
    store = open_meta_store("memory://")
    await store.open()
    await store.create_room(KEY.room, KEY.room, "u-owner")
    await store.add_member(KEY.room, "u-alice", Role.editor)
    yield store
    await store.close()


def access_messages(peer: Peer) -> list[bytes]:
    return [frame for frame in sent(peer) if frame[0] == framing.MSG_ACCESS]


def told(peer: Peer) -> tuple[Role | None, int]:
    """The role the socket holds now, and how many access messages (103) it was sent."""
    return peer.role, len(access_messages(peer))


async def test_a_role_change_on_one_node_reaches_the_others_sockets(
    two: tuple[LocalBus, Node[LocalFanout], Node[LocalFanout]], meta: MetaStore
) -> None:
    _, a, b = two
    follower = RoleFollower(b.registry, meta, b.fanout, interval=3600)
    await follower.start()
    try:
        _, alice = await b.join(ALICE)
        alice.role, alice.opted_in = Role.editor, True
        await meta.update_member(KEY.room, "u-alice", Role.viewer)
        a.registry.apply_member_role(KEY.room, "u-alice", Role.viewer)  # A's API does this
        await wait_until(lambda: alice.readonly, 2)
        assert told(alice) == (Role.viewer, 1)
        # Without a notice (lost), the recheck finds the change in the store.
        await meta.update_member(KEY.room, "u-alice", Role.editor)
        assert await follower.recheck() == 1
        assert told(alice) == (Role.editor, 2) and not alice.readonly
        assert await follower.recheck() == 1 and told(alice) == (Role.editor, 2)  # unchanged
        await meta.update_member(KEY.room, "u-alice", None)
        a.registry.apply_member_role(KEY.room, "u-alice", None)
        await wait_until(lambda: alice.close_code == 4403, 2)
    finally:
        await follower.stop()
