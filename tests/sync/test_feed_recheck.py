"""A live stream (``/ws/_me``) follows a membership ended where no notice reached this node
(another node's write whose announcement was lost: here written to the store directly) within
``role_recheck_interval``, as the doc sockets do (collab.sync.roles): it stops showing the
room's counts and who is in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.nodestore import fanout_settings
from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory

pytestmark = pytest.mark.anyio

INTERVAL = 1.0


@pytest.fixture
def shared() -> Iterator[dict[str, Any]]:
    yield from fanout_settings(role_recheck_interval=INTERVAL)


def names_room(frame: dict[str, Any], room: str) -> bool:
    if frame["type"] == "room":
        return bool(frame["room"]["id"] == room)
    return any(item["id"] == room for item in frame["rooms"] + frame["dms"])


async def test_a_removal_whose_notice_was_lost_leaves_the_stream(
    server_factory: ServerFactory, shared: dict[str, Any]
) -> None:
    server = server_factory(**shared)
    alice, bob = server.create_user("Alice"), server.create_user("Bob")
    alice_token, bob_token = server.api_token(alice), server.api_token(bob)
    headers = {"authorization": f"Bearer {bob_token}"}
    with anyio.fail_after(30):
        async with httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=headers) as api:
            assert (await api.post("/rooms", json={"id": "team"})).status_code == 201
            body = {"user_id": alice, "role": "editor"}
            assert (await api.post("/rooms/team/members", json=body)).status_code == 201
        async with connect(f"{server.ws_base}/_me?token={alice_token}") as ws:
            first = json.loads(await ws.recv())
            assert [room["id"] for room in first["rooms"]] == ["team"]
            server.with_meta(lambda meta: meta.remove_member("team", alice))
            # Within a recheck round (and room for a slow one): listed without the room.
            with anyio.fail_after(INTERVAL + 3):
                while names_room(json.loads(await ws.recv()), "team"):
                    pass
            # Nothing more of it: Bob opening its chat is not shown to Alice.
            peer = await RawPeer.connect(server.ws_url("team", "chat", token=bob_token))
            frames: list[dict[str, Any]] = []
            with anyio.move_on_after(1.0):
                while True:
                    frames.append(json.loads(await ws.recv()))
            await peer.close()
    assert [f for f in frames if names_room(f, "team")] == []
