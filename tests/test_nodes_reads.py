"""Private read markers across real `collab serve` nodes on one PostgreSQL store and Redis.

Bob has read the room's message; alice's client holds the room's ``chat`` doc open on node B
only, and sees bob's marker in its ``reads`` ("seen by"). Bob makes his markers private
through node A (``PATCH /me``), which has no chat doc of the room loaded: alice's view on B
must lose bob's marker within a liveness bound, and get it back when bob turns it public
again. Through Redis, A's ``reads`` notice brings it (the periodic recheck set far off, so it
cannot); with Redis dead, B's periodic recheck (``role_recheck_interval``) does.

Found in review: the switch only changed the chat docs loaded on the node that answered it,
so B's copy kept showing the now private marker to everyone there until it was next loaded.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Doc, Map

from collab.meta import MetaStore, Role
from tests.support.nodestore import postgres_cluster
from tests.support.postgres import fresh_database
from tests.support.pyclient import provider
from tests.support.redisserver import PrivateRedis
from tests.support.server import CollabServer, NodesFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM = "team"
NEVER = 3600.0  # a recheck interval no test lasts: only a notice can bring the change


@pytest.fixture
def notices_only() -> Iterator[dict[str, Any]]:
    yield from postgres_cluster(role_recheck_interval=NEVER)


def api(server: CollabServer, token: str) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"}
    return httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=headers, timeout=30)


def reads_of(doc: Doc[Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc.get("reads", type=Map).to_py() or {}
    return found


async def nothing_loaded(server: CollabServer) -> bool:
    async with httpx.AsyncClient() as client:
        text = (await client.get(server.http_url + "/metrics")).text
    return "collab_docs_loaded 0.0" in text


@asynccontextmanager
async def alice_watching_bob(
    a: CollabServer, b: CollabServer
) -> AsyncIterator[tuple[Doc[Any], str, str]]:
    """The room, made through B, where bob has read the one message; alice's client holding
    its chat doc on B, showing bob's marker, while A has no doc loaded. Yields (alice's doc,
    bob's id, bob's API token)."""
    async with api(b, b.dev_token) as owner:
        assert (await owner.post("/rooms", json={"id": ROOM, "title": ROOM})).status_code == 201
        posted = await owner.post(f"/rooms/{ROOM}/messages", json={"text": "hi", "client_id": "1"})
        assert posted.status_code == 201, posted.text
    tokens = {}
    for name in ("alice", "bob"):
        user = b.create_user(name)

        async def add(meta: MetaStore, user: str = user) -> None:
            await meta.add_member(ROOM, user, Role.editor)

        b.with_meta(add)
        tokens[name] = (user, b.api_token(user))
    bob, bob_token = tokens["bob"]
    async with provider(b.ws_url(ROOM, "chat", token=tokens["alice"][1])) as (doc, _):
        async with api(b, bob_token) as bob_on_b:
            marked = await bob_on_b.post(f"/rooms/{ROOM}/read", json={"up_to": 1})
            assert marked.status_code == 200, marked.text
        await wait_until(lambda: reads_of(doc) == {bob: 1}, 10, what=lambda: reads_of(doc))
        assert await nothing_loaded(a)  # the scenario: the chat doc is loaded on B only
        yield doc, bob, bob_token


async def switch(server: CollabServer, token: str, private: bool) -> None:
    async with api(server, token) as http:
        answer = await http.patch("/me", json={"private_read_markers": private})
        assert answer.status_code == 200, answer.text
        assert answer.json()["private_read_markers"] is private


async def test_a_switch_through_node_a_reaches_the_chat_doc_loaded_on_node_b(
    notices_only: dict[str, Any], nodes: NodesFactory
) -> None:
    a, b = nodes(2, **notices_only)
    async with alice_watching_bob(a, b) as (doc, bob, bob_token):
        await switch(a, bob_token, private=True)
        await wait_until(lambda: bob not in reads_of(doc), 5, what=lambda: reads_of(doc))
        await switch(a, bob_token, private=False)
        await wait_until(lambda: reads_of(doc) == {bob: 1}, 5, what=lambda: reads_of(doc))


async def test_with_redis_dead_the_recheck_brings_a_switch(
    nodes: NodesFactory, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    interval = 1.0
    try:
        with fresh_database() as url:
            a, b = nodes(
                2,
                store=url,
                secret_key=secrets.token_urlsafe(32),
                fanout=redis.url,
                role_recheck_interval=interval,
            )
            try:
                async with alice_watching_bob(a, b) as (doc, bob, bob_token):
                    redis.kill()  # no notice can cross now
                    await switch(a, bob_token, private=True)
                    with anyio.fail_after(interval + 2):  # a round, with room for a slow node
                        await wait_until(lambda: bob not in reads_of(doc), 60)
                    await switch(a, bob_token, private=False)
                    with anyio.fail_after(interval + 2):
                        await wait_until(lambda: reads_of(doc) == {bob: 1}, 60)
            finally:
                for node in (a, b):  # before the database is dropped
                    node.stop()
    finally:
        redis.stop()
