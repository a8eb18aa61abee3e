"""The user's live stream, ``/ws/_me`` (issue 10, Server work: one live stream per signed-in
user): the room list first, then presence and chat changes of every room and DM as they
happen, a new room or DM at once; and its refusals: anonymous, a room token, a foreign Origin,
a revoked session, a frame from the client, more streams than a user may hold."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from collab.sync.feeds import MAX_FEEDS_PER_USER
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


def feed_url(server: CollabServer, token: str = "") -> str:
    return f"{server.ws_base}/_me" + (f"?token={token}" if token else "")


class Stream:
    """A ``/ws/_me`` client: the frames it received, decoded."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def next(self, want: Any = None, within: float = 10) -> dict[str, Any]:
        """The next frame (that ``want`` accepts, if given)."""
        with anyio.fail_after(within):
            while True:
                frame = json.loads(await self.ws.recv())
                assert isinstance(frame, dict)
                if want is None or want(frame):
                    return frame


def here(frame: dict[str, Any], room: str) -> list[tuple[str, list[str]]] | None:
    if frame["type"] == "room" and frame["room"]["id"] == room:
        return [(p["name"], p["docs"]) for p in frame["room"]["here"]]
    return None


def counts(frame: dict[str, Any], room: str) -> tuple[int, int] | None:
    if frame["type"] == "room" and frame["room"]["id"] == room:
        return frame["room"]["unread"], frame["room"]["mentions"]
    return None


class Users:
    def __init__(self, server: CollabServer) -> None:
        self.server = server
        self.alice = server.create_user("Alice")
        self.bob = server.create_user("Bob")
        self.alice_token = server.api_token(self.alice)
        self.bob_token = server.api_token(self.bob)

    def http(self, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.server.http_url + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )


async def test_rooms_then_presence_posts_new_rooms_and_dms(server: CollabServer) -> None:
    users = Users(server)
    async with users.http(users.alice_token) as alice, users.http(users.bob_token) as bob:
        assert (await alice.post("/rooms", json={"id": "team", "title": "Team"})).status_code == 201
        body = {"user_id": users.bob, "role": "editor"}
        assert (await alice.post("/rooms/team/members", json=body)).status_code == 201
        with anyio.fail_after(30):
            async with connect(feed_url(server, users.alice_token)) as ws:
                stream = Stream(ws)
                first = await stream.next()
                assert first["type"] == "rooms" and first["dms"] == []
                [team] = first["rooms"]
                assert team["id"] == "team" and team["title"] == "Team"
                assert team["role"] == "owner" and team["here"] == []
                assert {"unread", "mentions", "kind"} <= set(team)

                # Presence: Bob opens the chat and a doc; then leaves.
                chat = await RawPeer.connect(server.ws_url("team", "chat", token=users.bob_token))
                await stream.next(lambda f: here(f, "team") == [("Bob", ["chat"])])
                notes = await RawPeer.connect(server.ws_url("team", "notes", token=users.bob_token))
                await stream.next(lambda f: here(f, "team") == [("Bob", ["chat", "notes"])])
                await notes.close()
                await chat.close()
                await stream.next(lambda f: here(f, "team") == [])

                # Bob's posts: Alice's unread count and mentions rise; her marker clears them.
                body = {"text": "hello", "client_id": "c1"}
                assert (await bob.post("/rooms/team/messages", json=body)).status_code == 201
                await stream.next(lambda f: counts(f, "team") == (1, 0))
                body = {"text": "@alice look", "client_id": "c2"}
                assert (await bob.post("/rooms/team/messages", json=body)).status_code == 201
                await stream.next(lambda f: counts(f, "team") == (2, 1))
                marked = await alice.post("/rooms/team/read", json={"up_to": 2})
                assert marked.status_code == 200
                await stream.next(lambda f: counts(f, "team") == (0, 0))

                # Bob adds Alice to a room of his, then opens a DM with her: listed at once.
                assert (
                    await bob.post("/rooms", json={"id": "bobs", "title": "Bob's"})
                ).status_code == 201
                body = {"user_id": users.alice, "role": "viewer"}
                assert (await bob.post("/rooms/bobs/members", json=body)).status_code == 201
                listed = await stream.next(lambda f: f["type"] == "rooms" and len(f["rooms"]) == 2)
                assert [(r["id"], r["role"]) for r in listed["rooms"]] == [
                    ("team", "owner"),
                    ("bobs", "viewer"),
                ]
                dm = (await bob.post("/dms", json={"user": "alice"})).json()
                listed = await stream.next(lambda f: f["type"] == "rooms" and f["dms"])
                assert [(d["id"], d["peer"]["name"]) for d in listed["dms"]] == [(dm["id"], "Bob")]
                # Removed from a room: gone from the list.
                assert (await bob.delete(f"/rooms/bobs/members/{users.alice}")).status_code == 204
                listed = await stream.next(lambda f: f["type"] == "rooms" and len(f["rooms"]) == 1)
                assert listed["rooms"][0]["id"] == "team"


