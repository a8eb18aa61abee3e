"""Revocations across real `collab serve` nodes on PostgreSQL and Redis (issue 15, "Everything
built on one node works across nodes"; collab.sync.revoked).

Each revocation made through node A's API closes the socket its credential holds on node B
within 1 s, with the code one node sends (4401 a revoked session, API token or room token, a
disabled user, a removed bot; 4403 a removed member; 4404 a deleted room), and a fresh
connect to B with it is refused. The periodic rechecks are set to an hour, so only A's notice
can do it in time; with Redis dead, the recheck (at its interval) still does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from collab.meta import MetaStore, Role
from tests.support.nodestore import postgres_cluster
from tests.support.rawpeer import RawPeer, close_code_of
from tests.support.redisserver import PrivateRedis
from tests.support.server import CollabServer, NodesFactory

pytestmark = pytest.mark.anyio

ROOM, DOC = "team", "notes"
HOUR = 3600.0  # the periodic rechecks: never within a test


@pytest.fixture
def cluster() -> Iterator[dict[str, Any]]:
    """The shared Redis (a prefix of this test's) and a fresh PostgreSQL database."""
    yield from postgres_cluster(
        admins="collab:dev:dev", role_recheck_interval=HOUR, user_recheck_interval=HOUR
    )


def api(server: CollabServer, token: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token or server.dev_token}"}
    return httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=headers, timeout=10)


