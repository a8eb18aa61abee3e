"""Presence in a member's live stream (``/ws/_me``, ``here``) across real `collab serve` nodes
(issue 15: "Everything built on one node works across nodes"; collab.sync.feedhere).

Two nodes on PostgreSQL and Redis (the shared one with a prefix of the test's own, or a
private one for the tests that kill it):

- a member joining a doc through node A shows in the ``here`` of a member's stream on node B
  within 1 s, and leaves it within 1 s of closing; a non-member's stream on B hears nothing
  of the room;
- node A killed with ``kill -9``: its users leave B's streams within ~20 s (heartbeat);
- Redis killed and restarted empty: A writes its summaries again, B's streams show them;
- a room deleted through A while Redis is dead (its notice lost): B's streams drop it from
  their lists within the recheck interval + 2 s.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.nodestore import postgres_cluster
from tests.support.postgres import fresh_database
from tests.support.rawpeer import RawPeer
from tests.support.redisserver import PrivateRedis
from tests.support.server import CollabServer, NodesFactory
from tests.support.waiting import wait_until
from tests.test_nodes_feeds import Stream, api, mentions_room

pytestmark = pytest.mark.anyio

ROOM, DOC = "team", "notes"
HOUR = 3600.0


@pytest.fixture
def cluster() -> Iterator[dict[str, Any]]:
    yield from postgres_cluster()


@pytest.fixture
def private(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Redis of the test's own (it kills it) and a fresh PostgreSQL database."""
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        with fresh_database() as store:
            yield {
                "fanout": redis.url,
                "store": store,
                "secret_key": secrets.token_urlsafe(32),
                "redis": redis,
            }
    finally:
        redis.stop()


def here(frame: dict[str, Any], room: str = ROOM) -> list[tuple[str, list[str]]] | None:
    """Who a frame shows in ``room`` (None: the frame does not say)."""
    if frame["type"] == "room":
        items = [frame["room"]] if frame["room"]["id"] == room else []
    else:
        items = [item for item in frame["rooms"] + frame["dms"] if item["id"] == room]
    if not items:
        return None
    return [(person["id"], person["docs"]) for person in items[0]["here"]]


async def room_with(a: CollabServer) -> tuple[str, str, str, str]:
    """Alice's room with Bob an editor; Carol in no room. (alice, bob tokens, bob id, carol)"""
    alice, bob, carol = (a.create_user(name) for name in ("Alice", "Bob", "Carol"))
    alice_token, bob_token, carol_token = (a.api_token(u) for u in (alice, bob, carol))
    async with api(a, alice_token) as alice_a:
        assert (await alice_a.post("/rooms", json={"id": ROOM, "title": "T"})).status_code == 201
        added = await alice_a.post(
            f"/rooms/{ROOM}/members", json={"user_id": bob, "role": "editor"}
        )
        assert added.status_code == 201
    return alice_token, bob_token, bob, carol_token


async def test_a_member_on_a_shows_in_b_streams_within_1_s_and_leaves_within_1_s(
    nodes: NodesFactory, cluster: dict[str, Any]
) -> None:
    a, b = nodes(2, **cluster)
    alice_token, bob_token, bob, carol_token = await room_with(a)
    async with (
        connect(f"{b.ws_base}/_me?token={alice_token}") as alice_ws,
        connect(f"{b.ws_base}/_me?token={carol_token}") as carol_ws,
    ):
        mine, outsider = Stream(alice_ws), Stream(carol_ws)
        assert here(await mine.next(lambda f: f["type"] == "rooms", within=10)) == []
        await outsider.next(lambda f: f["type"] == "rooms", within=10)
        for _ in range(2):  # in and out, twice: the second round is not a first write
            joined = time.monotonic()
            peer = await RawPeer.connect(a.ws_url(ROOM, DOC, token=bob_token))
            await mine.next(lambda f: here(f) == [(bob, [DOC])], within=1.0 + 0.5)
            print(f"in after {time.monotonic() - joined:.2f} s")  # 0.5: the handshake
            await peer.close()
            left = time.monotonic()
            await mine.next(lambda f: here(f) == [])
            print(f"out after {time.monotonic() - left:.2f} s")
        await outsider.drain(0.3)
        assert not [f for f in outsider.frames if mentions_room(f, ROOM)]
        # A fresh stream on B reads A's summary in its first listing, and a person on both
        # nodes is listed once, with the docs of both.
        peer = await RawPeer.connect(a.ws_url(ROOM, DOC, token=bob_token))
        other = await RawPeer.connect(b.ws_url(ROOM, "other", token=bob_token))
        await mine.next(lambda f: here(f) == [(bob, [DOC, "other"])])
        async with connect(f"{b.ws_base}/_me?token={alice_token}") as again_ws:
            again = Stream(again_ws)
            listing = await again.next(lambda f: f["type"] == "rooms", within=10)
            assert here(listing) == [(bob, [DOC, "other"])]
        await peer.close()
        await other.close()


