"""PostgreSQL only: several nodes (one ``PostgresMetaStore`` each, each with its own pool) on one
database, racing where the contract depends on one writer at a time on SQLite: gapless chat seqs
and one row per client id, "at least one owner", one DM per pair, one user per login, the
room's file quota, webhook deliveries claimed once. Also: refusing pending migrations and use
after close, no plain secret in the database, the same tables and columns as SQLite's, and two
real `collab serve` nodes sharing users, rooms and chat."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import anyio
import psycopg
import pytest

from collab.db import StoreError, migrate_with_backup
from collab.errors import LimitReached
from collab.meta import DocMeta, Endpoint, FileRecord, Message, NewMessage, Role, digest
from collab.meta.postgres import PostgresMetaStore
from collab.meta.postgres.base import PostgresBackend
from tests.api.conftest import Api
from tests.meta.support import owners_demote_each_other
from tests.support.postgres import sessions_waiting
from tests.support.server import ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[list[PostgresMetaStore]]:
    """Three nodes' meta stores on one database."""
    stores = [PostgresMetaStore(pg_url, max_connections=4) for _ in range(3)]
    for store in stores:
        await store.open()
    yield stores
    for store in stores:
        await store.close()


def chat(author: str, n: int, via: str) -> NewMessage:
    """The post of ``author``'s n-th client id as it reaches node ``via`` (each request gets
    its own message id; the client id is what makes a retry the same post)."""
    return NewMessage(
        room_id="r",
        id=f"{author}-{n}-{via}",
        author=author,
        author_name=author,
        author_handle=author,
        client_id=f"c{n}",
        text=f"{author} {n}",
        created_at=float(n),
    )


