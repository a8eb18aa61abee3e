"""The SQLite backend of the SQL kinds: one ``collab.db.Database``.

Every write runs alone on the database's one writer, in its own savepoint of a group commit
(``collab.db.Database``), so nothing else writes in between (``collab.meta.sql.base``'s promise
to the kinds); a write's ``then`` runs inside the still open transaction, so what it starts (the
chat doc's update) commits with the write. Reads use the reader connections. The schema is
``migrations/sqlite/``; no foreign keys, so nothing depends on ``PRAGMA foreign_keys``.
``email`` columns are COLLATE NOCASE (ASCII case folding), so the dialect compares them with a
plain ``=``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from collab.db import Database
from collab.meta.sql.base import Dialect, IntegrityError

T = TypeVar("T")

SQLITE = Dialect("sqlite", greatest_function="max", nocase_template="{column}=?")


class SQLiteTx:
    """A write transaction on the writer connection; IntegrityError as the kinds know it."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, tuple(params))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc


class SQLiteBackend:
    """The kinds' ``Backend`` over one ``Database`` (opened and closed by its owner)."""

    dialect = SQLITE

    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(
        self,
        fn: Callable[[SQLiteTx], T],
        *,
        serial: str | None = None,
        then: Callable[[T], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> T:
        # One writer: every write is serial already, whatever its key.
        return await self.db.write(lambda conn: fn(SQLiteTx(conn)), then=then, undo=undo)

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def _run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, tuple(params)).fetchall()

        return await self.db.read(_run)

    async def lookup(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def _run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, tuple(params)).fetchall()

        return await self.db.lookup(_run)
