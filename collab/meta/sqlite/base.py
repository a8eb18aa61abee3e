"""What every record kind's SQLite half shares: one ``collab.db.Database`` and the clock.

Every write runs alone on the database's one writer (in its own savepoint of a group commit),
so read-check-write sequences (redeem an invite, consume a ticket) are atomic without SQL
tricks: nothing else writes in between. Reads use the reader connection. The schema is
``migrations/sqlite/0002_meta.sql``; no foreign keys, so nothing depends on
``PRAGMA foreign_keys``. sqlite-utils is used for plain inserts and upserts; only this package
imports it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import sqlite_utils

from collab.db import Database
from collab.meta.base import Role

T = TypeVar("T")


def as_row(record: Any, **extra: Any) -> dict[str, Any]:
    """A record as a table row: roles by name (readable, CHECKed in SQL), plus ``extra``."""
    row = {k: v.name if isinstance(v, Role) else v for k, v in asdict(record).items()}
    return {**row, **extra}


class SQLiteKind:
    """The base of each kind's SQLite class; the composite ``SQLiteMetaStore`` inherits every
    kind, so all of them share its one database and clock."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._utils: sqlite_utils.Database | None = None

    async def _write(
        self,
        fn: Callable[[sqlite_utils.Database], T],
        *,
        then: Callable[[T], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> T:
        """Run ``fn`` on the writer, alone, in the next group commit (``collab.db.Database``:
        ``then`` and ``undo`` too)."""

        def _run(conn: sqlite3.Connection) -> T:
            # One sqlite-utils view per writer connection, made on its first write (the
            # writer thread holds the lock, so nothing races for it).
            if self._utils is None or self._utils.conn is not conn:
                self._utils = sqlite_utils.Database(conn, execute_plugins=False)
            return fn(self._utils)

        return await self.db.write(_run, then=then, undo=undo)

    async def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        def _run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params).fetchall()

        return await self.db.read(_run)