async def test_a_killed_nodes_users_leave_the_streams_within_20_s(
    nodes: NodesFactory, cluster: dict[str, Any]
) -> None:
    a, b = nodes(2, **cluster)
    alice_token, bob_token, bob, _ = await room_with(a)
    async with connect(f"{b.ws_base}/_me?token={alice_token}") as alice_ws:
        mine = Stream(alice_ws)
        await mine.next(lambda f: f["type"] == "rooms", within=10)
        doomed = await RawPeer.connect(a.ws_url(ROOM, DOC, token=bob_token))
        await mine.next(lambda f: here(f) == [(bob, [DOC])], within=2)
        a.kill9()  # no close, no summary removed: only its silence tells
        killed = time.monotonic()
        await mine.next(lambda f: here(f) == [], within=20)
        print(f"a killed node's user left after {time.monotonic() - killed:.1f} s")
        await doomed.close()


async def fanout_healthy(server: CollabServer) -> bool:
    async with httpx.AsyncClient() as client:
        text = (await client.get(server.http_url + "/metrics")).text
    return "collab_fanout_healthy 1.0" in text


async def test_after_redis_restarts_empty_the_presence_is_shared_again(
    nodes: NodesFactory, private: dict[str, Any]
) -> None:
    redis: PrivateRedis = private.pop("redis")
    a, b = nodes(2, **private)
    alice_token, bob_token, bob, _ = await room_with(a)
    peer = await RawPeer.connect(a.ws_url(ROOM, DOC, token=bob_token))
    async with connect(f"{b.ws_base}/_me?token={alice_token}") as alice_ws:
        mine = Stream(alice_ws)
        await mine.next(lambda f: here(f) == [(bob, [DOC])], within=10)
        redis.kill()
        redis.start()  # same port, nothing in it
        for server in (a, b):
            await wait_until(functools.partial(fanout_healthy, server), 15)
        # A fresh stream on B lists Bob again: A wrote its summary again.
        async with connect(f"{b.ws_base}/_me?token={alice_token}") as again_ws:
            again = Stream(again_ws)
            await again.next(lambda f: here(f) == [(bob, [DOC])], within=10)
        # The stream open throughout ends showing him too (it sends only what changed: it may
        # have shown him all along).
        await mine.drain(3)
        shown = [found for frame in mine.frames if (found := here(frame)) is not None]
        assert shown[-1] == [(bob, [DOC])]
    await peer.close()


async def test_a_room_deleted_while_redis_is_dead_leaves_the_streams_by_the_recheck(
    nodes: NodesFactory, private: dict[str, Any]
) -> None:
    redis: PrivateRedis = private.pop("redis")
    interval = 1.0
    a, b = nodes(2, **private, role_recheck_interval=interval, user_recheck_interval=HOUR)
    alice_token, *_ = await room_with(a)
    async with connect(f"{b.ws_base}/_me?token={alice_token}") as alice_ws:
        mine = Stream(alice_ws)
        listing = await mine.next(lambda f: f["type"] == "rooms", within=10)
        assert [room["id"] for room in listing["rooms"]] == [ROOM]
        redis.kill()  # no notice can cross now
        async with api(a, alice_token) as alice_a:
            assert (await alice_a.delete(f"/rooms/{ROOM}")).status_code == 204
        deleted = time.monotonic()
        await mine.next(lambda f: f["type"] == "rooms" and f["rooms"] == [], within=interval + 2)
        print(f"the deleted room left B's stream after {time.monotonic() - deleted:.1f} s")
