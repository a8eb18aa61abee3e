"""A Database's reader connections: ``READERS`` of them, one read each at a time, on worker
threads. In WAL mode readers never wait for the writer, and with more than one a document's
cold load (a large snapshot) does not hold up the API's lookups.

A lookup of a few rows by key (``lookup``: a user, a room, a membership) takes microseconds in
SQLite, and a hop to a worker thread and back costs far more (the GIL handed over twice, the
event loop woken from another thread): those run on the event loop itself, on a connection of
their own with no busy timeout, and fall back to a worker thread when that connection is busy
or SQLite is (a checkpoint resetting the WAL), so the loop never waits for a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import anyio.to_thread

from collab.db.errors import StoreError

T = TypeVar("T")

READERS = 2
_BUSY_CODES = ("locked", "busy")


@dataclass(eq=False)
class _Reader:
    """A reader connection; ``busy`` is held by the thread using it, and by ``close``."""

    conn: sqlite3.Connection
    busy: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False


class Readers:
    def __init__(self, count: int = READERS) -> None:
        self.count = count
        self._all: list[_Reader] = []
        self._idle: list[_Reader] = []  # those no thread is using
        self._limiter = anyio.CapacityLimiter(count)
        self._now: _Reader | None = None  # the lookups' connection, used on the event loop

    def adopt(self, connections: list[sqlite3.Connection]) -> None:
        """Use these (``count`` + 1) connections, freshly opened: the last one for lookups."""
        *threaded, now = connections
        now.execute("PRAGMA busy_timeout=0")  # the loop never waits for a lock
        self._now = _Reader(now)
        self._all = [_Reader(conn) for conn in threaded]
        self._idle = list(self._all)

    def close(self) -> None:
        """On a worker thread: wait for each connection's read in flight, then close it (a
        task cancelled while its thread still runs SQL must never see its connection closed
        under it: a segfault in sqlite3)."""
        readers, self._all, self._idle = self._all, [], []
        if self._now is not None:
            readers.append(self._now)
        for reader in readers:
            with reader.busy:
                reader.conn.close()
                reader.closed = True

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on an idle connection, on a worker thread; StoreError once closed."""

        def _run() -> T:
            try:
                reader = self._idle.pop()  # the limiter leaves one for each thread here
            except IndexError:
                raise StoreError("store is closed") from None
            try:
                with reader.busy:
                    if reader.closed:
                        raise StoreError("store is closed")
                    return fn(reader.conn)
            finally:
                if not reader.closed:
                    self._idle.append(reader)

        return await anyio.to_thread.run_sync(_run, limiter=self._limiter)

    async def lookup(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` (a read of a few rows by key) on the event loop, or like ``run`` when the
        lookups' connection is in use or SQLite says it is busy."""
        reader = self._now
        if reader is not None and reader.busy.acquire(blocking=False):
            try:
                if not reader.closed:
                    return fn(reader.conn)
            except sqlite3.OperationalError as exc:
                if not any(code in str(exc).lower() for code in _BUSY_CODES):
                    raise
            finally:
                reader.busy.release()
        return await self.run(fn)
