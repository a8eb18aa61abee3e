"""What the PostgreSQL index adds to the contract (tests/search/test_index.py): several nodes
writing one index at once, the clean flag with several writers, a deadline that cancels a
statement the server is running, and two real `collab serve` nodes sharing the index."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import anyio
import psycopg
import pytest

from collab.search import Entry, Scope, parse_query
from collab.search.index import DELETED, QueryTooSlow
from collab.search.pgsql import run_search
from collab.search.postgres import PostgresIndex
from collab.search.sqlite import SCHEMA
from tests.api.conftest import Api
from tests.api.test_search import plain, write_doc
from tests.support.server import ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0


def test_the_entries_have_the_columns_of_sqlites_index(pg_url: str, tmp_path: Path) -> None:
    """The two indexes hold the same things: a column added to one alone fails here."""
    conn = sqlite3.connect(tmp_path / "x.search.db")
    conn.executescript(SCHEMA)
    tables = {"entries", "dropped_rooms", "pending_docs", "state"}
    sqlite_columns = {
        t: {row[1] for row in conn.execute(f"PRAGMA table_info({t})")} for t in tables
    }
    conn.close()
    with psycopg.connect(pg_url) as pg:
        rows = pg.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name LIKE 'search%%'"
        ).fetchall()
    postgres_columns: dict[str, set[str]] = {}
    for table, column in rows:
        postgres_columns.setdefault(table.removeprefix("search_"), set()).add(column)
    assert postgres_columns.pop("writers") == {"lock_key", "since"}  # PostgreSQL's own
    assert postgres_columns == sqlite_columns


async def test_two_nodes_racing_on_the_same_rows_keep_the_newest(pg_url: str) -> None:
    """Two index objects (two nodes' pools) apply the versions of the same messages and docs
    in opposite orders at once: no write fails, and every row ends at its newest version."""
    a, b = PostgresIndex(pg_url), PostgresIndex(pg_url)
    await a.open()
    await b.open()
    try:
        rng = random.Random(15)
        keys = [f"m{i}" for i in range(40)]
        versions = range(1, 7)

        def batch(order: list[int]) -> list[Entry]:
            out = []
            for v in order:
                for key in keys:
                    out.append(
                        Entry("chat", "r", key, f"<{key}> says v{v}", T0, T0 + v)
                        if v < 6 or key != "m0"
                        else Entry("chat", "r", key, "", T0, DELETED, deleted=True)
                    )
                    # A doc moves to a new id with each version: the ids must never collide.
                    out.append(Entry("doc", "r", f"d{key}", f"doc {key} v{v}", T0 + v, T0 + v))
            rng.shuffle(out)
            return out

        with anyio.fail_after(60):
            for _ in range(3):
                async with anyio.create_task_group() as tg:
                    for index in (a, b, a, b):
                        writes = batch(list(versions))
                        for i in range(0, len(writes), 50):
                            tg.start_soon(index.apply, writes[i : i + 50])
        for key in keys[1:]:
            page = await a.search(parse_query(f"<{key}>"), [Scope("r")])
            assert [(h.key, h.snippet) for h in page.hits] == [(key, f"<{key}> says v6")]
        assert (await b.search(parse_query("<m0>"), [Scope("r")])).hits == []
        page = await b.search(parse_query("doc"), [Scope("r")], limit=100)
        assert sorted(h.snippet for h in page.hits) == sorted(f"doc {k} v6" for k in keys)
        assert len({h.id for h in page.hits}) == len(keys)
        counts = await a.counts()
        assert (counts.chat, counts.docs, counts.tombstones) == (39, 40, 1)
    finally:
        await a.close()
        await b.close()


async def test_a_second_node_is_no_crash_but_a_node_that_died_is(pg_url: str) -> None:
    first = PostgresIndex(pg_url)
    state = await first.open()
    assert state.new and not state.complete
    await first.set_complete(True)
    second = PostgresIndex(pg_url)
    state = await second.open()  # the first is alive: nothing was lost
    assert state.clean and state.complete and not state.new
    await second.close(pending_docs=[("r", "d")])
    third = PostgresIndex(pg_url)
    state = await third.open()
    assert state.clean and state.pending_docs == (("r", "d"),)
    # The first node dies without closing: its session ends, and its lock with it.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (first.writer_pid,))
    await first.db.close()
    if first._holder is not None:  # what the dead process would have freed
        await first._holder.close()
    fourth = PostgresIndex(pg_url)
    try:
        state = await fourth.open()
        assert not state.clean and state.complete  # the server rebuilds
        assert await fourth.live_writers() == 2  # the third and this one; the dead one is gone
        await third.close()
        assert await fourth.live_writers() == 1
    finally:
        await fourth.close()


async def test_a_deadline_cancels_the_statement_on_the_server(pg_url: str) -> None:
    """A scan that takes seconds (long texts, every short term found only at their end) is
    cancelled by PostgreSQL at the deadline, and the connection serves the next query."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO search_entries (id, kind, room, key, at, version, text)"
            " SELECT n, 'chat', 'r', 'm' || n, n, n, repeat('xy ', 1500) || 'ab'"
            " FROM generate_series(1, 4000) n"
        )
    index = PostgresIndex(pg_url)
    await index.open()
    try:
        slow = parse_query(" ".join(["ab"] * 15 + ["zz"]))
        started = time.monotonic()
        with anyio.fail_after(30), pytest.raises(QueryTooSlow):
            await index.search(slow, [Scope("r")], deadline=time.monotonic() + 0.2)
        assert time.monotonic() - started < 10
        with anyio.fail_after(30):
            page = await index.search(parse_query("ab"), [Scope("r")], limit=1)
        assert [h.key for h in page.hits] == ["m4000"]
    finally:
        await index.close()


