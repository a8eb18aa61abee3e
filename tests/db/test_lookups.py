"""Lookups (``Database.lookup``): a read of a few rows by key runs on the event loop, on a
connection of its own, and on a worker thread instead whenever that connection is taken or
SQLite says it is busy; a closed database refuses them like any read."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from collab.db import Database, StoreError, migrate_with_backup

pytestmark = pytest.mark.anyio


def _where(conn: sqlite3.Connection) -> tuple[int, int]:
    """(the thread that ran it, the rows of the cache)."""
    count = int(conn.execute("SELECT count(*) FROM cache").fetchone()[0])
    return threading.get_ident(), count


async def test_a_lookup_runs_on_the_event_loop_and_sees_what_was_committed(db: Database) -> None:
    await db.write(lambda conn: conn.execute("INSERT INTO cache VALUES ('a', 'v', 0)"))
    assert await db.lookup(_where) == (threading.get_ident(), 1)
    thread, count = await db.read(_where)  # a read hops to a worker thread
    assert thread != threading.get_ident() and count == 1
    # The loop never waits for a lock on the lookups' connection.
    timeout = await db.lookup(lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()[0])
    assert timeout == 0


async def test_a_lookup_whose_connection_is_taken_runs_on_a_worker_thread(db: Database) -> None:
    now = db._readers._now
    assert now is not None
    with now.busy:  # as a close in progress (on a worker thread) holds it
        thread, count = await db.lookup(_where)
    assert thread != threading.get_ident() and count == 0
    assert (await db.lookup(_where))[0] == threading.get_ident()  # and back


async def test_a_lookup_that_sqlite_finds_busy_is_retried_on_a_worker_thread(
    db: Database,
) -> None:
    loop_thread = threading.get_ident()
    tries: list[int] = []

    def busy_on_the_loop(conn: sqlite3.Connection) -> tuple[int, int]:
        tries.append(threading.get_ident())
        if threading.get_ident() == loop_thread:
            raise sqlite3.OperationalError("database is locked")
        return _where(conn)

    thread, _ = await db.lookup(busy_on_the_loop)
    assert tries == [loop_thread, thread] and thread != loop_thread


async def test_a_lookups_other_errors_are_raised_as_they_are(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await db.lookup(lambda conn: conn.execute("SELECT * FROM nothing_here").fetchall())
    assert (await db.lookup(_where))[0] == threading.get_ident()  # its connection let go


async def test_a_closed_database_refuses_lookups(tmp_path: Path) -> None:
    migrate_with_backup(tmp_path / "c.db")
    database = Database(tmp_path / "c.db")
    with pytest.raises(StoreError, match="closed"):
        await database.lookup(_where)  # never opened
    await database.open()
    await database.close()
    with pytest.raises(StoreError, match="closed"):
        await database.lookup(_where)
