"""PostgreSQL only: a user's mention inbox, paged newest first (``before_id``), never skips an
entry that another node was committing meanwhile.

An entry's id comes from an identity, drawn when the row is inserted, not when it commits. Two
nodes adding entries for one user at once could commit a higher id first: a reader paging
past the lower one before it committed never saw it (SQLite's one writer commits ids in
order). Entries of one user are therefore added under that user's lock, so ids of one user
commit in their order: an entry not shown by a walk is newer than its first page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import psycopg
import pytest

from collab.meta import NewMessage, Role
from collab.meta.postgres import PostgresMetaStore
from tests.support.postgres import sessions_waiting
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[list[PostgresMetaStore]]:
    stores = [PostgresMetaStore(pg_url, max_connections=2) for _ in range(2)]
    for store in stores:
        await store.open()
    yield stores
    for store in stores:
        await store.close()


async def test_a_walk_of_the_inbox_misses_nothing_older_than_its_first_page(
    pg_url: str, nodes: list[PostgresMetaStore]
) -> None:
    a, b = nodes
    await a.create_room("r", "R", "author")
    for user in ("u", "v"):
        await a.add_member("r", user, Role.editor)
    posted = []
    for n in range(4):
        new = NewMessage("r", f"m{n}", "author", "A", "author", f"c{n}", f"@u {n}", float(n))
        posted.append((await a.post_message(new))[0])
    await a.add_inbox_entries(posted[0], ["u"], 1.0)  # an older entry of u's
    async with anyio.create_task_group() as tg:
        # v's entry for m1 is being added elsewhere (uncommitted): node a's write of m1's
        # entries, u's first, then v's, waits on it after drawing u's id.
        with psycopg.connect(pg_url) as elsewhere:
            elsewhere.execute(
                "INSERT INTO inbox (user_id, room_id, message_id, seq, created_at, read)"
                " VALUES ('v', 'r', 'm1', 2, 2.0, FALSE)"
            )
            tg.start_soon(a.add_inbox_entries, posted[1], ["u", "v"], 2.0)
            await wait_until(sessions_waiting(pg_url, 1), what="node a waiting")
            # Node b adds u's entry for m2 meanwhile.
            tg.start_soon(b.add_inbox_entries, posted[2], ["u"], 3.0)
            await anyio.sleep(0.5)
            first = await b.list_inbox("u", limit=2)
            elsewhere.rollback()
    seen = [entry.message_id for entry, _ in first]
    before = first[-1][0].id
    while True:
        page = await b.list_inbox("u", before_id=before, limit=2)
        if not page:
            break
        seen += [entry.message_id for entry, _ in page]
        before = page[-1][0].id
    top = first[0][0].id
    every = await b.list_inbox("u", limit=100)
    missed = [e.message_id for e, _ in every if e.message_id not in seen and e.id <= top]
    assert missed == [], "an entry older than the first page was never shown"
    assert {e.message_id for e, _ in every} == {"m0", "m1", "m2"}
