"""SQLiteMetaStore: every record kind's SQL class (``collab.meta.sql``) in one object, over one
SQLite database.

The meta tables live in the same SQLite file as the documents (``migrations/sqlite/``), written
in a server through the same ``collab.db.Database`` (``collab.db.sqlite_database``: one writer
per file, and one group commit for both stores); the app applies migrations before opening, and
a database with pending ones is refused. Each kind (``users``, ``sessions``, ``rooms``, ...) is
a class of its own over a shared backend (``base.SQLiteBackend``: one ``collab.db.Database``);
this composite inherits them all, so callers keep one ``meta`` object.

    base.py    SQLiteBackend, SQLiteTx: the kinds' SQL on the one writer (its group commit)
               and the readers
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from collab.db import Database
from collab.meta.sql import SqlMetaStore
from collab.meta.sqlite.base import SQLiteBackend

__all__ = ["SQLiteMetaStore"]


class SQLiteMetaStore(SqlMetaStore):
    """The MetaStore in the same SQLite file as the documents; ``clock`` is injectable."""

    def __init__(
        self,
        path: Path,
        synchronous: str = "FULL",
        *,
        clock: Callable[[], float] = time.time,
        database: Database | None = None,
    ) -> None:
        self.db = database or Database(path, synchronous)
        super().__init__(SQLiteBackend(self.db), clock=clock)
        self.path = path
        self.synchronous = synchronous

    async def open(self) -> None:
        """Connect, then give a handle to users made before handles existed (0006)."""
        await self.db.open()
        await self.assign_missing_handles()

    async def close(self) -> None:
        await self.db.close()