async def close_code(url: str, **kw: Any) -> int | None:
    """Connect to the stream and return the code it is closed with (None: stayed open)."""
    async with connect(url, open_timeout=10, **kw) as ws:
        try:
            with anyio.fail_after(3):
                while True:
                    await ws.recv()
        except TimeoutError:
            return None
        except ConnectionClosed:
            pass
        return ws.close_code


async def test_refusals(server: CollabServer) -> None:
    users = Users(server)
    with anyio.fail_after(30):
        assert await close_code(feed_url(server)) == 4401  # anonymous
        assert await close_code(feed_url(server, "not-a-token")) == 4401
        room_token = server.mint_token("Carol", "some-room", "editor")
        assert await close_code(feed_url(server, room_token)) == 4403  # sees one room only
        # A session from a foreign site: refused before accept (HTTP 403).
        secret = server.session(users.alice)
        cookie = {"Cookie": f"collab_session={secret}"}
        with pytest.raises(InvalidStatus) as refused:
            await connect(feed_url(server), additional_headers={**cookie, "Origin": "http://evil"})
        assert refused.value.response.status_code == 403
        # The stream takes no messages: a frame closes it 1008.
        async with connect(feed_url(server, users.alice_token)) as ws:
            await ws.recv()
            await ws.send("hello")
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code == 1008


async def test_at_most_a_few_streams_per_user(server: CollabServer) -> None:
    users = Users(server)
    url = feed_url(server, users.alice_token)
    with anyio.fail_after(30):
        open_ones = [await connect(url) for _ in range(MAX_FEEDS_PER_USER)]
        for ws in open_ones:
            assert json.loads(await ws.recv())["type"] == "rooms"
        assert await close_code(url) == 1013
        # Another user is not affected; a closed stream frees its place.
        assert await close_code(feed_url(server, users.bob_token)) is None
        await open_ones.pop().close()
        await anyio.sleep(0.2)
        assert await close_code(url) is None
        for ws in open_ones:
            await ws.close()


async def test_a_revoked_session_closes_its_stream_4401(server: CollabServer) -> None:
    users = Users(server)
    secret = server.session(users.alice)
    own = f"http://127.0.0.1:{server.port}"
    headers = {"Cookie": f"collab_session={secret}", "Origin": own}
    with anyio.fail_after(20):
        async with connect(feed_url(server), additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "rooms"
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                response = await http.post("/logout", headers=headers)
                assert response.status_code in (200, 303)
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code == 4401
        assert await close_code(feed_url(server), additional_headers=headers) == 4401


async def test_a_handshake_flood_is_refused_before_accept(
    server_factory: Any,
) -> None:
    server = server_factory(handshake_rate=1, handshake_burst=3)
    token = server.api_token(server.create_user("Alice"))
    statuses = []
    with anyio.fail_after(30):
        for _ in range(10):
            try:
                ws = await connect(feed_url(server, token), open_timeout=10)
                await ws.close()
                statuses.append(101)
            except InvalidStatus as exc:
                statuses.append(exc.response.status_code)
    assert 429 in statuses and statuses[:3] == [101, 101, 101]
