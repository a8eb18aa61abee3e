"""The SQLite SearchIndex: FTS5 with the trigram tokenizer, in a database file of its own.

Why a file of its own (``<database>.search.db``): the main file has one writer, which the
documents' group commit must never wait behind; the index has its own writer, its own WAL and
``synchronous=NORMAL`` (it is rebuilt from the main file after a crash, ``collab.search.
rebuild``), and its writes are short batched transactions on a worker thread.

``entries`` holds one row per message or doc (text, room, versions; ``collab.search.index``
has the rules) and is the external content of the FTS5 table ``fts``, kept in step by
triggers. Searches run on two reader connections under a deadline (a progress handler
interrupts a query past it). The query text comes from ``collab.search.query``: every term is
a quoted FTS5 string, so nothing a user types is FTS5 syntax. The SQL of a search is
``collab.search.sqlsearch``'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from collab.db import StoreError, connect
from collab.db.writerthread import WriterThread
from collab.search.index import (
    Counts,
    Drop,
    Entry,
    IndexState,
    Kind,
    Page,
    QueryTooSlow,
    Scope,
    Write,
    accepts,
    entry_id,
    keeps_id,
)
from collab.search.query import Query
from collab.search.snippets import clean_text
from collab.search.sqlsearch import run_search

T = TypeVar("T")
log = logging.getLogger("collab.search")

SCHEMA_VERSION = 1
READERS = 2
SCHEMA = """
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    room TEXT NOT NULL,
    key TEXT NOT NULL,
    at REAL NOT NULL,
    version REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    author TEXT,
    seq INTEGER,
    text TEXT NOT NULL,
    UNIQUE (kind, room, key)
);
CREATE INDEX entries_by_room ON entries (room, id);
CREATE TABLE dropped_rooms (room TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE pending_docs (room TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (room, doc));
CREATE VIRTUAL TABLE fts USING fts5(
    text, content='entries', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER entries_ai AFTER INSERT ON entries BEGIN
    INSERT INTO fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER entries_ad AFTER DELETE ON entries BEGIN
    INSERT INTO fts (fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER entries_au AFTER UPDATE ON entries BEGIN
    INSERT INTO fts (fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO fts (rowid, text) VALUES (new.id, new.text);
END;
"""


def _create_private(path: Path) -> None:
    """The index holds every message's text: 0600 from its first byte, like a backup."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)


def ensure_schema(conn: sqlite3.Connection) -> bool:
    """Create the schema (or re-create it, when it is another version's: the index is derived
    data, rebuilt from the main file). True when it was (re)created: empty, never complete.

    Not one transaction (``executescript`` commits), but ``user_version`` is set last: an
    interrupted creation is done again at the next open.
    """
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION:
        return False
    names = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger')"
        " AND name NOT LIKE 'sqlite%' AND name NOT GLOB 'fts_*'"
    ).fetchall()
    for kind, name in names:
        conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
    conn.executescript(SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return True


class SQLiteIndex:
    """``claim``: this process owns the index's clean flag (the server does; ``collab search
    reindex`` only when no server runs): open marks it in use, close marks it clean."""

    def __init__(self, path: Path, *, claim: bool = True) -> None:
        self.path = path
        self.claim = claim
        self._writer: sqlite3.Connection | None = None
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._reader_limit = anyio.CapacityLimiter(READERS)
        self._write_lock = anyio.Lock()
        self._busy = threading.Lock()  # held by the thread using the writer, and by close
        # The writes' own thread: a hand-over per batch several times cheaper than a worker
        # thread's (``collab.db.writerthread``); the index is written after every chat post.
        self._thread = WriterThread("collab-search")

    async def open(self) -> IndexState:
        try:
            return await anyio.to_thread.run_sync(self._open)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise  # locked, unreadable: not the index's fault, not a reason to lose it
            # A corrupt index is derived data: keep it aside for a look, start a new one.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.error("search index %s is corrupt (%s): moved to %s", self.path, exc, aside)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    self.path.with_name(self.path.name + suffix).rename(
                        aside.with_name(aside.name + suffix)
                    )
            return await anyio.to_thread.run_sync(self._open)

    def _open(self) -> IndexState:
        _create_private(self.path)
        writer = connect(self.path, "NORMAL")
        try:
            created = ensure_schema(writer)
            state = dict(writer.execute("SELECT key, value FROM state").fetchall())
            pending = writer.execute("SELECT room, doc FROM pending_docs").fetchall()
            if self.claim:  # in use: a crash is seen at the next open
                writer.execute("DELETE FROM pending_docs")
                writer.execute("INSERT OR REPLACE INTO state VALUES ('clean', '0')")
        except BaseException:
            writer.close()
            raise
        self._writer = writer
        for _ in range(READERS):
            self._readers.put(connect(self.path, "NORMAL"))
        return IndexState(
            clean=not created and state.get("clean") == "1",
            complete=not created and state.get("complete") == "1",
            pending_docs=tuple((room, doc) for room, doc in pending),
            new=created,
        )

    async def close(self, pending_docs: Sequence[tuple[str, str]] = ()) -> None:
        def _mark(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR IGNORE INTO pending_docs VALUES (?, ?)", pending_docs)
            conn.execute("INSERT OR REPLACE INTO state VALUES ('clean', '1')")

        if self._writer is None:
            return
        if self.claim:
            await self._write(_mark)
        async with self._write_lock:
            await anyio.to_thread.run_sync(self._close_connections)
        self._thread.stop()

    def _close_connections(self) -> None:
        with self._busy:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        for _ in range(READERS):
            self._readers.get().close()

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def _run() -> T:
            with self._busy:
                conn = self._writer
                if conn is None:
                    raise StoreError("search index is closed")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result

        async with self._write_lock:
            return await self._thread.run(_run)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def _run() -> T:
            conn = self._readers.get()
            try:
                return fn(conn)
            finally:
                self._readers.put(conn)

        return await anyio.to_thread.run_sync(_run, limiter=self._reader_limit)

    async def apply(self, writes: Sequence[Write]) -> None:
        def _apply(conn: sqlite3.Connection) -> None:
            for write in writes:
                if isinstance(write, Drop):
                    _drop(conn, write)
                else:
                    _put(conn, write)

        if writes:
            await self._write(_apply)

    async def search(
        self,
        query: Query,
        scopes: Sequence[Scope],
        *,
        kind: Kind | None = None,
        before: int | None = None,
        limit: int = 20,
        deadline: float | None = None,
    ) -> Page:
        def _search(conn: sqlite3.Connection) -> Page:
            if deadline is not None:
                conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
            try:
                return run_search(conn, query, scopes, kind, before, limit)
            except sqlite3.OperationalError as exc:
                if deadline is not None and "interrupted" in str(exc):
                    raise QueryTooSlow() from None
                raise
            finally:
                conn.set_progress_handler(None, 0)

        return await self._read(_search)

    async def doc_names(self, room: str) -> list[str]:
        def _names(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT key FROM entries WHERE kind='doc' AND room=? AND NOT deleted ORDER BY key",
                (room,),
            ).fetchall()
            return [str(key) for (key,) in rows]

        return await self._read(_names)

    async def rooms(self) -> list[str]:
        def _rooms(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT DISTINCT room FROM entries ORDER BY room").fetchall()
            return [str(room) for (room,) in rows]

        return await self._read(_rooms)

    async def messages(self, room: str, after: int, limit: int) -> list[tuple[int, int, str]]:
        def _messages(conn: sqlite3.Connection) -> list[tuple[int, int, str]]:
            rows = conn.execute(
                "SELECT id, coalesce(seq, 0), key FROM entries WHERE room=? AND id>?"
                " AND kind='chat' AND NOT deleted ORDER BY id LIMIT ?",
                (room, after, limit),
            ).fetchall()
            return [(int(i), int(seq), str(key)) for i, seq, key in rows]

        return await self._read(_messages)

    async def set_complete(self, complete: bool) -> None:
        def _set(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO state VALUES ('complete', ?)", (str(int(complete)),)
            )

        await self._write(_set)

    async def counts(self) -> Counts:
        return await self._read(read_counts)


def read_counts(conn: sqlite3.Connection) -> Counts:
    found = dict(
        conn.execute(
            "SELECT kind, count(*) FROM entries WHERE NOT deleted GROUP BY kind"
        ).fetchall()
    )
    (tombstones,) = conn.execute("SELECT count(*) FROM entries WHERE deleted").fetchone()
    return Counts(chat=found.get("chat", 0), docs=found.get("doc", 0), tombstones=tombstones)


def _drop(conn: sqlite3.Connection, drop: Drop) -> None:
    conn.execute(
        "INSERT INTO dropped_rooms (room, at) VALUES (?, ?)"
        " ON CONFLICT (room) DO UPDATE SET at = max(at, excluded.at)",
        (drop.room, drop.at),
    )
    conn.execute("DELETE FROM entries WHERE room=? AND at<?", (drop.room, drop.at))


def _put(conn: sqlite3.Connection, entry: Entry) -> None:
    dropped = conn.execute("SELECT at FROM dropped_rooms WHERE room=?", (entry.room,)).fetchone()
    row = conn.execute(
        "SELECT id, version FROM entries WHERE kind=? AND room=? AND key=?",
        (entry.kind, entry.room, entry.key),
    ).fetchone()
    if not accepts(entry, row[1] if row else None, dropped[0] if dropped else None):
        return
    values = (
        entry.at,
        entry.version,
        int(entry.deleted),
        entry.author,
        entry.seq,
        "" if entry.deleted else clean_text(entry.text),
    )
    if row is not None and keeps_id(entry):
        conn.execute(
            "UPDATE entries SET at=?, version=?, deleted=?, author=?, seq=?, text=? WHERE id=?",
            (*values, row[0]),
        )
        return
    if row is not None:
        conn.execute("DELETE FROM entries WHERE id=?", (row[0],))
    new_id = entry_id(entry.at)
    while conn.execute("SELECT 1 FROM entries WHERE id=?", (new_id,)).fetchone():
        new_id += 1
    conn.execute(
        "INSERT INTO entries (id, kind, room, key, at, version, deleted, author, seq, text)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (new_id, entry.kind, entry.room, entry.key, *values),
    )
