"""A Database's reader connections: ``READERS`` of them, one read each at a time, on worker
threads. In WAL mode readers never wait for the writer, and with more than one a document's
cold load (a large snapshot) does not hold up the API's lookups.
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

    def adopt(self, connections: list[sqlite3.Connection]) -> None:
        """Use these (``count``) connections, freshly opened."""
        self._all = [_Reader(conn) for conn in connections]
        self._idle = list(self._all)

    def close(self) -> None:
        """On a worker thread: wait for each connection's read in flight, then close it (a
        task cancelled while its thread still runs SQL must never see its connection closed
        under it: a segfault in sqlite3)."""
        readers, self._all, self._idle = self._all, [], []
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
