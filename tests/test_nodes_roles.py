"""Role changes across real `collab serve` nodes (issue 15, "Done means" 7, first half).

A member's role changed through node A's API reaches the socket that member holds on node C:
a downgrade within 1 s (its next write refused, message 103 to an opted-in socket), an upgrade
pulls the edit refused before, a removal closes it 4403. Node C re-reads the role from the
shared store when A's notice arrives through Redis; with Redis dead, its periodic recheck
(``role_recheck_interval``) still brings the change. Clients: pycrdt over raw sockets (which
see message 103 and the close code), and a y-websocket client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from collab.meta import MetaStore, Role
from collab.wire import framing
from collab.wire.lib0 import read_varuint
from tests.support.jspeer import JsPeer
from tests.support.postgres import fresh_database
from tests.support.rawpeer import RawPeer
from tests.support.redisserver import PrivateRedis, delete_prefix, shared_redis, unique_prefix
from tests.support.server import CollabServer, NodesFactory

pytestmark = pytest.mark.anyio

ROOM, DOC = "team", "notes"


@pytest.fixture
def shared() -> Iterator[dict[str, Any]]:
    url, prefix = shared_redis(), unique_prefix()
    yield {"fanout": url, "fanout_prefix": prefix, "compact_rows": 100_000}
    delete_prefix(url, prefix)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """As in tests/test_nodes.py: one SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield {}
        return
    import secrets

    with fresh_database() as url:
        yield {"store": url, "secret_key": secrets.token_urlsafe(32)}


def access_messages(peer: RawPeer) -> list[dict[str, object]]:
    found = []
    for frame in peer.other_frames:
        kind, pos = read_varuint(frame, 0)
        if kind == framing.MSG_ACCESS:
            _, pos = read_varuint(frame, pos)
            found.append(json.loads(frame[pos:]))
    return found


def told(peer: RawPeer, role: str, write: bool) -> bool:
    found = access_messages(peer)
    return bool(found) and found[-1] == {"role": role, "write": write}


def refusals(peer: RawPeer) -> int:
    return sum(1 for frame in peer.other_frames if frame[0] == framing.MSG_AUTH)


async def member(server: CollabServer, name: str) -> tuple[str, str]:
    """A user added to ROOM as an editor, and a personal API token of theirs."""
    user = server.create_user(name)

    async def add(meta: MetaStore) -> None:
        await meta.add_member(ROOM, user, Role.editor)

    server.with_meta(add)
    return user, server.api_token(user)


def owner_api(server: CollabServer) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {server.dev_token}"}
    return httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=headers)


async def saved_text(server: CollabServer) -> str:
    """The doc as a fresh client on ``server`` gets it (after a "saved" round trip)."""
    fresh = await RawPeer.connect(server.ws_url(ROOM, DOC, "collab=1"))
    await fresh.request_saved(1)
    await fresh.wait_for(lambda: fresh.saved >= 1)
    text = str(fresh.text)
    await fresh.close()
    return text


async def test_a_role_change_through_node_a_reaches_a_socket_on_node_c(
    store: dict[str, Any], nodes: NodesFactory, shared: dict[str, Any]
) -> None:
    a, b, c = nodes(3, **shared, **store)
    owner = await RawPeer.connect(a.ws_url(ROOM, DOC, "collab=1"))  # creates the room: owner
    await owner.insert(0, "o;")
    vic, token = await member(a, "vic")
    peer = await RawPeer.connect(c.ws_url(ROOM, DOC, "collab=1", token=token))
    await peer.insert(len(str(peer.text)), "v1;")
    await peer.request_saved(1)
    await peer.wait_for(lambda: peer.saved >= 1)
    async with owner_api(a) as api:
        # Downgrade through A: C's socket is told, and its next write is refused, within 1 s.
        answer = await api.patch(f"/rooms/{ROOM}/members/{vic}", json={"role": "viewer"})
        assert answer.status_code == 200
        with anyio.fail_after(1):
            await peer.wait_for(lambda: told(peer, "viewer", False))
            await peer.insert(0, "late;")
            await peer.wait_for(lambda: refusals(peer) == 1)
        assert "late;" not in await saved_text(b)
        # Upgrade through A: C asks its socket for what it lacks; the refused edit arrives.
        answer = await api.patch(f"/rooms/{ROOM}/members/{vic}", json={"role": "editor"})
        assert answer.status_code == 200
        with anyio.fail_after(5):
            await peer.wait_for(lambda: told(peer, "editor", True))
            await owner.wait_for(lambda: "late;" in str(owner.text))
        # Removal through A closes C's socket 4403.
        assert (await api.delete(f"/rooms/{ROOM}/members/{vic}")).status_code == 204
        with anyio.fail_after(1):
            await peer.closed.wait()
        assert peer.close_code == 4403
    assert peer.close_code == 4403 and owner.close_code is None
    await owner.close()


@pytest.mark.node
async def test_a_y_websocket_client_on_node_c_follows_a_downgrade_through_node_a(
    nodes: NodesFactory, shared: dict[str, Any]
) -> None:
    a, c = nodes(2, **shared)
    owner = await RawPeer.connect(a.ws_url(ROOM, DOC, "collab=1"))  # creates the room: owner
    await owner.insert(0, "o;")
    vic, token = await member(a, "vic")
    async with owner_api(a) as api, JsPeer(c.ws_base, f"{ROOM}/{DOC}", {"token": token}) as js:
        await js.call({"op": "wait_text", "equals": "o;"})
        answer = await api.patch(f"/rooms/{ROOM}/members/{vic}", json={"role": "viewer"})
        assert answer.status_code == 200
        with anyio.fail_after(1):
            # Polled: a write before the change arrives is accepted, as it should be.
            while True:
                await js.call({"op": "insert", "index": 0, "text": "x"})
                if js.count_events("permission-denied"):
                    break
                await anyio.sleep(0.05)  # the scenario: a person typing
        assert (await api.delete(f"/rooms/{ROOM}/members/{vic}")).status_code == 204
        await js.wait_event("close", code=4403, within=2)
    await owner.close()


async def test_with_redis_dead_the_recheck_brings_a_role_change(
    nodes: NodesFactory, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    interval = 1.0
    try:
        a, c = nodes(2, fanout=redis.url, role_recheck_interval=interval)
        owner = await RawPeer.connect(a.ws_url(ROOM, DOC, "collab=1"))
        vic, token = await member(a, "vic")
        peer = await RawPeer.connect(c.ws_url(ROOM, DOC, "collab=1", token=token))
        redis.kill()  # no notice can cross now
        async with owner_api(a) as api:
            answer = await api.patch(f"/rooms/{ROOM}/members/{vic}", json={"role": "viewer"})
            assert answer.status_code == 200
            with anyio.fail_after(interval + 2):  # a recheck round, with room for a slow node
                await peer.wait_for(lambda: told(peer, "viewer", False))
            assert (await api.delete(f"/rooms/{ROOM}/members/{vic}")).status_code == 204
            with anyio.fail_after(interval + 2):
                await peer.closed.wait()
        assert peer.close_code == 4403
        await owner.close()
    finally:
        redis.stop()