def origin(server: CollabServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def member(server: CollabServer, name: str, room: str = ROOM) -> str:
    """A user who is an editor of ``room``; their id."""
    user = server.create_user(name)

    async def add(meta: MetaStore) -> None:
        await meta.add_member(room, user, Role.editor)

    server.with_meta(add)
    return user


async def closed_with(peer: RawPeer, within: float = 1.0) -> int | None:
    with anyio.fail_after(within):
        await peer.closed.wait()
    return peer.close_code


async def stream_closed_with(ws: ClientConnection, within: float = 1.0) -> int | None:
    with anyio.fail_after(within):
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
    return ws.close_code


async def started(nodes: NodesFactory, cluster: dict[str, Any]) -> tuple[CollabServer, ...]:
    """Two nodes; the room exists (the dev user, its owner, wrote through A)."""
    a, b = nodes(2, **cluster)
    owner = await RawPeer.connect(a.ws_url(ROOM, DOC, "collab=1"))
    await owner.insert(0, "o;")
    await owner.request_saved(1)
    await owner.wait_for(lambda: owner.saved >= 1)
    await owner.close()
    return a, b


async def test_a_session_revoked_through_a_closes_its_sockets_on_b(
    nodes: NodesFactory, cluster: dict[str, Any]
) -> None:
    a, b = await started(nodes, cluster)
    vic = member(a, "vic")
    secret = b.session(vic)
    on_b = {"Cookie": f"collab_session={secret}", "Origin": origin(b)}
    doc = await RawPeer.connect(b.ws_url(ROOM, DOC, token=""), additional_headers=on_b)
    async with connect(f"{b.ws_base}/_me", additional_headers=on_b) as stream:
        assert json.loads(await stream.recv())["type"] == "rooms"
        on_a = {"Cookie": f"collab_session={secret}", "Origin": origin(a)}
        async with httpx.AsyncClient(base_url=a.http_url) as http:
            assert (await http.post("/logout", headers=on_a)).status_code in (200, 303)
        assert await closed_with(doc) == 4401
        assert await stream_closed_with(stream) == 4401
    assert await close_code_of(b.ws_url(ROOM, DOC, token=""), additional_headers=on_b) == 4401


async def test_api_and_room_tokens_revoked_through_a_close_their_sockets_on_b(
    nodes: NodesFactory, cluster: dict[str, Any]
) -> None:
    a, b = await started(nodes, cluster)
    vic = member(a, "vic")
    personal = a.api_token(vic)
    async with api(a, personal) as vics, api(a) as owner:
        [listed] = (await vics.get("/tokens")).json()["items"]
        minted = (await owner.post(f"/rooms/{ROOM}/tokens", json={"role": "editor"})).json()
        room_token = a.remember(minted["token"])
        by_token = await RawPeer.connect(b.ws_url(ROOM, DOC, token=personal))
        by_room_token = await RawPeer.connect(b.ws_url(ROOM, DOC, token=room_token))
        bystander = await RawPeer.connect(b.ws_url(ROOM, DOC))  # the dev token: stays
        # A personal API token, revoked by its owner through A.
        assert (await vics.delete(f"/tokens/{listed['id']}")).status_code == 204
        assert await closed_with(by_token) == 4401
        assert by_room_token.close_code is None
        assert await close_code_of(b.ws_url(ROOM, DOC, token=personal)) == 4401
        # A room token, revoked by the room's owner through A.
        revoked = await owner.delete(f"/rooms/{ROOM}/tokens/{minted['id']}")
        assert revoked.status_code == 204
        assert await closed_with(by_room_token) == 4401
        assert await close_code_of(b.ws_url(ROOM, DOC, token=room_token)) == 4401
    assert bystander.close_code is None
    await bystander.close()


async def test_a_user_disabled_or_a_bot_removed_through_a_loses_every_socket_on_b(
    nodes: NodesFactory, cluster: dict[str, Any]
) -> None:
    a, b = await started(nodes, cluster)
    vic = member(a, "vic")
    token = a.api_token(vic)
    doc = await RawPeer.connect(b.ws_url(ROOM, DOC, token=token))
    async with connect(f"{b.ws_base}/_me?token={token}") as stream, api(a) as admin:
        assert json.loads(await stream.recv())["type"] == "rooms"
        answer = await admin.patch(f"/users/{vic}", json={"disabled": True})
        assert answer.status_code == 200
        assert await closed_with(doc) == 4401
        assert await stream_closed_with(stream) == 4401
        assert await close_code_of(b.ws_url(ROOM, DOC, token=token)) == 4401
        # A bot removed by the room's owner through A: its socket on B closes 4401.
        made = await admin.post(f"/rooms/{ROOM}/bots", json={"name": "rollbot", "role": "editor"})
        assert made.status_code == 201
        bot, bot_token = made.json()["bot"]["id"], a.remember(made.json()["token"])
        bots = await RawPeer.connect(b.ws_url(ROOM, DOC, token=bot_token))
        assert (await admin.delete(f"/rooms/{ROOM}/bots/{bot}")).status_code == 204
        assert await closed_with(bots) == 4401
    assert await close_code_of(b.ws_url(ROOM, DOC, token=bot_token)) == 4401


async def test_a_removed_member_and_a_deleted_room_close_on_b(
    nodes: NodesFactory, cluster: dict[str, Any]
) -> None:
    a, b = await started(nodes, cluster)
    vic, wes = member(a, "vic"), member(a, "wes")
    vic_token, wes_token = a.api_token(vic), a.api_token(wes)
    vics = await RawPeer.connect(b.ws_url(ROOM, DOC, token=vic_token))
    wess = await RawPeer.connect(b.ws_url(ROOM, DOC, token=wes_token))
    chat = await RawPeer.connect(b.ws_url(ROOM, "chat", token=wes_token))
    async with connect(f"{b.ws_base}/_me?token={wes_token}") as stream, api(a) as owner:
        first = json.loads(await stream.recv())
        assert [room["id"] for room in first["rooms"]] == [ROOM]
        # A member removed through A: 4403 on B, and refused there after.
        assert (await owner.delete(f"/rooms/{ROOM}/members/{vic}")).status_code == 204
        assert await closed_with(vics) == 4403
        assert await close_code_of(b.ws_url(ROOM, DOC, token=vic_token)) in (4403, 4404)
        # The room deleted through A: every socket of it on B closes 4404; the stream on B
        # lists the room no more.
        assert (await owner.delete(f"/rooms/{ROOM}")).status_code == 204
        assert await closed_with(wess) == 4404
        assert await closed_with(chat) == 4404
        with anyio.fail_after(1):
            while True:
                frame = json.loads(await stream.recv())
                if frame["type"] == "rooms":
                    break
        assert frame["rooms"] == []
    # Its id is free again, as on one node: a fresh connect on B makes a new, empty room
    # (wes its owner); nothing of the deleted one is served.
    fresh = await RawPeer.connect(b.ws_url(ROOM, DOC, token=wes_token))
    assert str(fresh.text) == ""
    await fresh.close()


async def test_with_redis_dead_the_recheck_closes_a_revoked_session(
    nodes: NodesFactory, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    interval = 1.0
    try:
        a, b = nodes(2, fanout=redis.url, role_recheck_interval=interval)  # one SQLite file
        vic = a.create_user("vic")
        secret = b.session(vic)
        on_b = {"Cookie": f"collab_session={secret}", "Origin": origin(b)}
        doc = await RawPeer.connect(b.ws_url("vics", DOC, token=""), additional_headers=on_b)
        redis.kill()  # no notice can cross now
        on_a = {"Cookie": f"collab_session={secret}", "Origin": origin(a)}
        async with httpx.AsyncClient(base_url=a.http_url) as http:
            assert (await http.post("/logout", headers=on_a)).status_code in (200, 303)
        assert await closed_with(doc, within=interval + 2) == 4401
    finally:
        redis.stop()
