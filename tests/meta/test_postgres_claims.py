"""PostgreSQL only: a claim of webhook deliveries locks the rows it claims, not every due row.

The claim reads every pending due delivery to pick the oldest of each endpoint, up to its
limit. Locking all it read (``FOR UPDATE ... SKIP LOCKED`` on the whole scan) wrote a row lock
into each of those rows, however many it then took (a backlog of thousands behind one slow
endpoint: thousands of tuple writes per claim, one claim per delivery sent), and another node
claiming meanwhile skipped them all, those of endpoints this claim did not take included. A row
lock leaves its locker in the row's ``xmax`` (a lock-only xmax, kept after the commit): that is
what this test reads."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
