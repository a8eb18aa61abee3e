"""PostgreSQL only: a node that stops in the middle of a transaction (paused, partitioned from
the database: its connection stays open, its session idle in its transaction) does not hold
what it locked for ever. Its room's chat lock (or a doc's row) would otherwise stop every
other node's writes of that room, each holding a pooled connection while it waits, until the
server's TCP keepalive notices the dead peer, hours later by default. collab's connections end
a transaction left idle past ``IDLE_IN_TRANSACTION_TIMEOUT`` (the server rolls it back: nothing
of it was acknowledged), unless the URL, the role or the database sets a timeout of its own."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
import pytest

from collab.db import StoreError
from collab.db.postgres import IDLE_IN_TRANSACTION_TIMEOUT
from collab.meta import Message, NewMessage
from collab.meta.postgres import PostgresMetaStore

pytestmark = pytest.mark.anyio


@pytest.fixture
async def two_nodes(pg_url: str) -> AsyncIterator[tuple[PostgresMetaStore, PostgresMetaStore]]:
    a, b = PostgresMetaStore(pg_url, max_connections=2), PostgresMetaStore(pg_url)
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


async def test_a_node_frozen_in_a_transaction_does_not_stop_the_rooms_chat(
    two_nodes: tuple[PostgresMetaStore, PostgresMetaStore],
) -> None:
    frozen, other = two_nodes
    holding, resume = threading.Event(), threading.Event()
    ended: list[BaseException] = []

    def freeze() -> None:
        """A write of room r's chat on the frozen node: the lock taken, then nothing."""
        try:
            with frozen.db.transaction("READ COMMITTED") as conn:
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('chat:r', 0))")
                holding.set()
                resume.wait(120)  # the node is paused here
        except StoreError as exc:
            ended.append(exc)

    posted: list[tuple[Message, bool]] = []
    done = anyio.Event()

    async def post() -> None:
        posted.append(await other.post_message(NewMessage("r", "m1", "u", "U", "u", "c1", "hi", 1)))
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, freeze)
        assert await anyio.to_thread.run_sync(holding.wait, 10)
        tg.start_soon(post)
        with anyio.move_on_after(IDLE_IN_TRANSACTION_TIMEOUT + 20):
            await done.wait()
        in_time = done.is_set()
        resume.set()  # the paused node goes on (its lock freed, on the old code too)
    assert in_time, "the other node's post waited for the frozen node's lock"
    ((message, created),) = posted
    assert created and message.seq == 1
    assert ended, "the frozen node's transaction was ended: its commit fails, nothing acknowledged"
    assert await other.get_message("r", "m1") is not None


def _timeout_of(store: PostgresMetaStore) -> str:
    with store.db.transaction() as conn:
        row = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
    assert row is not None
    return str(row[0])


async def test_a_timeout_the_url_sets_is_kept(pg_url: str) -> None:
    plain = PostgresMetaStore(pg_url, max_connections=1)
    own = PostgresMetaStore(
        pg_url + "?options=-c%20idle_in_transaction_session_timeout%3D90s", max_connections=1
    )
    for store in (plain, own):
        await store.open()
    try:
        assert await anyio.to_thread.run_sync(_timeout_of, plain) == "10s"
        assert await anyio.to_thread.run_sync(_timeout_of, own) == "90s"
    finally:
        for store in (plain, own):
            await store.close()
