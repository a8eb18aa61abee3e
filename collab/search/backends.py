"""Which SearchIndex a store URL names, imported only when named (as ``collab.store`` does)."""

from __future__ import annotations

from collab.db import StoreError, postgres_url, search_index_path, sqlite_path
from collab.search.index import SearchIndex


def open_search_index(url: str) -> SearchIndex:
    """The index a store URL names (not yet opened): ``<database>.search.db`` for SQLite, the
    store's own database for PostgreSQL (every node shares it)."""
    if url in {"memory://", "memory:"}:
        from collab.search.memory import MemoryIndex

        return MemoryIndex()
    if postgres_url(url) is not None:
        from collab.search.postgres import PostgresIndex

        return PostgresIndex(url)
    path = sqlite_path(url)
    if path is not None:
        from collab.search.sqlite import SQLiteIndex

        return SQLiteIndex(search_index_path(path))
    raise StoreError(f"no search index for the store {url.split('://', 1)[0]!r}")
