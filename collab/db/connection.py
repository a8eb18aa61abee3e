"""Opening a SQLite connection the way collab uses one, and copying a live database.

Every connection is in autocommit mode (transactions are explicit ``BEGIN``s), in WAL (readers
never wait for the writer), with the configured ``synchronous`` level and a busy timeout long
enough for a backup or a compaction child holding the file for a moment.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from collab.db.errors import StoreError

_SYNCHRONOUS = {"FULL", "NORMAL", "EXTRA"}


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with collab's pragmas."""
    if synchronous.upper() not in _SYNCHRONOUS:
        raise StoreError(f"sqlite_synchronous must be one of {sorted(_SYNCHRONOUS)}")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")  # the first read of the file's header
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute("PRAGMA busy_timeout=30000")
    except BaseException:
        conn.close()
        raise
    return conn


def connect_existing(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """``connect`` to a database that must already exist (every opener but the migration
    runner): a missing file, or a missing directory (a typo in the store's path, a volume not
    mounted), is a ``StoreError`` saying so, and no empty database is left in its place."""
    if not Path(path).is_file():
        raise StoreError(
            f"{path}: no such database: `collab migrate` creates it (and applies its pending "
            "migrations)"
        )
    return connect_database(path, synchronous)


def connect_database(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """``connect``, with a file that is not a SQLite database (another file at that path, a
    truncated or overwritten database) a ``StoreError`` naming it instead of sqlite3's
    ``DatabaseError``. (The search index catches that error itself: it rebuilds a corrupt one.)"""
    try:
        return connect(path, synchronous)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: {exc}") from exc


def backup(source: Path, target: Path) -> None:
    """A consistent copy of a live database (SQLite's online backup API) into ``target``,
    made 0600 before its first byte whatever the umask (SQLite opens an empty file as a new
    database and gives its journal the same mode; an existing copy is overwritten)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        src.close()
        dst.close()
