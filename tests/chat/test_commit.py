"""How a chat write commits (``collab.chat.service``, ``collab.db``): the row and the ``chat``
doc's update that shows it in one transaction, rows of concurrent writes shown in their order,
idempotent posts under concurrency, and a failed transaction taking back what it showed.

In process, on a real SQLite file: ``Database.commits`` counts transactions, and the doc is
compared with the table."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import anyio
import pytest
from pycrdt import Map

from collab.chat import Actor, chat_key
from collab.chat.schema import doc_fields
from collab.db import Database, StoreError
from collab.errors import CollabError
from collab.meta import Endpoint, Message, Role
from collab.services import Services

pytestmark = pytest.mark.anyio

ROOM = "r"


def actor(n: int = 1) -> Actor:
    return Actor(f"u{n}", f"User {n}", None, Role.commenter)


def database(services: Services) -> Database:
    db = services.meta.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    return db


async def table(services: Services) -> list[Message]:
    return await services.meta.list_messages(ROOM, limit=10_000)


async def shown(services: Services) -> dict[str, Any]:
    """The loaded chat doc's messages, as plain values."""
    live = await services.registry.acquire(chat_key(ROOM))
    try:
        await live.flush()
        found: dict[str, Any] = live.doc.get("messages", type=Map).to_py() or {}
        return found
    finally:
        services.registry.release(live)


async def same_as_table(services: Services) -> None:
    rows = await table(services)
    assert [m.seq for m in rows] == list(range(1, len(rows) + 1))  # gapless
    doc = await shown(services)
    assert set(doc) == {m.id for m in rows}
    for message in rows:
        assert doc[message.id] == doc_fields(message), message.id  # (1 == 1.0: numbers compare)


def endpoint() -> Endpoint:
    """An outgoing webhook of the room for every event (never called: the worker is stopped)."""
    return Endpoint("e", ROOM, "https://127.0.0.1/hook", ("*",), "whsec_x", "u1", 1.0)


async def delivered_texts(services: Services) -> list[str]:
    """The text of each message.posted the endpoint has in the outbox, oldest first."""
    found = await services.meta.list_webhook_deliveries("e", 100)
    posted = sorted((d for d in found if d.event == "message.posted"), key=lambda d: d.created_at)
    return [json.loads(d.payload)["data"]["message"]["text"] for d in posted]


async def test_a_post_is_one_commit_for_its_row_and_the_docs_update(services: Services) -> None:
    await services.webhooks.stop()  # the webhooks' worker polls the outbox (a write) every 5 s
    db = database(services)
    await services.chat.post(ROOM, actor(), "first: loads and creates the chat doc", "c0")
    for n in range(1, 6):
        before, trips = db.commits, db.trips
        message, created = await services.chat.post(ROOM, actor(), f"hello {n}", f"c{n}")
        assert created and message.seq == n + 1
        assert db.commits - before == 1
        # ... and one trip to the writer's thread: the row and the doc's update in one round
        # of hand-overs (the loop shows the row mid-trip), not a trip for each.
        assert db.trips - trips == 1
    stored = await services.store.load(chat_key(ROOM))
    assert stored.updates  # the doc's updates are in the store, not only in memory
    await same_as_table(services)


async def test_a_post_and_its_webhook_deliveries_are_one_commit(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transactional outbox: the row, the doc's update and the deliveries in one commit,
    all there when the post returns, and the worker woken for them."""
    await services.webhooks.stop()
    await services.meta.create_webhook(endpoint())
    woken: list[None] = []
    monkeypatch.setattr(services.webhooks.dispatcher, "wake", lambda: woken.append(None))
    db = database(services)
    await services.chat.post(ROOM, actor(), "first: loads and creates the chat doc", "c0")
    for n in range(1, 4):
        before, told = db.commits, len(woken)
        _, created = await services.chat.post(ROOM, actor(), f"hello {n}", f"c{n}")
        assert created and db.commits - before == 1
        assert len(woken) == told + 1
        texts = await delivered_texts(services)
        assert texts[-1] == f"hello {n}" and len(texts) == n + 1
    await same_as_table(services)


async def test_concurrent_posts_in_one_room_share_commits_in_seq_order(
    services: Services,
) -> None:
    db = database(services)
    await services.chat.post(ROOM, actor(), "warm up", "c0")
    before = db.commits
    with anyio.fail_after(30):
        results = await asyncio.gather(
            *(services.chat.post(ROOM, actor(n % 7), f"post {n}", f"c{n}") for n in range(1, 61))
        )
    assert sorted(m.seq for m, _ in results) == list(range(2, 62))
    # 60 posts and their doc updates: a few transactions.
    assert db.commits - before <= 10
    await same_as_table(services)


async def test_concurrent_writes_to_one_message_leave_the_doc_equal_to_the_row(
    services: Services,
) -> None:
    message, _ = await services.chat.post(ROOM, actor(0), "react to me", "c0")
    chat = services.chat
    writes = [chat.react(ROOM, actor(n), message.id, "👍", True) for n in range(1, 25)]
    writes += [chat.react(ROOM, actor(n), message.id, "👍", False) for n in range(1, 25, 3)]
    writes += [chat.edit(ROOM, actor(0), message.id, f"edit {n}") for n in range(10)]
    with anyio.fail_after(30):
        await asyncio.gather(*writes)
    await same_as_table(services)


async def test_the_same_client_id_posted_concurrently_is_one_message(
    services: Services,
) -> None:
    with anyio.fail_after(30):
        results = await asyncio.gather(
            *(services.chat.post(ROOM, actor(1), f"try {n}", "same") for n in range(20)),
            services.chat.post(ROOM, actor(2), "another author", "same"),
        )
    ones = {m.id for m, _ in results[:20]}
    assert len(ones) == 1 and sum(created for _, created in results[:20]) == 1
    assert results[20][0].id not in ones and results[20][1]
    assert len(await table(services)) == 2
    await same_as_table(services)


async def test_a_transaction_that_fails_after_showing_a_post_takes_the_doc_down(
    services: Services,
) -> None:
    await services.webhooks.stop()  # its deliveries stay in the outbox, to be counted
    await services.meta.create_webhook(endpoint())
    await services.chat.post(ROOM, actor(), "before", "c0")
    db = database(services)
    live = await services.registry.acquire(chat_key(ROOM))

    def ends_the_transaction(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # as a disk error does
        raise sqlite3.OperationalError("disk I/O error")

    async def sabotage() -> None:
        # Once the post is shown in the doc (inside its transaction), fail that transaction.
        while len(live.doc.get("messages", type=Map)) < 2:
            await asyncio.sleep(0)
        with pytest.raises(StoreError):
            await db.write(ends_the_transaction)

    try:
        with anyio.fail_after(30):
            outcome = await asyncio.gather(
                services.chat.post(ROOM, actor(), "never stored", "c1"),
                sabotage(),
                return_exceptions=True,
            )
        assert isinstance(outcome[0], StoreError | CollabError), outcome
        assert outcome[1] is None, outcome
        assert live.failed is not None  # given up: its peers reconnect to a fresh load
    finally:
        services.registry.release(live)
    assert [m.text for m in await table(services)] == ["before"]
    await same_as_table(services)  # a fresh load: the doc equals the table again
    message, created = await services.chat.post(ROOM, actor(), "after", "c2")
    assert created and message.seq == 2
    # The failed post's delivery went with its row: only the stored posts were enqueued.
    assert await delivered_texts(services) == ["before", "after"]
