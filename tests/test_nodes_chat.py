"""Chat, files, search and outgoing webhooks through several real `collab serve` nodes (issue 15,
"Done means" 8), each on both stores the nodes can share (``store``: one SQLite file, or a
fresh migrated PostgreSQL database) with the shared Redis under a prefix of the test's own:

- two nodes, 30 posts through each at once, then every client id retried through the other
  node: seqs 1..60 without a gap, each message once, every retry answered with the first
  post's message, and one live window: both nodes' ``chat`` docs show the same latest
  ``chat_live_messages`` messages and ``info``, the table's archive line is in the same place
  (the window moved once, for the room, not once per node), and a load from the store after
  both nodes let the doc go shows it again;
- a file uploaded through node A downloads through node B, the same bytes and hash (one
  ``files_dir`` for every node);
- a message posted on node A is found by a search on node C;
- three nodes, one loopback webhook endpoint: each post is delivered exactly once (its
  ``webhook-id`` never twice), and nothing more comes afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from pycrdt import Doc, Map
from standardwebhooks import Webhook

from collab.chat.schema import DEFAULTS
from collab.db import sqlite_path
from tests.support.nodestore import fanout_settings, store
from tests.support.pyclient import provider
from tests.support.receiver import Receiver
from tests.support.server import CollabServer, NodesFactory
from tests.support.waiting import wait_until

__all__ = ["store"]  # the fixture (tests.support.nodestore)

pytestmark = pytest.mark.anyio

ROOM = "team"
WINDOW = 8  # chat_live_messages: small, so 60 posts move the archive line
CHATTY = {"chat_write_rate": 1000, "chat_write_burst": 1000}  # 60 writes per node and user


@pytest.fixture
def shared() -> Iterator[dict[str, Any]]:
    """Settings for nodes on the shared Redis, under a prefix of this test's own."""
    yield from fanout_settings()


class Clients:
    """Per node, an /api/v1 client presenting the dev token (one dev user on every node)."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self._stack = stack
        self._made: dict[int, httpx.AsyncClient] = {}

    def __getitem__(self, server: CollabServer) -> httpx.AsyncClient:
        client = self._made.get(server.port)
        if client is None:
            client = httpx.AsyncClient(
                base_url=server.http_url + "/api/v1",
                headers={"authorization": f"Bearer {server.dev_token}"},
                timeout=30,
            )
            self._stack.push_async_callback(client.aclose)
            self._made[server.port] = client
        return client


@pytest.fixture
async def api() -> AsyncIterator[Clients]:
    async with AsyncExitStack() as stack:
        yield Clients(stack)


def query(server: CollabServer, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """``sql`` (``?`` placeholders) on whichever store the nodes share."""
    if server.store.startswith("postgresql://"):
        with psycopg.connect(server.store, connect_timeout=5) as pg:
            return pg.execute(sql.replace("?", "%s"), params).fetchall()
    path = sqlite_path(server.store)
    assert path is not None
    conn = sqlite3.connect(path, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def make_room(http: httpx.AsyncClient) -> None:
    r = await http.post("/rooms", json={"id": ROOM, "title": ROOM})
    assert r.status_code == 201, r.text


async def post(http: httpx.AsyncClient, text: str, client_id: str) -> httpx.Response:
    return await http.post(f"/rooms/{ROOM}/messages", json={"text": text, "client_id": client_id})


async def history(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every message, live and archived, oldest first, paged back from the newest."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 25}
    for _ in range(100):
        page = (await http.get(f"/rooms/{ROOM}/messages", params=params)).json()
        found = page["items"] + found
        if not page["next_cursor"]:
            return found
        params = {"limit": 25, "cursor": page["next_cursor"]}
    raise AssertionError("more pages than messages")


def as_in_doc(item: dict[str, Any]) -> dict[str, Any]:
    """An API message as the chat doc holds it (the doc has no ``room`` or ``client_id``)."""
    return {k: v for k, v in item.items() if k not in ("room", "client_id")}


def shown(doc: Doc[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(messages, info) of a chat doc, as plain values (a key left out is at its default)."""
    held: dict[str, Any] = doc.get("messages", type=Map).to_py() or {}
    messages = {message_id: {**DEFAULTS, **m} for message_id, m in held.items()}
    info: dict[str, Any] = doc.get("info", type=Map).to_py() or {}
    return messages, info


async def nothing_loaded(server: CollabServer) -> bool:
    async with httpx.AsyncClient() as client:
        text = (await client.get(server.http_url + "/metrics")).text
    return "collab_docs_loaded 0.0" in text


def archived_seqs(server: CollabServer) -> list[int]:
    rows = query(server, "SELECT seq FROM messages WHERE room_id=? AND archived", (ROOM,))
    return sorted(int(seq) for (seq,) in rows)


