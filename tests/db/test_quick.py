"""Quick transactions (``collab.db.quick``): a group commit of small writes runs its statements
on the event loop and only its COMMIT on the writer's thread; anything else, or a write lock
held by another connection, goes to the thread as before, and the loop never waits."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from collab.db import Database, StoreError, connect
from collab.db.quick import QUICK_BYTES
from collab.names import DocKey
from collab.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

WRITER = "collab-writer"  # the writer thread's name (collab.db.writerthread)


class Statements:
    """Each statement the writer connection runs, with the name of the thread that ran it."""

    def __init__(self, db: Database) -> None:
        self.seen: list[tuple[str, str]] = []
        assert db._writer is not None
        self._conn = db._writer
        self._conn.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if not sql.startswith("PRAGMA"):
            self.seen.append((threading.current_thread().name, sql.split()[0].upper()))

    def threads(self, verb: str) -> set[str]:
        return {thread for thread, seen in self.seen if seen == verb}

    def close(self) -> None:
        self._conn.set_trace_callback(None)


@pytest.fixture
def statements(db: Database) -> Iterator[Statements]:
    traced = Statements(db)
    yield traced
    traced.close()


def _insert(key: str) -> Callable[[sqlite3.Connection], None]:
    def insert(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO cache VALUES (?, 'v', 0)", (key,))

    return insert


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM cache").fetchone()[0])


def _committed(path: Path) -> int:
    conn = connect(path)
    try:
        return _count(conn)
    finally:
        conn.close()


async def test_quick_writes_run_on_the_loop_and_only_commit_on_the_thread(
    db: Database, statements: Statements
) -> None:
    loop_thread = threading.current_thread().name
    trips, commits = db.trips, db.commits
    with anyio.fail_after(10):
        await db.write(_insert("a"), quick=True)
        assert _committed(db.path) == 1  # answered once committed, not before
        await asyncio.gather(*(db.write(_insert(f"k{n}"), quick=True) for n in range(20)))
    assert _committed(db.path) == 21
    assert db.trips - trips == db.commits - commits == 2  # one trip per transaction
    assert statements.threads("BEGIN") == statements.threads("INSERT") == {loop_thread}
    assert statements.threads("SAVEPOINT") == {loop_thread}  # the group of 20: one each
    assert statements.threads("COMMIT") == {WRITER}


async def test_a_quick_write_that_raises_fails_alone(db: Database) -> None:
    def refused(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO cache VALUES ('refused', 'v', 0)")
        raise ValueError("refused")

    with anyio.fail_after(10):
        with pytest.raises(ValueError, match="refused"):
            await db.write(refused, quick=True)  # alone: its transaction is rolled back
        writes = [db.write(_insert(f"k{n}"), quick=True) for n in range(10)]
        writes.insert(4, db.write(refused, quick=True))
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert [type(r) for r in results].count(ValueError) == 1
        await db.write(_insert("after"), quick=True)  # the writer was given back
    assert _committed(db.path) == 11


async def test_a_batch_with_a_slow_write_or_a_then_goes_whole_to_the_thread(
    db: Database, statements: Statements
) -> None:
    with anyio.fail_after(10):
        await asyncio.gather(db.write(_insert("q"), quick=True), db.write(_insert("s")))
        await db.write(_insert("t"), quick=True, then=lambda _: None)
    assert statements.threads("INSERT") == statements.threads("BEGIN") == {WRITER}
    assert _committed(db.path) == 3


async def test_a_write_lock_held_elsewhere_never_stops_the_loop(
    db: Database, statements: Statements
) -> None:
    other = connect(db.path)
    try:
        other.execute("BEGIN IMMEDIATE")  # a backup or another process holding the file
        write = asyncio.ensure_future(db.write(_insert("waited"), quick=True))
        started = time.monotonic()
        with anyio.fail_after(5):
            for _ in range(10):
                await anyio.sleep(0.02)  # the loop keeps turning
        assert time.monotonic() - started < 2 and not write.done()
        other.execute("COMMIT")
        with anyio.fail_after(10):
            await write
    finally:
        other.close()
    assert statements.threads("INSERT") == {WRITER}  # the thread waited for the lock
    assert db._writer is not None
    assert db._writer.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    with anyio.fail_after(10):
        await db.write(_insert("next"), quick=True)
    assert statements.threads("INSERT") == {WRITER, threading.current_thread().name}


async def test_a_commit_that_fails_fails_every_write_and_frees_the_writer(
    db: Database,
) -> None:
    """A deferred foreign key is checked at COMMIT, on the thread: the transaction the loop
    wrote is rolled back there and each of its writes fails."""
    assert db._writer is not None
    db._writer.execute("PRAGMA foreign_keys=ON")

    def tables(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE parent (id TEXT PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE child (pid TEXT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
        )

    await db.write(tables)

    def orphan(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO child VALUES ('nobody')")

    with anyio.fail_after(10):
        results = await asyncio.gather(
            db.write(_insert("lost"), quick=True),
            db.write(orphan, quick=True),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreError) for r in results), results
        assert "commit failed" in str(results[0])
        await db.write(_insert("kept"), quick=True)
    assert _committed(db.path) == 1


async def test_a_documents_small_append_is_quick_and_a_large_one_is_not(
    db: Database, statements: Statements
) -> None:
    store = SQLiteStore(db.path, database=db)
    key = DocKey("room", "doc")
    with anyio.fail_after(10):
        await store.append(key, [b"\x00" * 100, b"\x01" * 100])
        small = statements.threads("INSERT")
        statements.seen.clear()
        await store.append(key, [b"\x02" * (QUICK_BYTES + 1)])
        assert statements.threads("INSERT") == {WRITER}
        loaded = await store.load(key)
    assert small == {threading.current_thread().name}
    assert [seq for seq, _ in loaded.updates] == [1, 2, 3]
