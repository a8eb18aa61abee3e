"""Quick transactions: the statements on the event loop, only the COMMIT on the writer's thread.

A group commit handed whole to the writer's thread pays a hand-over of the GIL for each of its
``sqlite3`` calls (BEGIN, the append's SELECT, INSERT and UPDATE, COMMIT): every call releases
the GIL, and on a busy single core each release the loop is waiting for is a context switch
(bench/profiles/CPU-PER-UPDATE.md counted about eight per commit). The statements of a small
write cost microseconds: they only change pages in SQLite's cache. What takes time is the
COMMIT, which writes the WAL frames and waits for their fsync; that alone goes to the thread,
in one trip.

A transaction is quick only when every write in it is marked ``quick`` by its caller (a few
rows by key: a document's append of small updates) and none has a ``then`` (whose rounds wait
for the loop on the thread, ``collab.db.database``). The loop never waits for a lock here:
``BEGIN IMMEDIATE`` is tried with no busy timeout, and if another connection holds the file's
write lock (a backup, a compaction child, another process) nothing is begun and the
transaction goes to the thread, which waits for the lock as before.
"""

from __future__ import annotations

import sqlite3

from collab.db.connection import BUSY_TIMEOUT_MS

QUICK_BYTES = 64 * 1024  # an append of at most this many bytes is quick (collab.store.sqlite)


def begin_now(conn: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` on ``conn`` if the write lock is free at once; False, nothing begun,
    if it is held (or the statement failed otherwise: the thread's attempt will say why)."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return True


def roll_back(conn: sqlite3.Connection) -> None:
    """End the transaction a failed write left open (if SQLite did not end it already)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
