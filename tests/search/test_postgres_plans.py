"""How the PostgreSQL index answers over large documents: a rare term goes through the trigram
index, whatever the planner guesses about it."""

from __future__ import annotations

import time

import psycopg
import pytest

from collab.search import Scope, parse_query
from collab.search.postgres import PostgresIndex

pytestmark = pytest.mark.anyio

DOCS = 6000  # of 16 kB each: walking their text takes most of a second
T0 = 1_700_000_000.0


async def test_a_rare_term_is_found_through_the_trigram_index(pg_url: str) -> None:
    """The planner guessed that '%zzqx%' matches hundreds of entries and walked every doc's
    text newest first to fill a page (0.5 s for 4,000 docs of 16 kB here, seconds for a
    workspace's docs: past the 2 s deadline, "add words"), where SQLite's FTS5 and the trigram
    index answer at once. A common term still walks the newest entries only."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO search_entries (id, kind, room, key, at, version, text)"
            " SELECT g, 'doc', 'r', 'd' || g, %s + g, %s + g,"
            " repeat('lorem ipsum dolor sit amet consectetur ' || (g %% 97) || ' ', 400)"
            " FROM generate_series(1, %s) g",
            (T0, T0, DOCS),
        )
        conn.execute("UPDATE search_entries SET text = text || ' needle-in-haystack' WHERE id = 1")
        conn.execute("ANALYZE search_entries")
    index = PostgresIndex(pg_url)
    await index.open()
    try:

        async def keys(q: str, **kw: object) -> list[str]:
            deadline = time.monotonic() + 0.25  # the index answers in milliseconds
            scopes = [Scope("r")]
            page = await index.search(parse_query(q), scopes, deadline=deadline, **kw)  # type: ignore[arg-type]
            return [hit.key for hit in page.hits]

        assert await keys("zzqx") == []
        assert await keys("haystack") == ["d1"]
        assert await keys("needle lorem") == ["d1"]
        assert await keys("consectetur", limit=3) == [f"d{DOCS}", f"d{DOCS - 1}", f"d{DOCS - 2}"]
        ninety_six = [f"d{g}" for g in range(DOCS, 0, -1) if g % 97 == 96]
        assert await keys("consectetur 96", limit=2) == ninety_six[:2]
        assert await keys("haystack", kind="chat") == []
        assert (await index.search(parse_query("haystack"), [Scope("s")])).hits == []
    finally:
        await index.close()