async def test_a_search_on_one_node_finds_what_was_posted_on_another(
    pg_url: str, server_factory: ServerFactory
) -> None:
    """Two real `collab serve` nodes on one fresh PostgreSQL database (issue 15): a message
    posted through A and a doc written through A are found by /api/v1/search on B; a message
    deleted through B is found on neither."""
    shared = {
        "store": pg_url,
        "secret_key": "k" * 43,
        "dev_token": "pgsearch-dev-token-012",
        "search_index_delay": 0.05,
        "search_burst": 10_000,
    }
    a, b = server_factory(**shared), server_factory(**shared)
    on_a, on_b = Api(a), Api(b)
    try:
        room = on_a.room("r", owner=on_a.dev)
        posted = on_a.dev.http.post(
            f"/rooms/{room}/messages",
            json={"text": "离线消息推送 ships on Friday", "client_id": "c"},
        )
        assert posted.status_code == 201, posted.text
        await write_doc(a, room, "notes", plain("Design notes: offline delivery ordered."))

        def found(api: Api, q: str) -> list[str]:
            r = api.dev.http.get("/search", params={"q": q})
            assert r.status_code == 200, r.text
            return [item["message"] or item["doc"] for item in r.json()["items"]]

        await wait_until(lambda: found(on_b, "消息推") == [posted.json()["id"]], what="the post")
        await wait_until(lambda: found(on_b, "offline") == ["notes"], what="the doc")
        assert found(on_b, "消息") == [posted.json()["id"]]  # the short scan, on B too
        deleted = on_b.dev.http.delete(f"/rooms/{room}/messages/{posted.json()['id']}")
        assert deleted.status_code == 204
        await wait_until(lambda: found(on_a, "消息推") == [], what="the deletion, on A")
        assert found(on_b, "friday") == []
    finally:
        on_a.close()
        on_b.close()


async def test_searches_are_never_prepared_statements(pg_url: str) -> None:
    """psycopg prepares a query run five times, and PostgreSQL may then plan it once for every
    pattern (a rare term read the whole table so): a search is planned with its own."""
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        for i in range(12):
            for q in (f"term{i}", "zz"):
                await run_search(conn, parse_query(q), [Scope("r")], None, None, 20)
        cur = await conn.execute("SELECT statement FROM pg_prepared_statements")
        assert await cur.fetchall() == []
