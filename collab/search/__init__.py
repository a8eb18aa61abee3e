"""Search over chat and documents: one index, fed live, asked per caller (docs/search.md).

    query.py      the query grammar: terms, "phrases", prefix*; never raw FTS5 syntax
    index.py      SearchIndex (the seam), its records and the versioning rules
    backends.py   open_search_index: the index a store URL names
    sqlite.py     SQLiteIndex: FTS5 + trigram in <database>.search.db (sqlsearch.py: its SQL)
    postgres.py   PostgresIndex: pg_trgm in a PostgreSQL store's own database, shared by every
                  node (pgsql.py: its SQL)
    memory.py     MemoryIndex: the twin for memory://
    snippets.py   highlighted windows of text
    extract.py    a stored doc's plain text through the bounded scanner and an iterative walk
    indexer.py    Indexer: chat rows and doc commits in, batched versioned writes out
    rebuild.py    rebuild from the messages table and the stored docs (online, idempotent)
    service.py    Search: open (rebuilding when needed), close, query under a deadline
    verify.py     the index's checks for ``collab verify``

It sits above ``collab.chat`` and below ``collab.services``: chat and sync report through the
small hooks they define (``RowObserver``, ``SyncHooks.stored``), which ``collab.services``
connects to the ``Indexer``; nothing below imports search.
"""

from __future__ import annotations

from collab.search.backends import open_search_index
from collab.search.index import (
    KINDS,
    Counts,
    Entry,
    Hit,
    Kind,
    Page,
    QueryTooSlow,
    Scope,
    SearchIndex,
)
from collab.search.indexer import Indexer
from collab.search.query import Query, Term, parse_query
from collab.search.rebuild import RebuildReport, rebuild
from collab.search.service import Search

__all__ = [
    "KINDS",
    "Counts",
    "Entry",
    "Hit",
    "Indexer",
    "Kind",
    "Page",
    "Query",
    "QueryTooSlow",
    "RebuildReport",
    "Scope",
    "Search",
    "SearchIndex",
    "Term",
    "open_search_index",
    "parse_query",
    "rebuild",
]