async def test_chat_through_two_nodes_is_gapless_once_and_one_window(
    store: dict[str, Any], nodes: NodesFactory, shared: dict[str, Any], api: Clients
) -> None:
    a, b = nodes(2, **shared, **store, **CHATTY, chat_live_messages=WINDOW, room_idle_seconds=1)
    await make_room(api[a])
    first: dict[str, dict[str, Any]] = {}  # client id -> the message its first post made

    async def posts(server: CollabServer, client_ids: list[str], retry: bool) -> None:
        for client_id in client_ids:
            r = await post(api[server], f"said {client_id}", client_id)
            assert r.status_code == (200 if retry else 201), r.text
            if retry:  # the first post's message, whichever node answered it
                made = first[client_id]
                assert (r.json()["id"], r.json()["seq"]) == (made["id"], made["seq"])
            else:
                first[client_id] = r.json()

    ids = {name: [f"{name}{n}" for n in range(30)] for name in "ab"}
    first_via, retry_via = {"a": a, "b": b}, {"a": b, "b": a}
    async with AsyncExitStack() as stack:
        # A reader of the chat doc on each node: it keeps the doc (and its window) loaded there.
        docs = [
            (await stack.enter_async_context(provider(s.ws_url(ROOM, "chat"))))[0] for s in (a, b)
        ]
        with anyio.fail_after(120):
            for retry in (False, True):  # then each client id again, through the other node
                async with anyio.create_task_group() as tg:
                    for name, mine in ids.items():
                        via = (retry_via if retry else first_via)[name]
                        for lane in range(3):  # three posts in flight through each node
                            tg.start_soon(posts, via, mine[lane::3], retry)
        messages = await history(api[b])
        assert [m["seq"] for m in messages] == list(range(1, 61))  # gapless, each once
        assert len({m["id"] for m in messages}) == 60
        assert sorted(m["client_id"] for m in messages) == sorted(first)
        assert {m["id"] for m in messages} == {m["id"] for m in first.values()}
        latest = {m["id"]: as_in_doc(m) for m in messages[-WINDOW:]}
        info = {"last_seq": 60, "archived_through": 60 - WINDOW}

        def both_show_the_window() -> bool:
            return all(shown(doc) == (latest, info) for doc in docs)

        def what() -> object:
            return [(sorted(m["seq"] for m in s.values()), i) for s, i in map(shown, docs)]

        await wait_until(both_show_the_window, 15, what=what)
    assert archived_seqs(a) == list(range(1, 61 - WINDOW))
    # Both nodes let the doc go (idle for room_idle_seconds); a load from the store and the
    # table shows the same window and leaves the table's line where it was.
    for server in (a, b):
        await wait_until(functools.partial(nothing_loaded, server), 15, interval=0.2)
    async with provider(a.ws_url(ROOM, "chat")) as (fresh, _):
        await wait_until(lambda: shown(fresh) == (latest, info), 10, what=lambda: shown(fresh))
    assert archived_seqs(a) == list(range(1, 61 - WINDOW))


async def test_a_file_uploaded_through_one_node_downloads_through_another(
    store: dict[str, Any], nodes: NodesFactory, shared: dict[str, Any], api: Clients, tmp_path: Path
) -> None:
    a, b = nodes(2, **shared, **store, files_dir=tmp_path / "files")
    await make_room(api[a])
    data = os.urandom(300_000)
    upload = {"file": ("report.bin", data, "application/octet-stream")}
    r = await api[a].post(f"/rooms/{ROOM}/files", files=upload)
    assert r.status_code == 201, r.text
    found = r.json()
    digest = hashlib.sha256(data).hexdigest()
    assert found["sha256"] == digest
    got = await api[b].get(f"/rooms/{ROOM}/files/{found['id']}")
    assert got.status_code == 200, got.text
    assert got.content == data and hashlib.sha256(got.content).hexdigest() == digest
    assert got.headers["etag"] == f'"{digest}"'
    listed = (await api[b].get(f"/rooms/{ROOM}/files")).json()["items"]
    assert [f["id"] for f in listed] == [found["id"]]


async def test_a_search_on_one_node_finds_a_message_posted_on_another(
    store: dict[str, Any], nodes: NodesFactory, shared: dict[str, Any], api: Clients
) -> None:
    a, _, c = nodes(3, **shared, **store, search_index_delay=0.05, search_burst=10_000)
    await make_room(api[a])
    word = f"quokka{secrets.token_hex(4)}"
    r = await post(api[a], f"the {word} report ships on Friday", "s1")
    assert r.status_code == 201, r.text

    async def found_on_c() -> bool:
        got = await api[c].get("/search", params={"q": word})
        assert got.status_code == 200, got.text
        return [item["message"] for item in got.json()["items"]] == [r.json()["id"]]

    await wait_until(found_on_c, 10, interval=0.1, what="the post, on C")


async def test_three_nodes_deliver_each_webhook_exactly_once(
    store: dict[str, Any], nodes: NodesFactory, shared: dict[str, Any], api: Clients
) -> None:
    loopback = {"webhook_allow_http": "true", "webhook_allow_networks": "127.0.0.1"}
    servers = nodes(3, **shared, **store, **loopback)
    await make_room(api[servers[0]])
    async with Receiver() as receiver:
        r = await api[servers[0]].post(
            f"/rooms/{ROOM}/webhooks", json={"url": receiver.url(), "events": ["message.posted"]}
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        for server in servers:  # the nodes' logs are checked for it
            server.remember(secret)
        posted = []
        for i, server in enumerate(servers):  # one post through each node
            answer = await post(api[server], f"hook {i}", f"h{i}")
            assert answer.status_code == 201, answer.text
            posted.append(answer.json()["id"])
        await receiver.wait_for(3, within=20)  # each node's worker looks at least every 5 s
        await anyio.sleep(6)  # the scenario: past every worker's next look, nothing more comes
        got = list(receiver.received)
    ids = [g.headers["webhook-id"] for g in got]
    assert len(got) == 3 and len(set(ids)) == 3, ids
    verify = Webhook(secret)
    payloads = [verify.verify(g.body, g.headers) for g in got]
    assert all(p["type"] == "message.posted" for p in payloads)
    assert sorted(p["data"]["message"]["id"] for p in payloads) == sorted(posted)
