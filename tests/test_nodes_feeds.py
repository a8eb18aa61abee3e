"""A member's live stream (``/ws/_me``) on node B moves for what is done through node A
(issue 15: "inboxes and unread counts" across nodes; collab.sync.feeds).

Posts made through A raise the unread count and mentions a member's stream on B shows within
1 s; a marker moved through A clears them; a DM opened through A is listed at once. A user
who is not in the room sees nothing of it on B. A flood of posts through A is counted once
each (the stream reads its counts from the store; a notice only says "look"), never more.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.nodestore import postgres_cluster
from tests.support.server import CollabServer, NodesFactory

pytestmark = pytest.mark.anyio

ROOM = "team"
FLOOD = 40  # posts at once (under chat_write_burst)


@pytest.fixture
def cluster() -> Iterator[dict[str, Any]]:
    yield from postgres_cluster()


class Stream:
    """A ``/ws/_me`` client that keeps every frame it received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def next(self, want: Any, within: float = 1.0) -> dict[str, Any]:
        with anyio.fail_after(within):
            while True:
                frame = json.loads(await self.ws.recv())
                assert isinstance(frame, dict)
                self.frames.append(frame)
                if want(frame):
                    return frame

    async def drain(self, seconds: float) -> None:
        """Keep what arrives for ``seconds``."""
        with anyio.move_on_after(seconds):
            try:
                while True:
                    self.frames.append(json.loads(await self.ws.recv()))
            except ConnectionClosed:
                pass


def counts(frame: dict[str, Any], room: str = ROOM) -> tuple[int, int] | None:
    if frame["type"] == "room" and frame["room"]["id"] == room:
        return frame["room"]["unread"], frame["room"]["mentions"]
    return None


def mentions_room(frame: dict[str, Any], room: str) -> bool:
    if frame["type"] == "room":
        return bool(frame["room"]["id"] == room)
    return any(item["id"] == room for item in frame["rooms"] + frame["dms"])


def api(server: CollabServer, token: str) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"}
    return httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=headers, timeout=10)


async def test_posts_markers_and_dms_through_a_move_a_stream_on_b(
    nodes: NodesFactory, cluster: dict[str, Any]
) -> None:
    a, b = nodes(2, **cluster)
    alice, bob, carol = (a.create_user(name) for name in ("Alice", "Bob", "Carol"))
    alice_token, bob_token, carol_token = (a.api_token(u) for u in (alice, bob, carol))
    async with api(a, alice_token) as alice_a, api(a, bob_token) as bob_a:
        created = await alice_a.post("/rooms", json={"id": ROOM, "title": "Team"})
        assert created.status_code == 201
        added = await alice_a.post(
            f"/rooms/{ROOM}/members", json={"user_id": bob, "role": "editor"}
        )
        assert added.status_code == 201
        async with (
            connect(f"{b.ws_base}/_me?token={alice_token}") as alice_ws,
            connect(f"{b.ws_base}/_me?token={carol_token}") as carol_ws,
        ):
            mine, outsider = Stream(alice_ws), Stream(carol_ws)
            listing = await mine.next(lambda f: f["type"] == "rooms", within=10)
            assert [(r["id"], r["unread"]) for r in listing["rooms"]] == [(ROOM, 0)]
            assert (await outsider.next(lambda f: f["type"] == "rooms", within=10))["rooms"] == []

            # A post and a mention through A: B's stream shows them within 1 s.
            body = {"text": "hello", "client_id": "c1"}
            assert (await bob_a.post(f"/rooms/{ROOM}/messages", json=body)).status_code == 201
            await mine.next(lambda f: counts(f) == (1, 0))
            body = {"text": "@alice look", "client_id": "c2"}
            assert (await bob_a.post(f"/rooms/{ROOM}/messages", json=body)).status_code == 201
            await mine.next(lambda f: counts(f) == (2, 1))

            # A flood through A: each post counted once on B, never more.
            async def post(index: int) -> None:
                body = {"text": f"flood {index}", "client_id": f"f{index}"}
                answer = await bob_a.post(f"/rooms/{ROOM}/messages", json=body)
                assert answer.status_code == 201

            await asyncio.gather(*(post(i) for i in range(FLOOD)))
            total = 2 + FLOOD
            await mine.next(lambda f: counts(f) == (total, 1), within=5)
            await mine.drain(0.5)
            seen = [found for frame in mine.frames if (found := counts(frame)) is not None]
            assert max(unread for unread, _ in seen) == total
            assert seen[-1] == (total, 1)

            # Alice reads through A: B's stream clears within 1 s.
            marked = await alice_a.post(f"/rooms/{ROOM}/read", json={"up_to": total})
            assert marked.status_code == 200
            await mine.next(lambda f: counts(f) == (0, 0))

            # A DM Bob opens with Carol through A: listed on Carol's stream on B at once.
            dm = await bob_a.post("/dms", json={"user": "carol"})
            assert dm.status_code == 201
            listed = await outsider.next(lambda f: f["type"] == "rooms" and bool(f["dms"]))
            assert [d["id"] for d in listed["dms"]] == [dm.json()["id"]]

            # Carol is not in the room: nothing of it reached her stream.
            await outsider.drain(0.3)
            assert not [f for f in outsider.frames if mentions_room(f, ROOM)]
