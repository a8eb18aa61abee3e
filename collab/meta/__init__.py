"""Everything persistent that is not a Yjs document: users, sessions, rooms, members, tokens,
audit. One small Protocol (``MetaStore``), a memory twin and a SQLite implementation, chosen by
the same store URL as the documents (``open_meta_store``)."""

from __future__ import annotations

from collab.meta.base import MetaStore
from collab.store import StoreError, sqlite_path

__all__ = ["MetaStore", "open_meta_store"]


def open_meta_store(url: str, *, synchronous: str = "FULL") -> MetaStore:
    """The MetaStore a store URL names (not yet opened): the same URL as ``open_store``, so one
    ``--store`` names all persistent state, in one SQLite file."""
    if url in {"memory://", "memory:"}:
        from collab.meta.memory import MemoryMetaStore

        return MemoryMetaStore()
    path = sqlite_path(url)
    if path is not None:
        from collab.meta.sqlite import SQLiteMetaStore

        return SQLiteMetaStore(path, synchronous=synchronous)
    scheme = url.split("://", 1)[0]
    raise StoreError(f"unknown store scheme {scheme!r} (expected sqlite:/// or memory://)")
