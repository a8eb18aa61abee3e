"""SQLite DocumentStore: WAL, one writer, group commit.

Writes go through one connection guarded by one lock. Appends that arrive while a commit is in
flight queue up and are written together by the next holder of the lock, in one transaction:
one fsync for many updates (group commit) without a timer. Reads use a second connection, so a
cold load never waits behind a commit (WAL readers do not block the writer).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from collab.names import DocKey
from collab.store import migrate
from collab.store.base import DocInfo, StoredDoc, StoreError

_SYNCHRONOUS = {"FULL", "NORMAL", "EXTRA"}


@dataclass
class _Append:
    key: DocKey
    updates: Sequence[bytes]
    future: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with collab's pragmas."""
    if synchronous.upper() not in _SYNCHRONOUS:
        raise StoreError(f"sqlite_synchronous must be one of {sorted(_SYNCHRONOUS)}")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def migrate_with_backup(path: Path) -> list[str]:
    """Apply pending migrations, first taking an online backup of a non-empty database.

    Returns the names applied. The backup sits beside the database as
    ``<name>.pre-<version>.bak`` and is a consistent copy (SQLite's backup API).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        todo = migrate.pending(conn)
        if todo and migrate.applied_versions(conn):
            backup_path = path.with_name(f"{path.name}.pre-{todo[0].version:04d}.bak")
            backup(path, backup_path)
        migrate.apply(conn, todo)
        return [f"{m.version:04d}_{m.name}" for m in todo]
    finally:
        conn.close()


class SQLiteStore:
    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._read_limiter = anyio.CapacityLimiter(1)
        self._queue: list[_Append] = []

    async def open(self) -> None:
        def _open() -> tuple[sqlite3.Connection, sqlite3.Connection]:
            writer = connect(self.path, self.synchronous)
            if migrate.pending(writer):
                writer.close()
                raise StoreError(f"{self.path} has pending migrations: run `collab migrate`")
            return writer, connect(self.path, self.synchronous)

        self._writer, self._reader = await anyio.to_thread.run_sync(_open)

    async def close(self) -> None:
        async with self._write_lock:
            for conn in (self._writer, self._reader):
                if conn is not None:
                    conn.close()
            self._writer = self._reader = None

    async def ping(self) -> None:
        def _ping() -> None:
            if self._reader is None:
                raise StoreError("store is closed")
            self._reader.execute("SELECT 1").fetchone()

        try:
            await anyio.to_thread.run_sync(_ping, limiter=self._read_limiter)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    async def load(self, key: DocKey) -> StoredDoc:
        def _load() -> StoredDoc:
            conn = self._reader
            if conn is None:
                raise StoreError("store is closed")
            conn.execute("BEGIN")
            try:
                row = conn.execute(
                    "SELECT generation, snapshot, snapshot_seq FROM docs WHERE room=? AND name=?",
                    key,
                ).fetchone()
                if row is None:
                    return StoredDoc()
                updates = conn.execute(
                    "SELECT seq, data FROM doc_updates WHERE room=? AND name=? AND seq>?"
                    " ORDER BY seq",
                    (*key, row[2]),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return StoredDoc(row[0], row[1], row[2], [(s, bytes(d)) for s, d in updates])

        return await anyio.to_thread.run_sync(_load, limiter=self._read_limiter)

    async def append(self, key: DocKey, updates: Sequence[bytes]) -> int:
        job = _Append(key, updates)
        self._queue.append(job)
        async with self._write_lock:
            if not job.future.done():
                batch, self._queue = self._queue, []
                try:
                    results = await anyio.to_thread.run_sync(self._write_batch, batch)
                except BaseException as exc:
                    for other in batch:
                        if not other.future.done():
                            other.future.set_exception(StoreError(f"commit failed: {exc!r}"))
                    if not isinstance(exc, Exception):
                        raise
                else:
                    for other, seq in zip(batch, results, strict=True):
                        other.future.set_result(seq)
        return job.future.result()

    def _write_batch(self, batch: list[_Append]) -> list[int]:
        conn = self._writer
        if conn is None:
            raise StoreError("store is closed")
        now = time.time()
        results = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job in batch:
                conn.execute(
                    "INSERT INTO docs (room, name, generation, created_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (room, name) DO NOTHING",
                    (*job.key, uuid.uuid4().hex, now),
                )
                (seq,) = conn.execute(
                    "SELECT last_seq FROM docs WHERE room=? AND name=?", job.key
                ).fetchone()
                rows = []
                for update in job.updates:
                    seq += 1
                    rows.append((*job.key, seq, update))
                conn.executemany(
                    "INSERT INTO doc_updates (room, name, seq, data) VALUES (?, ?, ?, ?)", rows
                )
                conn.execute(
                    "UPDATE docs SET last_seq=? WHERE room=? AND name=?", (seq, *job.key)
                )
                results.append(seq)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return results

    async def compact(self, key: DocKey, snapshot: bytes, upto_seq: int) -> None:
        def _compact() -> None:
            conn = self._writer
            if conn is None:
                raise StoreError("store is closed")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "UPDATE docs SET snapshot=?, snapshot_seq=? WHERE room=? AND name=?",
                    (snapshot, upto_seq, *key),
                )
                conn.execute(
                    "DELETE FROM doc_updates WHERE room=? AND name=? AND seq<=?", (*key, upto_seq)
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        async with self._write_lock:
            await anyio.to_thread.run_sync(_compact)

    async def list_docs(self, room: str) -> list[DocInfo]:
        def _list() -> list[DocInfo]:
            conn = self._reader
            if conn is None:
                raise StoreError("store is closed")
            rows = conn.execute(
                "SELECT d.name, d.generation, d.last_seq, COALESCE(length(d.snapshot), 0)"
                " + COALESCE((SELECT sum(length(u.data)) FROM doc_updates u"
                " WHERE u.room=d.room AND u.name=d.name AND u.seq>d.snapshot_seq), 0)"
                " FROM docs d WHERE d.room=? ORDER BY d.name",
                (room,),
            ).fetchall()
            return [DocInfo(name, gen, size, seq) for name, gen, seq, size in rows]

        return await anyio.to_thread.run_sync(_list, limiter=self._read_limiter)

    async def count_docs(self, room: str) -> int:
        def _count() -> int:
            conn = self._reader
            if conn is None:
                raise StoreError("store is closed")
            (n,) = conn.execute("SELECT count(*) FROM docs WHERE room=?", (room,)).fetchone()
            return int(n)

        return await anyio.to_thread.run_sync(_count, limiter=self._read_limiter)

    async def delete_doc(self, key: DocKey) -> None:
        def _delete() -> None:
            conn = self._writer
            if conn is None:
                raise StoreError("store is closed")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM doc_updates WHERE room=? AND name=?", key)
                conn.execute("DELETE FROM docs WHERE room=? AND name=?", key)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        async with self._write_lock:
            await anyio.to_thread.run_sync(_delete)


def backup(source: Path, target: Path) -> None:
    """A consistent copy of a live database (SQLite's online backup API)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        src.close()
        dst.close()
