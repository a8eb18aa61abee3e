"""The SQL of one search over the PostgreSQL index (``collab.search.postgres``).

The same two plans and the same results as SQLite's (``collab.search.sqlsearch``):

- **Trigram** when some term has three characters or more: each long term is an ``ILIKE
  '%term%'`` (any letter's case ignored, as SQLite's trigram tokenizer does), which the GIN
  ``gin_trgm_ops`` index answers; the short terms are filters on the matching rows. Newest
  first, a page of ``limit``.
- **Scan** when every term is shorter than a trigram (``消息``, ``go``): the newest
  ``SCAN_ROWS`` live entries of the caller's scopes, filtered; a page that ends at that bound
  without filling up carries a cursor to scan on from there.

Short terms fold every letter's case too (ILIKE), where SQLite's ``LIKE`` folds only A-Z: a
one- or two-letter term of another alphabet (``éT``) finds more here. Folding A-Z alone
(``translate`` of the text) scanned 25 times slower than ILIKE (5,000 texts of 4.5 kB: 7.0 s
against 0.29 s), and the scan is what a short query costs.

Every term reaches the server as a bound ``ILIKE`` pattern with ``%``, ``_`` and ``\\``
escaped (``like_pattern``), so nothing typed is a wildcard. Snippets are cut in Python
(``make_snippet``), the same windows the memory twin shows.

No search is a prepared statement (``prepare=False``): psycopg prepares a query run five
times, and PostgreSQL may then plan it once for any pattern, walking the newest entries for
every term; a rare term then reads the whole table (200,000 entries: 206 ms instead of 1 ms
through the trigram index). Planned with its pattern, a rare term goes through the trigram
index and a common one walks the newest entries until the page is full.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from collab.search.index import SCAN_ROWS, Hit, Kind, Page, Scope
from collab.search.query import Query, like_pattern
from collab.search.snippets import fold, make_snippet

NO_CURSOR = 2**62
_COLUMNS = "e.id, e.kind, e.room, e.key, e.at, e.author, e.seq, e.text"


def scope_sql(scopes: Sequence[Scope]) -> tuple[str, list[Any]]:
    """A WHERE condition on ``e`` admitting exactly the scopes' entries."""
    parts: list[str] = []
    params: list[Any] = []
    whole = [s.room for s in scopes if s.chat and s.docs is None]
    if whole:
        parts.append("e.room = ANY(%s)")
        params.append(whole)
    for scope in scopes:
        if scope.chat and scope.docs is None:
            continue
        kinds: list[str] = []
        if scope.chat:
            kinds.append("e.kind = 'chat'")
        if scope.docs is None:
            kinds.append("e.kind = 'doc'")
        elif scope.docs:
            kinds.append("(e.kind = 'doc' AND e.key = ANY(%s))")
        if not kinds:
            continue
        parts.append(f"(e.room = %s AND ({' OR '.join(kinds)}))")
        params.append(scope.room)
        if scope.docs:
            params.append(list(scope.docs))
    if not parts:
        return "false", []
    return "(" + " OR ".join(parts) + ")", params


def _filters(kind: Kind | None, before: int | None) -> tuple[str, list[Any]]:
    """Live entries below the cursor, of one kind if asked."""
    sql = " AND NOT e.deleted AND e.id < %s"
    params: list[Any] = [NO_CURSOR if before is None else before]
    if kind is not None:
        sql += " AND e.kind = %s"
        params.append(kind)
    return sql, params


def _terms(query: Query) -> tuple[str, list[Any]]:
    """Every term as an ILIKE: the long ones first (the trigram index answers them)."""
    terms = [*query.long_terms, *query.short_terms]
    return "".join(" AND e.text ILIKE %s" for _ in terms), [like_pattern(t.text) for t in terms]


async def run_search(
    conn: psycopg.AsyncConnection[TupleRow],
    query: Query,
    scopes: Sequence[Scope],
    kind: Kind | None,
    before: int | None,
    limit: int,
) -> Page:
    if not scopes:
        return Page([], None)
    where, params = scope_sql(scopes)
    filters, more = _filters(kind, before)
    terms, patterns = _terms(query)
    needles = [(fold(t.text), False) for t in query.terms]
    if query.long_terms:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM search_entries e WHERE {where}{filters}{terms}"
            " ORDER BY e.id DESC LIMIT %s",
            [*params, *more, *patterns, limit + 1],
            prepare=False,
        )
        rows = await cur.fetchall()
        hits = [_hit(row, needles) for row in rows[:limit]]
        return Page(hits, hits[-1].id if len(rows) > limit else None)
    window = (
        f"SELECT {_COLUMNS} FROM search_entries e WHERE {where}{filters}"
        f" ORDER BY e.id DESC LIMIT {SCAN_ROWS}"
    )
    cur = await conn.execute(
        f"SELECT * FROM ({window}) e WHERE true{terms} ORDER BY e.id DESC LIMIT %s",
        [*params, *more, *patterns, limit + 1],
        prepare=False,
    )
    rows = await cur.fetchall()
    hits = [_hit(row, needles) for row in rows[:limit]]
    if len(rows) > limit:
        return Page(hits, hits[-1].id)
    cur = await conn.execute(
        f"SELECT count(*), min(e.id) FROM ({window}) e", [*params, *more], prepare=False
    )
    found = await cur.fetchone()
    examined, lowest = found if found else (0, None)
    return Page(hits, lowest if examined == SCAN_ROWS else None)


def _hit(row: tuple[Any, ...], needles: list[tuple[str, bool]]) -> Hit:
    snippet = make_snippet(row[7], needles)
    return Hit(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], snippet.text, snippet.highlights
    )