async def test_two_nodes_posting_into_one_room_get_gapless_seqs_and_one_row_per_client_id(
    nodes: list[PostgresMetaStore],
) -> None:
    """Two authors post 30 messages each into one room, every post sent through both nodes at
    once (a client retrying through the other node): seqs 1..60 without a gap, one row per
    client id, both answers the same message and exactly one of them "created"."""
    a, b = nodes[0], nodes[1]
    mismatched: list[str] = []

    async def post_through_both(author: str, n: int) -> None:
        answers: list[tuple[Message, bool]] = []

        async def through(node: PostgresMetaStore, via: str) -> None:
            answers.append(await node.post_message(chat(author, n, via)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(through, a, "a")
            tg.start_soon(through, b, "b")
        (first, made_first), (second, made_second) = answers
        if first != second or sorted([made_first, made_second]) != [False, True]:
            mismatched.append(f"{author} {n}: {answers}")

    async def author(name: str) -> None:
        for n in range(30):
            await post_through_both(name, n)

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(author, "ann")
            tg.start_soon(author, "bob")
    assert not mismatched
    stored = await a.list_messages("r", limit=100)
    assert [m.seq for m in stored] == list(range(1, 61))
    assert sorted((m.author, m.client_id) for m in stored) == sorted(
        (name, f"c{n}") for name in ("ann", "bob") for n in range(30)
    )
    assert await b.last_seq("r") == 60


async def test_a_busy_room_queues_its_writers_instead_of_retrying_them(
    nodes: list[PostgresMetaStore],
) -> None:
    """Eight writers (four per node) post 25 messages each into one room: 200 gapless seqs,
    and no transaction ran twice (they queue on the room's lock; retrying each other, the
    losers of such a crowd can lose 30 times running)."""
    a, b = nodes[0], nodes[1]

    async def writer(node: PostgresMetaStore, name: str) -> None:
        for n in range(25):
            await node.post_message(chat(name, n, "x"))

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for w in range(8):
                tg.start_soon(writer, (a, b)[w % 2], f"w{w}")
    assert [m.seq for m in await b.list_messages("r", limit=300)] == list(range(1, 201))
    assert isinstance(a.backend, PostgresBackend) and isinstance(b.backend, PostgresBackend)
    assert a.backend.retries == 0 == b.backend.retries


async def test_replies_through_two_nodes_count_every_reply(
    nodes: list[PostgresMetaStore],
) -> None:
    """The parent's reply count is read and written in the posting transaction: 20 replies
    through two nodes at once count 20."""
    a, b = nodes[0], nodes[1]
    parent, _ = await a.post_message(chat("ann", 0, "a"))

    async def reply(node: PostgresMetaStore, n: int) -> None:
        await node.post_message(replace(chat("bob", n, "x"), thread=parent.id))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n in range(1, 21):
                tg.start_soon(reply, (a, b)[n % 2], n)
    counted = await b.get_message("r", parent.id)
    assert counted is not None and counted.reply_count == 20
    assert [m.seq for m in await a.list_messages("r", limit=50)] == list(range(1, 22))


async def test_two_owners_demoting_each_other_through_two_nodes_leave_one_owner(
    nodes: list[PostgresMetaStore],
) -> None:
    """In each of 20 rooms, owner a is demoted through node A while owner b is demoted through
    node B at the same moment: exactly one succeeds, one owner is left."""
    a, b = nodes[0], nodes[1]
    outcomes = await owners_demote_each_other(a, b, 20)
    assert outcomes.count("ok") == 20 and outcomes.count("conflict") == 20
    # The races were real: transactions lost and ran again (else this test proves nothing).
    assert isinstance(a.backend, PostgresBackend) and isinstance(b.backend, PostgresBackend)
    assert a.backend.retries + b.backend.retries > 0


async def test_one_dm_and_one_user_whichever_node_is_first(
    nodes: list[PostgresMetaStore],
) -> None:
    """Three nodes open one pair's DM (with three different room ids) and log one new person
    in at once: one room, one user, one handle, and every node answers with them."""
    dms: list[str] = []
    users: list[str] = []

    async def open_dm(node: PostgresMetaStore, n: int) -> None:
        room, _ = await node.open_dm("ann", "bob", f"dm-{n}")
        dms.append(room.id)

    async def login(node: PostgresMetaStore) -> None:
        user = await node.upsert_oidc_user(
            "https://idp", "carol", name="Carol", email=None, email_verified=False, picture=None
        )
        users.append(user.id)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n, node in enumerate(nodes):
                tg.start_soon(open_dm, node, n)
                tg.start_soon(login, node)
    assert len(dms) == 3 and len(set(dms)) == 1
    assert len(users) == 3 and len(set(users)) == 1
    assert [u.handle for u in await nodes[0].list_users()] == ["carol"]
    assert len(await nodes[1].list_dms_for("ann")) == 1


async def test_the_room_quota_holds_across_nodes(nodes: list[PostgresMetaStore]) -> None:
    """Ten 100-byte uploads into a 500-byte room through three nodes at once: five pass."""
    await nodes[0].create_room("r", "R", "u1")  # a file is recorded only in a room that exists
    passed: list[str] = []

    async def upload(node: PostgresMetaStore, n: int) -> None:
        record = FileRecord(f"f{n}", "r", f"{n:064x}", 100, "text/plain", "a.txt", "u1", 1.0)
        try:
            await node.add_file(record, room_quota=500)
            passed.append(record.id)
        except LimitReached:
            pass

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(upload, nodes[n % 3], n)
    assert len(passed) == 5
    assert await nodes[0].room_file_bytes("r") == 500


async def test_a_title_update_waiting_on_a_delete_in_flight_does_not_bring_the_doc_back(
    nodes: list[PostgresMetaStore], pg_url: str
) -> None:
    """A doc's metadata deleted (through another node, not under the room's new-docs lock)
    after a title update read the row: the update waits for the delete's row lock, then must
    find the row gone and leave it so (ordered before the delete). An upsert put the deleted
    doc's row back, with its old creator and kind, past the delete."""
    node = nodes[0]
    await node.put_doc_meta("r", "a", title="A", kind="rich", by="u1")
    renamed: list[tuple[DocMeta, bool]] = []

    async def rename() -> None:
        renamed.append(await node.put_doc_meta("r", "a", title="B", kind=None, by="u2"))

    async with await psycopg.AsyncConnection.connect(pg_url) as other:
        await other.execute("DELETE FROM doc_meta WHERE room_id = 'r' AND name = 'a'")
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(rename)
                await wait_until(sessions_waiting(pg_url, 1), what="the update waiting")
                await other.commit()
    ((meta, created),) = renamed
    assert meta.title == "B" and not created
    assert await node.get_doc_meta("r", "a") is None
    assert await nodes[1].list_doc_meta("r") == []


async def test_three_nodes_claim_each_delivery_once(nodes: list[PostgresMetaStore]) -> None:
    """30 endpoints with one delivery each, three nodes claiming two at a time until none is
    left: every delivery claimed by exactly one node."""
    for i in range(30):
        await nodes[0].create_webhook(
            Endpoint(f"e{i}", "r", f"https://e{i}.example/", ("*",), "whsec_x", "o", float(i))
        )
    now = time.time()
    made = await nodes[1].enqueue_webhook_event(
        "r", "message.posted", "{}", now, [f"msg_{i}" for i in range(30)]
    )
    assert len(made) == 30
    claims: list[list[str]] = [[], [], []]

    async def claim(n: int) -> None:
        for _ in range(30):
            found = await nodes[n].claim_webhook_deliveries(now, f"node{n}", 60, 2)
            claims[n] += [d.id for d, _ in found]

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(claim, n)
    every = claims[0] + claims[1] + claims[2]
    assert sorted(every) == sorted(d.id for d in made)  # each once, none left out
    assert await nodes[2].claim_webhook_deliveries(now, "late", 60, 10) == []


async def test_refuses_pending_migrations_and_use_after_close(
    pg_empty_url: str, pg_url: str
) -> None:
    with pytest.raises(StoreError, match="pending migrations"):
        await PostgresMetaStore(pg_empty_url).open()
    meta = PostgresMetaStore(pg_url)
    await meta.open()
    await meta.create_room("r", "R", "u1")
    await meta.close()
    await meta.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await meta.get_room("r")
    with pytest.raises(StoreError, match="closed"):
        await meta.create_room("r2", "R", "u1")
    again = PostgresMetaStore(pg_url)
    await again.open()
    try:
        room = await again.get_room("r")
        assert room is not None and room.created_by == "u1"
    finally:
        await again.close()


async def test_the_database_holds_digests_not_secrets(pg_url: str) -> None:
    meta = PostgresMetaStore(pg_url)
    await meta.open()
    try:
        await meta.create_room("r", "R", "u1")
        _, session = await meta.create_session("u1", ttl=60)
        _, token = await meta.create_api_token("u1", "t")
        _, invite = await meta.create_invite("r", Role.viewer, "u1", ttl=60)
        ticket = await meta.create_ticket("u1", "r", None, None, ttl=60)
    finally:
        await meta.close()
    tables = ("sessions", "api_tokens", "invites", "tickets")
    with psycopg.connect(pg_url) as conn:
        dumped = "\n".join(
            str(row) for table in tables for row in conn.execute(f"SELECT * FROM {table}")
        )
    for secret in (session, token, invite, ticket):
        assert secret not in dumped, "a plain secret is in the database"
        assert digest(secret) in dumped, "the check reads the right rows"


def test_both_schemas_have_the_same_tables_and_columns(pg_url: str, tmp_path: Path) -> None:
    """One set of queries runs on both databases, so a migration added to one dialect only
    (a column SQLite has and PostgreSQL lacks) fails here, not in production."""
    migrate_with_backup(tmp_path / "c.db")
    with sqlite3.connect(tmp_path / "c.db") as conn:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not name.startswith("sqlite_")
        ]
        sqlite_columns = {
            table: {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for table in tables
        }
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        ).fetchall()
    postgres_columns: dict[str, set[str]] = {}
    for table, column in rows:
        if not table.startswith("search_"):  # SQLite's index is a file of its own: tests/search
            postgres_columns.setdefault(table, set()).add(column)
    assert postgres_columns == sqlite_columns


def test_two_serve_nodes_share_users_rooms_and_chat(
    pg_url: str, server_factory: ServerFactory
) -> None:
    """Two real `collab serve` processes on one PostgreSQL database: a room made through one
    is the other's, a post retried through the other node is the same message, and a user
    and token made on the side work on both."""
    shared = {"store": pg_url, "secret_key": "k" * 43, "dev_token": "pgmeta-dev-token-0123"}
    a, b = server_factory(**shared), server_factory(**shared)
    on_a, on_b = Api(a), Api(b)
    try:
        alice = on_a.user("alice")
        room = on_a.room("r", owner=on_a.dev, **{alice.user_id: "editor"})
        assert on_b.dev.http.get(f"/rooms/{room}").status_code == 200
        via_b = on_b.bearer(alice.token)
        first = alice.http.post(f"/rooms/{room}/messages", json={"text": "hi", "client_id": "c1"})
        again = via_b.post(f"/rooms/{room}/messages", json={"text": "hi", "client_id": "c1"})
        assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
        assert again.json()["id"] == first.json()["id"] and again.json()["seq"] == 1
        second = via_b.post(f"/rooms/{room}/messages", json={"text": "yo", "client_id": "c2"})
        assert second.status_code == 201 and second.json()["seq"] == 2
        listed = alice.http.get(f"/rooms/{room}/messages").json()["items"]
        assert [m["text"] for m in listed] == ["hi", "yo"]
    finally:
        on_a.close()
        on_b.close()
