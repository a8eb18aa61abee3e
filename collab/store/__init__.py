"""Storage backends, chosen by URL and imported only when named.

URL grammar (SQLAlchemy's convention): ``sqlite:///collab.db`` and ``sqlite:///./data/x.db`` are
relative to the working directory, ``sqlite:////var/lib/collab/collab.db`` is absolute, a bare
path means SQLite too, and ``memory://`` keeps everything in the process (tests).
"""

from __future__ import annotations

from pathlib import Path

from collab.store.base import DocumentStore, StoredDoc, StoreError

__all__ = ["DocumentStore", "StoreError", "StoredDoc", "open_store", "sqlite_path"]


def sqlite_path(url: str) -> Path | None:
    """The database file a store URL names, or None for a non-SQLite URL."""
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///") :]
        if not rest:
            raise StoreError("sqlite URL without a path")
        return Path(rest)
    if url.startswith("sqlite:"):
        raise StoreError(f"unsupported sqlite URL {url!r}: use sqlite:///relative or sqlite:////abs")
    if "://" in url:
        return None
    return Path(url)


def open_store(url: str, *, synchronous: str = "FULL") -> DocumentStore:
    """The DocumentStore a URL names (not yet opened)."""
    if url in {"memory://", "memory:"}:
        from collab.store.memory import MemoryStore

        return MemoryStore()
    path = sqlite_path(url)
    if path is not None:
        from collab.store.sqlite import SQLiteStore

        return SQLiteStore(path, synchronous=synchronous)
    scheme = url.split("://", 1)[0]
    raise StoreError(f"unknown store scheme {scheme!r} (expected sqlite:/// or memory://)")
