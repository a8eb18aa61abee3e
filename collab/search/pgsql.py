"""The SQL of one search over the PostgreSQL index (``collab.search.postgres``).

The same two plans and the same results as SQLite's (``collab.search.sqlsearch``):

- **Trigram** when some term has three characters or more: each long term is an ``ILIKE
  '%term%'`` (any letter's case ignored, as SQLite's trigram tokenizer does), which the GIN
  ``gin_trgm_ops`` index answers; the short terms are filters on the matching rows. Newest
  first, a page of ``limit``, in two steps whose plans are ours, not the planner's guess:
  the entries matching the terms are read through the trigram index alone (at most
  ``CANDIDATES``, within ``PROBE_MS``); when there are more, or that takes longer (a common
  term beside a rare one), the newest entries of the scopes are walked until the page is
  full. The planner misjudged both ways: it took ``'%zzqx%'`` for a common term and walked
  every doc's text to find none (6,000 docs of 16 kB: 0.7 s), and ``'%consectetur%'``, in
  every one of them, for a rare one, and read them all to sort them.
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
through the trigram index).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
import psycopg.errors
from psycopg.rows import TupleRow

from collab.search.index import SCAN_ROWS, Hit, Kind, Page, Scope
from collab.search.query import Query, like_pattern
from collab.search.snippets import fold, make_snippet

NO_CURSOR = 2**62
CANDIDATES = 200  # matches read through the trigram index before walking newest first
PROBE_MS = 50  # how long that read may take (the walk follows when it takes longer)
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
        rows = await _few_matches(
            conn, (terms, patterns), (where + filters, [*params, *more]), limit
        )
        if rows is None:  # many: walk the newest entries until the page is full
            async with _plan(conn, "seqscan", "bitmapscan"):  # the planner may guess "few"
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


@contextlib.asynccontextmanager
async def _plan(conn: psycopg.AsyncConnection[TupleRow], *off: str) -> AsyncIterator[None]:
    """Plans of these kinds (``enable_<kind>``) avoided inside the block (``SET LOCAL``: the
    search's transaction ends them anyway)."""
    for kind in off:
        await conn.execute(f"SET LOCAL enable_{kind} = off", prepare=False)
    yield  # not reset after an error: the transaction (or savepoint) failed, and ends
    for kind in off:
        await conn.execute(f"SET LOCAL enable_{kind} = on", prepare=False)


async def _few_matches(
    conn: psycopg.AsyncConnection[TupleRow],
    terms: tuple[str, list[Any]],
    scope: tuple[str, list[Any]],
    limit: int,
) -> list[TupleRow] | None:
    """The page's rows when the terms match at most ``CANDIDATES`` entries (of any room),
    found through the trigram index alone; None when they match more (the newest-first walk
    then fills a page early). The planner is not asked for the first step: it guesses that
    ``'%zzqx%'`` matches hundreds of entries and walks every entry's text newest first to
    find them (seconds over large docs, to find none), where the index answers at once."""
    cur = await conn.execute(
        "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'", prepare=False
    )
    found = await cur.fetchone()
    timeout = int(found[0]) if found else 0  # milliseconds; 0: none
    budget = min(PROBE_MS, timeout) if timeout > 0 else PROBE_MS
    try:
        # A savepoint: a probe cancelled at its budget undoes itself (settings included) only.
        async with conn.transaction(), _plan(conn, "indexscan", "seqscan"):
            await conn.execute(f"SET LOCAL statement_timeout = {budget}", prepare=False)
            cur = await conn.execute(
                f"SELECT e.id FROM search_entries e WHERE true{terms[0]} LIMIT %s",
                [*terms[1], CANDIDATES + 1],
                prepare=False,
            )
            ids = [int(row[0]) for row in await cur.fetchall()]
            await conn.execute(
                "SELECT set_config('statement_timeout', %s, true)", [str(timeout)], prepare=False
            )
    except psycopg.errors.QueryCanceled:
        return None  # a common term beside a rare one: each entry of the first is checked
    if len(ids) > CANDIDATES:
        return None
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM search_entries e WHERE e.id = ANY(%s) AND {scope[0]}"
        " ORDER BY e.id DESC LIMIT %s",
        [ids, *scope[1], limit + 1],
        prepare=False,
    )
    return await cur.fetchall()


def _hit(row: tuple[Any, ...], needles: list[tuple[str, bool]]) -> Hit:
    snippet = make_snippet(row[7], needles)
    return Hit(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], snippet.text, snippet.highlights
    )
