"""The SQL of one search over the SQLite index (``collab.search.sqlite``), on a reader.

Two plans, chosen by the query:

- **FTS5** when some term has three characters or more: ``fts MATCH`` with the long terms
  (each a quoted string, ANDed), the short terms as ``LIKE`` filters on the matching rows,
  walked newest first (``ORDER BY fts.rowid DESC``) until a page is full, which FTS5 does
  without sorting; ``snippet()`` marks the matches.
- **Scan** when every term is shorter than a trigram (``消息``, ``go``): the newest
  ``SCAN_ROWS`` live entries of the caller's scopes, filtered by ``LIKE``; a page that ends
  at that bound without filling up carries a cursor to scan on from there.

Scopes are SQL built here from a fixed shape with bound parameters (room lists as JSON);
nothing of the user's text is ever spliced into the SQL or the MATCH expression unquoted.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from collab.search.index import SCAN_ROWS, Hit, Kind, Page, Scope
from collab.search.query import Query, like_pattern
from collab.search.snippets import (
    ELLIPSIS,
    END,
    START,
    Snippet,
    find_all,
    fold_ascii,
    from_marked,
    make_snippet,
    merge_ranges,
)

NO_CURSOR = 2**62
SNIPPET_TOKENS = 64  # FTS5's maximum; a trigram index counts about one per character


def scope_sql(scopes: Sequence[Scope], *, by_index: bool) -> tuple[str, list[Any]]:
    """A WHERE condition on ``e`` admitting exactly the scopes' entries.

    ``by_index``: one room, read through ``entries_by_room`` (newest first without a sort);
    otherwise the room is tested per row (``+e.room``) while the rows are walked by id.
    """
    room = "e.room" if by_index else "+e.room"
    parts: list[str] = []
    params: list[Any] = []
    whole = [s.room for s in scopes if s.chat and s.docs is None]
    if whole:
        if len(whole) == 1:
            parts.append(f"{room} = ?")
            params.append(whole[0])
        else:
            parts.append(f"{room} IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(whole))
    for scope in scopes:
        if scope.chat and scope.docs is None:
            continue
        kinds: list[str] = []
        if scope.chat:
            kinds.append("e.kind = 'chat'")
        if scope.docs is None:
            kinds.append("e.kind = 'doc'")
        elif scope.docs:
            kinds.append("(e.kind = 'doc' AND e.key IN (SELECT value FROM json_each(?)))")
        if not kinds:
            continue
        parts.append(f"({room} = ? AND ({' OR '.join(kinds)}))")
        params.append(scope.room)
        if scope.docs:
            params.append(json.dumps(list(scope.docs)))
    if not parts:
        return "0", []
    return "(" + " OR ".join(parts) + ")", params


def _filters(kind: Kind | None, before: int | None) -> tuple[str, list[Any]]:
    """Live entries below the cursor, of one kind if asked."""
    sql = " AND NOT e.deleted AND e.id < ?"
    params: list[Any] = [NO_CURSOR if before is None else before]
    if kind is not None:
        sql += " AND e.kind = ?"
        params.append(kind)
    return sql, params


def _short_terms(query: Query) -> tuple[str, list[Any]]:
    """Each short term as a LIKE condition (A-Z case ignored, as the trigram index does)."""
    sql = "".join(" AND e.text LIKE ? ESCAPE '\\'" for _ in query.short_terms)
    return sql, [like_pattern(t.text) for t in query.short_terms]


def run_search(
    conn: sqlite3.Connection,
    query: Query,
    scopes: Sequence[Scope],
    kind: Kind | None,
    before: int | None,
    limit: int,
) -> Page:
    if not scopes:
        return Page([], None)
    if query.long_terms:
        return _fts(conn, query, scopes, kind, before, limit)
    return _scan(conn, query, scopes, kind, before, limit)


def _fts(
    conn: sqlite3.Connection,
    query: Query,
    scopes: Sequence[Scope],
    kind: Kind | None,
    before: int | None,
    limit: int,
) -> Page:
    where, params = scope_sql(scopes, by_index=False)
    filters, more = _filters(kind, before)
    short, patterns = _short_terms(query)
    rows = conn.execute(
        "SELECT e.id, e.kind, e.room, e.key, e.at, e.author, e.seq,"
        f" snippet(fts, 0, '{START}', '{END}', '{ELLIPSIS}', {SNIPPET_TOKENS})"
        " FROM fts JOIN entries e ON e.id = fts.rowid"
        f" WHERE fts MATCH ? AND {where}{filters}{short}"
        " ORDER BY fts.rowid DESC LIMIT ?",
        [query.fts_expression(), *params, *more, *patterns, limit + 1],
    ).fetchall()
    needles = [fold_ascii(t.text) for t in query.short_terms]
    hits = [_hit(row, _mark_short(from_marked(row[7]), needles)) for row in rows[:limit]]
    return Page(hits, hits[-1].id if len(rows) > limit else None)


def _scan(
    conn: sqlite3.Connection,
    query: Query,
    scopes: Sequence[Scope],
    kind: Kind | None,
    before: int | None,
    limit: int,
) -> Page:
    where, params = scope_sql(scopes, by_index=len(scopes) == 1)
    filters, more = _filters(kind, before)
    window = (
        "SELECT e.id, e.kind, e.room, e.key, e.at, e.author, e.seq, e.text FROM entries e"
        f" WHERE {where}{filters} ORDER BY e.id DESC LIMIT {SCAN_ROWS}"
    )
    short, patterns = _short_terms(query)
    rows = conn.execute(
        f"SELECT * FROM ({window}) e WHERE 1{short} LIMIT ?",
        [*params, *more, *patterns, limit + 1],
    ).fetchall()
    needles = [(fold_ascii(t.text), True) for t in query.short_terms]
    hits = [_hit(row, make_snippet(row[7], needles)) for row in rows[:limit]]
    if len(rows) > limit:
        return Page(hits, hits[-1].id)
    examined, lowest = conn.execute(
        f"SELECT count(*), min(id) FROM ({window})", [*params, *more]
    ).fetchone()
    return Page(hits, lowest if examined == SCAN_ROWS else None)


def _mark_short(snippet: Snippet, needles: list[str]) -> Snippet:
    """FTS5 marks the long terms; the short ones (LIKE filters) are marked here."""
    if not needles:
        return snippet
    folded = fold_ascii(snippet.text)
    extra = [r for needle in needles for r in find_all(folded, needle)]
    return Snippet(snippet.text, tuple(merge_ranges([*snippet.highlights, *extra])))


def _hit(row: tuple[Any, ...], snippet: Snippet) -> Hit:
    return Hit(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], snippet.text, snippet.highlights
    )
