"""One SQLite file as collab's stores use it: one writer, one reader, work on worker threads.

Writes go through one connection guarded by one asyncio lock, each in its own ``BEGIN
IMMEDIATE`` transaction on a worker thread (Datasette's one-writer pattern): nothing else
writes in between, so read-check-write sequences are atomic without SQL tricks, and the event
loop never blocks on an fsync. Reads use a second connection, one at a time, so a read never
waits behind a commit (WAL readers do not block the writer). Opening refuses a database with
pending migrations: applying them is the caller's explicit step (``migrate_with_backup``).

The document store batches appends under the same lock (group commit): it holds
``write_lock`` itself and calls ``write_locked``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from collab.db.connection import connect
from collab.db.errors import StoreError
from collab.db.migrate import pending

T = TypeVar("T")


class Database:
    """A writer and a reader connection to ``path``, opened by ``open`` and closed by ``close``."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self.write_lock = asyncio.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_limiter = anyio.CapacityLimiter(1)
        # Held by the worker thread while it uses a connection, and by ``close``: a task
        # cancelled while its thread still runs SQL (asyncio's cancel does not wait for the
        # thread) must never see its connection closed under it (seen: a segfault in sqlite3).
        self._writer_busy = threading.Lock()
        self._reader_busy = threading.Lock()

    async def open(self) -> None:
        """Connect both; StoreError when the schema has pending migrations or is too new."""

        def _open() -> tuple[sqlite3.Connection, sqlite3.Connection]:
            writer = connect(self.path, self.synchronous)
            try:
                if pending(writer):
                    raise StoreError(f"{self.path} has pending migrations: run `collab migrate`")
            except BaseException:
                writer.close()
                raise
            return writer, connect(self.path, self.synchronous)

        self._writer, self._reader = await anyio.to_thread.run_sync(_open)

    async def close(self) -> None:
        """Wait for the write in flight, then close both connections (idempotent)."""
        async with self.write_lock:
            await anyio.to_thread.run_sync(self._close_connections)

    def _close_connections(self) -> None:
        with self._writer_busy, self._reader_busy:
            for conn in (self._writer, self._reader):
                if conn is not None:
                    conn.close()
            self._writer = self._reader = None

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one IMMEDIATE transaction on the writer, alone; a raise rolls it back."""
        async with self.write_lock:
            return await self.write_locked(fn)

    async def write_locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``write`` for a caller that already holds ``write_lock``."""
        return await anyio.to_thread.run_sync(self._transaction, fn)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._writer_busy:
            conn = self._writer
            if conn is None:
                raise StoreError("store is closed")
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the reader (one read at a time); it opens a transaction if it needs a
        consistent view across statements."""

        def _run() -> T:
            with self._reader_busy:
                conn = self._reader
                if conn is None:
                    raise StoreError("store is closed")
                return fn(conn)

        return await anyio.to_thread.run_sync(_run, limiter=self._read_limiter)
