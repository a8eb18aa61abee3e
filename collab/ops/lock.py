"""Who holds a database: every ``collab serve`` keeps a shared lock on ``<db>.lock``.

``flock`` locks die with their process (also on ``kill -9``), so a stale lock cannot refuse a
restore forever, and several servers may share one database (shared locks). ``collab restore``
takes the exclusive lock: it fails while any server runs, and a server started during a restore
refuses to start (``collab search reindex`` takes it too when it can, to own the index).
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from collab.db import StoreError, sqlite_path
from collab.settings import Settings


class DatabaseInUse(StoreError):
    """Another process holds the database's lock (a running server, or a restore)."""


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def _lock(db: Path, mode: int) -> IO[str] | None:
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock_path(db), "a+", encoding="ascii")  # held by the caller
    except OSError as exc:  # a parent that is a file, a directory this user may not write
        raise StoreError(f"{db}: cannot make its lock file {lock_path(db)}: {exc}") from exc
    try:
        fcntl.flock(f, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


def hold_server_lock(settings: Settings) -> IO[str] | None:
    """Taken by ``serve`` for its lifetime; None for a store without files."""
    db = sqlite_path(settings.store)
    if db is None:
        return None
    f = _lock(db, fcntl.LOCK_SH)
    if f is None:
        raise DatabaseInUse(
            f"{db} is being restored or reindexed (lock {lock_path(db)}): start after it ends"
        )
    return f


def try_exclusive(db: Path) -> IO[str] | None:
    """The exclusive lock (close the file to release it), or None while a server holds it."""
    return _lock(db, fcntl.LOCK_EX)
