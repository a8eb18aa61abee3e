"""Document storage backends, chosen by URL and imported only when named.

``memory://`` keeps everything in the process (tests); ``sqlite:///...`` or a bare path is a
SQLite file (the URL grammar is ``collab.db.sqlite_path``'s); ``postgresql://...`` (or
``postgres://``) is a PostgreSQL database several nodes share (``collab.store.postgres``).
Failures are ``collab.db.StoreError``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from collab.db import Database, StoreError, postgres_url, sqlite_path
from collab.store.base import DocumentStore, StoredDoc

__all__ = ["DocumentStore", "StoredDoc", "open_store"]


def open_store(
    url: str,
    *,
    synchronous: str = "FULL",
    database: Database | None = None,
    described: Callable[[str], Collection[str]] | None = None,
) -> DocumentStore:
    """The DocumentStore a URL names (not yet opened); a SQLite one writes through
    ``database`` when given (``collab.db.sqlite_database``: shared with the meta store), a
    memory one counts the docs ``described`` gives in a room's doc cap (``MemoryStore``)."""
    if url in {"memory://", "memory:"}:
        from collab.store.memory import MemoryStore

        return MemoryStore(described)
    if postgres_url(url) is not None:
        from collab.store.postgres import PostgresStore

        return PostgresStore(url)
    path = sqlite_path(url)
    if path is not None:
        from collab.store.sqlite import SQLiteStore

        return SQLiteStore(path, synchronous=synchronous, database=database)
    scheme = url.split("://", 1)[0]
    raise StoreError(
        f"unknown store scheme {scheme!r} (expected sqlite:///, postgresql:// or memory://)"
    )
