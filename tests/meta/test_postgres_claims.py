"""PostgreSQL only: a claim of webhook deliveries locks the rows it claims, not every due row,
and reads a row or two per endpoint, not the backlog.

The claim picks the oldest due delivery of each endpoint, up to its limit (it once read every
pending due delivery to do so). Locking all it read (``FOR UPDATE ... SKIP LOCKED`` on the
whole scan) wrote a row lock into each of those rows, however many it then took (a backlog of
thousands behind one slow endpoint: thousands of tuple writes per claim, one claim per delivery
sent), and another node claiming meanwhile skipped them all, those of endpoints this claim did
not take included. A row lock leaves its locker in the row's ``xmax`` (a lock-only xmax, kept
after the commit): that is what this test reads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
import pytest

from collab.meta import Endpoint
from collab.meta.postgres import PostgresMetaStore
from tests.meta.support import T0

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresMetaStore]:
    meta = PostgresMetaStore(pg_url, max_connections=2)
    await meta.open()
    yield meta
    await meta.close()


def locked_rows(url: str) -> list[str]:
    """The deliveries whose current row carries a row lock (or a deletion) of some transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id FROM webhook_deliveries WHERE xmax::text <> '0' ORDER BY id"
        ).fetchall()
    return [str(i) for (i,) in rows]


async def test_a_claim_locks_only_the_deliveries_it_takes(
    pg_url: str, store: PostgresMetaStore
) -> None:
    for name in ("a", "b", "c"):
        hook = Endpoint(name, "r", f"https://{name}.example/h", ("*",), "whsec_x", "o", T0)
        await store.create_webhook(hook)
    for n in range(20):
        await store.enqueue_webhook_event(
            "r", "e", str(n), T0 + n, [f"msg_{n:02}_{x}" for x in "abc"]
        )
    claimed = await store.claim_webhook_deliveries(T0 + 100, "w", 30, 2)
    assert len(claimed) == 2 and len({e.id for _, e in claimed}) == 2
    assert {d.payload for d, _ in claimed} == {"0"}, "the oldest due first"
    taken = {d.id for d, _ in claimed}
    others = [i for i in locked_rows(pg_url) if i not in taken]
    assert others == [], "no row it did not take is locked by the claim"
    # The third endpoint's oldest is what the next claim takes.
    (third,) = await store.claim_webhook_deliveries(T0 + 100, "w2", 30, 5)
    assert third[0].payload == "0" and third[1].id not in {e.id for _, e in claimed}


def deliveries_rows_read(plan: dict[str, object]) -> int:
    """Rows the plan node and those under it read from ``webhook_deliveries``, all loops."""
    read = 0
    if plan.get("Relation Name") == "webhook_deliveries":
        read += int(plan["Actual Rows"]) * int(plan["Actual Loops"])  # type: ignore[call-overload]
    for child in plan.get("Plans", []):  # type: ignore[attr-defined]
        read += deliveries_rows_read(child)
    return read


async def backlog(store: PostgresMetaStore, pg_url: str) -> None:
    """Two endpoints with a delivery each, and 20,000 more pending for one of them (written
    in one statement: through the API it would take minutes), the planner told of them."""
    for name in ("back", "calm"):
        hook = Endpoint(name, "r", f"https://{name}.example/h", ("*",), "whsec_x", "o", T0)
        await store.create_webhook(hook)
    await store.enqueue_webhook_event("r", "e", "first", T0, ["msg_a_back", "msg_a_calm"])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO webhook_deliveries"
            " (id, endpoint_id, room_id, event, payload, created_at, window_start, due)"
            " SELECT 'bulk_' || n, 'back', 'r', 'e', '{}', %s + n, %s + n, %s + n"
            " FROM generate_series(1, 20000) n",
            (T0, T0, T0),
        )
        conn.execute("ANALYZE webhook_deliveries")


async def test_a_claim_reads_a_row_or_two_per_endpoint_not_the_backlog(
    pg_url: str, store: PostgresMetaStore
) -> None:
    """An endpoint back from an outage with 20,000 due deliveries: the claim found the
    endpoints with a due delivery by reading every due delivery (PostgreSQL has no skip scan
    of the index), ~40 ms per claim at 250,000, one claim per delivery drained: quadratic in
    the backlog. Counted in the plan (EXPLAIN ANALYZE of the claim's own query), not timed."""
    from collab.meta.sql.webhooks import _CLAIM

    await backlog(store, pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        marks = iter(range(1, 5))
        query = "".join(f"${next(marks)}" if c == "?" else c for c in _CLAIM)
        conn.execute(f"PREPARE claim(float8, float8, float8, int) AS {query}")
        now = T0 + 30_000
        explained = conn.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim({now}, {now}, {now}, 10)"
        ).fetchone()
    assert explained is not None
    (plan,) = explained[0]
    assert deliveries_rows_read(plan["Plan"]) <= 10, plan
    claimed = await store.claim_webhook_deliveries(now, "w", 30, 10)
    assert sorted((e.id, d.payload) for d, e in claimed) == [("back", "first"), ("calm", "first")]


async def test_the_next_due_time_reads_a_row_or_two_per_endpoint_not_the_backlog(
    pg_url: str, store: PostgresMetaStore
) -> None:
    """What the worker asks on each idle turn (one per delivery while a backlog drains, the
    endpoint's one in flight blocking the rest): it read every pending delivery, ~36 ms at
    250,000 on PostgreSQL (85 ms on SQLite). Its own query, as the store sends it, is
    EXPLAIN ANALYZEd here: rows read are counted, not timed."""
    sent: list[str] = []
    read = store._read

    async def recorded(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        sent.append(sql)
        return await read(sql, params)

    await backlog(store, pg_url)
    leased = await store.claim_webhook_deliveries(T0 + 10, "w", 30, 2)  # both heads
    assert sorted(d.id for d, _ in leased) == ["msg_a_back", "msg_a_calm"]
    store._read = recorded  # type: ignore[method-assign]
    # both heads leased until T0 + 40; back's next one due at T0 + 1 (as it always answered:
    # the worker then waits for the lease's end to wake it)
    assert await store.next_webhook_due(T0 + 10) == T0 + 1
    (query,) = sent
    assert "?" not in query
    with psycopg.connect(pg_url, autocommit=True) as conn:
        explained = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}").fetchone()
    assert explained is not None
    (plan,) = explained[0]
    assert deliveries_rows_read(plan["Plan"]) <= 10, plan
