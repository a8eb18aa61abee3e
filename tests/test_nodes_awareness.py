"""Awareness across real `collab serve` nodes (issue 15, "Done means" 6, the awareness half).

Through the shared Redis only (a key prefix of each test's own), never the store:

- a state set on node A is seen on node B within 500 ms, and by a joiner of a third node that
  loads the doc later (the shared states); its removal follows; y-websocket clients on two
  nodes see each other;
- a node killed with ``kill -9`` stops beating its heartbeat, and its users vanish from the
  other nodes' clients within 15 s (an awareness update with those clients removed);
- a client id a principal holds on node A cannot be taken by another principal on node B: the
  entry is ignored as on one node (not relayed anywhere, the socket stays open);
- Redis killed and restarted empty: the nodes share their sockets' states again.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from collab.meta import MetaStore, Role
from tests.support.frames import awareness_frame, awareness_states
from tests.support.jspeer import JsPeer, require_node
from tests.support.rawpeer import RawPeer
from tests.support.redisserver import PrivateRedis, delete_prefix, shared_redis, unique_prefix
from tests.support.server import CollabServer, NodesFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM, DOC = "team", "notes"


@pytest.fixture
def shared() -> Iterator[dict[str, Any]]:
    url, prefix = shared_redis(), unique_prefix()
    yield {"fanout": url, "fanout_prefix": prefix, "compact_rows": 100_000}
    delete_prefix(url, prefix)


def seen(peer: RawPeer, client: int) -> list[tuple[int, Any]]:
    """Every (clock, state) ``peer`` was sent for ``client``, in order."""
    return [
        (clock, state)
        for frame in peer.awareness_frames
        for c, clock, state in awareness_states(frame)
        if c == client
    ]


def shows(peer: RawPeer, client: int, field: str, value: object) -> bool:
    found = seen(peer, client)
    return bool(found) and isinstance(found[-1][1], dict) and found[-1][1].get(field) == value


def removed(peer: RawPeer, client: int) -> bool:
    found = seen(peer, client)
    return bool(found) and found[-1][1] is None


def member_token(server: CollabServer, name: str) -> tuple[str, str]:
    """A user added to ROOM as an editor (the room exists), and a personal API token."""
    user = server.create_user(name)

    async def add(meta: MetaStore) -> None:
        await meta.add_member(ROOM, user, Role.editor)

    server.with_meta(add)
    return user, server.api_token(user)


async def test_awareness_set_on_one_node_is_seen_on_another_within_500_ms(
    nodes: NodesFactory, shared: dict[str, Any]
) -> None:
    a, b, c = nodes(3, **shared)
    owner = await RawPeer.connect(a.ws_url(ROOM, DOC))  # creates the room
    alice, token = member_token(a, "alice")
    watcher = await RawPeer.connect(b.ws_url(ROOM, DOC))
    setter = await RawPeer.connect(a.ws_url(ROOM, DOC, token=token))
    await setter.websocket.send(awareness_frame((1001, 1, {"cursor": 7})))
    with anyio.fail_after(0.5):
        await watcher.wait_for(lambda: shows(watcher, 1001, "cursor", 7))
    state = seen(watcher, 1001)[-1][1]
    assert state["user"]["id"] == alice  # stamped on A, from A's principal
    # A node that loads the doc later shows it to its first joiner (the shared states).
    late = await RawPeer.connect(c.ws_url(ROOM, DOC))
    await late.wait_for(lambda: shows(late, 1001, "cursor", 7), 5)
    # A change and then the socket's close reach both.
    await setter.websocket.send(awareness_frame((1001, 2, {"cursor": 9})))
    with anyio.fail_after(0.5):
        await watcher.wait_for(lambda: shows(watcher, 1001, "cursor", 9))
    await setter.close()
    with anyio.fail_after(2):
        for peer in (watcher, late, owner):
            await peer.wait_for(lambda p=peer: removed(p, 1001))
    for peer in (watcher, late, owner):
        await peer.close()


@pytest.mark.node
async def test_y_websocket_clients_on_two_nodes_see_each_other(
    nodes: NodesFactory, shared: dict[str, Any]
) -> None:
    require_node()
    a, b = nodes(2, **shared)
    async with (
        JsPeer(a.ws_base, f"{ROOM}/{DOC}", a.params) as on_a,
        JsPeer(b.ws_base, f"{ROOM}/{DOC}", b.params) as on_b,
    ):
        for peer in (on_a, on_b):
            await peer.wait_event("synced")
        assert on_a.client_id is not None and on_b.client_id is not None
        await on_a.call({"op": "awareness", "state": {"cursor": 1}})
        with anyio.fail_after(0.5):
            await on_b.call({"op": "wait_states", "has": [on_a.client_id], "timeout_ms": 500})
        await on_b.call({"op": "awareness", "state": {"cursor": 2}})
        await on_a.call({"op": "wait_states", "has": [on_b.client_id], "timeout_ms": 2000})
        state = (await on_b.states())[on_a.client_id]
        assert state["cursor"] == 1 and state["user"]["id"]  # stamped on A
        # A leaves like a closing tab: B's client drops it.
        await on_a.call({"op": "disconnect"})
        await on_b.call({"op": "wait_states", "lacks": [on_a.client_id], "timeout_ms": 2000})


async def test_a_killed_nodes_users_vanish_from_the_others_within_15_s(
    nodes: NodesFactory, shared: dict[str, Any]
) -> None:
    a, b = nodes(2, **shared)
    watcher = await RawPeer.connect(b.ws_url(ROOM, DOC))  # creates the room
    doomed = await RawPeer.connect(a.ws_url(ROOM, DOC))
    await doomed.websocket.send(awareness_frame((2001, 1, {"name": "on A"})))
    await watcher.wait_for(lambda: shows(watcher, 2001, "name", "on A"), 5)
    a.kill9()  # no close, no removal sent: only its silence tells
    killed = time.monotonic()
    with anyio.fail_after(15):
        await watcher.wait_for(lambda: removed(watcher, 2001), 15)
    print(f"a killed node's client vanished after {time.monotonic() - killed:.1f} s")
    # A newcomer on B does not see it either.
    fresh = await RawPeer.connect(b.ws_url(ROOM, DOC))
    await fresh.websocket.send(awareness_frame((2002, 1, {"name": "fresh"})))
    await watcher.wait_for(lambda: shows(watcher, 2002, "name", "fresh"), 5)
    assert seen(fresh, 2001) == []
    await doomed.close()
    await fresh.close()
    await watcher.close()


async def fanout_healthy(server: CollabServer) -> bool:
    async with httpx.AsyncClient() as client:
        text = (await client.get(server.http_url + "/metrics")).text
    return "collab_fanout_healthy 1.0" in text


async def test_after_redis_restarts_empty_the_states_are_shared_again(
    nodes: NodesFactory, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        a, b, c = nodes(3, fanout=redis.url)
        watcher = await RawPeer.connect(b.ws_url(ROOM, DOC))
        setter = await RawPeer.connect(a.ws_url(ROOM, DOC))
        await setter.websocket.send(awareness_frame((4001, 1, {"name": "before"})))
        await watcher.wait_for(lambda: shows(watcher, 4001, "name", "before"), 5)
        redis.kill()
        redis.start()  # same port, nothing in it
        for server in (a, b, c):  # c too: its follow of the doc must start on the new Redis
            await wait_until(functools.partial(fanout_healthy, server), 15)
        # A published its sockets' states again: a node loading the doc now is shown them.
        late = await RawPeer.connect(c.ws_url(ROOM, DOC))
        await late.wait_for(lambda: shows(late, 4001, "name", "before"), 10)
        await watcher.wait_for(lambda: shows(watcher, 4001, "name", "before"), 10)
        await setter.websocket.send(awareness_frame((4001, 2, {"name": "after"})))
        for peer in (watcher, late):
            await peer.wait_for(lambda p=peer: shows(p, 4001, "name", "after"), 2)
        for peer in (setter, watcher, late):
            await peer.close()
    finally:
        redis.stop()


async def test_a_client_id_of_a_principal_on_one_node_cannot_be_taken_on_another(
    nodes: NodesFactory, shared: dict[str, Any]
) -> None:
    a, b = nodes(2, **shared)
    owner = await RawPeer.connect(a.ws_url(ROOM, DOC))  # creates the room
    _, alice_token = member_token(a, "alice")
    _, mallory_token = member_token(a, "mallory")
    watchers = [owner, await RawPeer.connect(b.ws_url(ROOM, DOC))]
    alice = await RawPeer.connect(a.ws_url(ROOM, DOC, token=alice_token))
    await alice.websocket.send(awareness_frame((3001, 1, {"name": "alice's"})))
    for peer in watchers:
        await peer.wait_for(lambda p=peer: shows(p, 3001, "name", "alice's"), 5)
    mallory = await RawPeer.connect(b.ws_url(ROOM, DOC, token=mallory_token))
    assert shows(mallory, 3001, "name", "alice's")  # in B's greeting, as on one node
    # Mallory on B sets and removes alice's id with newer clocks, then sets an id of her own.
    await mallory.websocket.send(awareness_frame((3001, 50, {"name": "spoofed"})))
    await mallory.websocket.send(awareness_frame((3001, 51, None)))
    await mallory.websocket.send(awareness_frame((3002, 1, {"name": "mallory's"})))
    for peer in (*watchers, alice):
        await peer.wait_for(lambda p=peer: shows(p, 3002, "name", "mallory's"), 5)
    # Ignored as on one node: relayed nowhere, alice's state stands, mallory stays connected.
    for peer in (*watchers, alice):
        assert all(state and state["name"] == "alice's" for _, state in seen(peer, 3001))
    assert mallory.close_code is None and not mallory.closed.is_set()
    # Alice's own next change still goes everywhere.
    await alice.websocket.send(awareness_frame((3001, 2, {"name": "alice again"})))
    for peer in (*watchers, mallory):
        await peer.wait_for(lambda p=peer: shows(p, 3001, "name", "alice again"), 5)
    for peer in (alice, mallory, *watchers):
        await peer.close()
