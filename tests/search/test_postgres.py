"""What the PostgreSQL index adds to the contract (tests/search/test_index.py): several nodes
writing one index at once, the clean flag with several writers, and a deadline that cancels a
statement the server is running."""

from __future__ import annotations

import random
import time

import anyio
import psycopg
import pytest

from collab.search import Entry, Scope, parse_query
from collab.search.index import DELETED, QueryTooSlow
from collab.search.postgres import PostgresIndex

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0


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
