"""One SQLite file as collab's stores use it: one writer, readers, work on worker threads, and
every write group-committed.

**One writer per file.** The document store and the meta store live in one file and a server
gives both one ``Database`` (``sqlite_database``): two writer connections on one file would
wait for each other in SQLite's busy handler, which sleeps (1, 2, 5, 10... ms) instead of
queueing, and could not share a commit.

**Group commit.** ``write(fn)`` queues ``fn``; one runner task writes what is queued in one
``BEGIN IMMEDIATE`` transaction on the writer's thread, while what arrives meanwhile waits for the
next one: one fsync for every write of every room that arrived during the previous one (the
document store's appends, chat rows, read markers, sessions...), without a timer. Each write
runs in its own savepoint, so a write that raises rolls back only its own work and its caller
gets the exception; the others commit. Nothing else writes in between the statements of one
``fn``, so read-check-write sequences stay atomic without SQL tricks (Datasette's one-writer
pattern), and a later write in a batch sees the earlier ones. A caller is answered once the
transaction holding its write is committed; if the transaction fails as a whole (COMMIT, a
disk error), every write in it fails. The runner cancelled while the writer's thread runs a
transaction (the loop's teardown) waits for the thread: what it committed is answered as
committed; writes still queued are answered with a StoreError, never left waiting.

**Writes that the event loop continues.** ``write(fn, then=..., undo=...)``: ``then(result)``
runs on the event loop right after ``fn``, inside the still open transaction; what it starts
that writes here within one turn of the loop (a document's append, queued by its journal) joins
the same transaction. So a chat post's row and the ``chat`` doc's update that shows it are
committed by one fsync, and no reader is sent one without the other. If that transaction then
fails, ``undo()`` is called (on the loop, before any later write starts): whatever ``then``
showed must be taken back. The whole transaction is one trip to the writer's thread (one
hand-over each way, the commit's real cost after the fsync): between rounds the thread waits,
transaction open, while the loop calls the ``then``s and hands over what they queued
(``Database.trips`` counts the trips).

Reads use other connections (``collab.db.readers``), so a read never waits behind a commit
(WAL readers do not block the writer), nor an API lookup behind a document's load.
Opening refuses a database with pending migrations: applying them is the caller's explicit step
(``migrate_with_backup``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

from collab import logs
from collab.db.connection import connect, connect_existing
from collab.db.errors import StoreError
from collab.db.handover import Handover
from collab.db.migrate import pending
from collab.db.readers import Readers
from collab.db.url import sqlite_path
from collab.db.writerthread import WriterThread
from collab.errors import must_propagate

T = TypeVar("T")

log = logging.getLogger("collab.db")

# Rounds of one transaction: writes, then what their ``then`` started (a doc's append) and what
# arrived meanwhile, and so on; bounded so that a steady stream of writes cannot hold a
# transaction open.
MAX_ROUNDS = 4


@dataclass(eq=False)
class _Write(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]
    then: Callable[[T], None] | None = None
    undo: Callable[[], None] | None = None
    result: Any = None
    error: BaseException | None = None
    continued: bool = False  # ``then`` was called inside the transaction


class _Aborted(Exception):
    """A write's failure ended the whole transaction (SQLite rolled it back)."""


class Database:
    """A writer and reader connections to ``path``, opened by ``open`` and closed by ``close``
    (counted: a Database shared by two stores closes when both closed it)."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self.write_lock = asyncio.Lock()  # held by the runner for each transaction
        self.commits = 0  # transactions committed (tests and metrics)
        self._writer: sqlite3.Connection | None = None
        self._readers = Readers()
        self._opened = 0
        self._open_lock = asyncio.Lock()
        self._queue: list[_Write[Any]] = []
        self._runner: asyncio.Task[None] | None = None
        # Held by the worker thread while it uses a connection, and by ``close``: a task
        # cancelled while its thread still runs SQL (asyncio's cancel does not wait for the
        # thread) must never see its connection closed under it (seen: a segfault in sqlite3).
        self._writer_busy = threading.Lock()
        self._thread = WriterThread()  # where the writer's work runs (collab.db.writerthread)
        self._finished: list[Any] | None = None  # the writes of the last transaction done

    @property
    def trips(self) -> int:
        """Trips to the writer's thread so far: one per transaction (tests and metrics)."""
        return self._thread.trips

    async def open(self) -> None:
        """Connect both (once however many share it); StoreError when the schema has pending
        migrations or is too new."""
        async with self._open_lock:
            if not self._opened:
                await self._connect()
            self._opened += 1

    async def _connect(self) -> None:
        def _open() -> tuple[sqlite3.Connection, list[sqlite3.Connection]]:
            writer = connect_existing(self.path, self.synchronous)
            try:
                if pending(writer):
                    raise StoreError(f"{self.path} has pending migrations: run `collab migrate`")
            except BaseException:
                writer.close()
                raise
            count = self._readers.count + 1  # and one for the lookups on the event loop
            readers = [connect(self.path, self.synchronous) for _ in range(count)]
            return writer, readers

        self._writer, readers = await anyio.to_thread.run_sync(_open)
        self._readers.adopt(readers)

    async def close(self) -> None:
        """Once the last user closes: wait for the queued writes and the write in flight,
        then close both connections (idempotent)."""
        if self._opened > 1:
            self._opened -= 1
            return
        self._opened = 0
        while self._runner is not None:
            await asyncio.wait([self._runner])
        async with self.write_lock:
            await anyio.to_thread.run_sync(self._close_connections)
        self._thread.stop()

    def _close_connections(self) -> None:
        with self._writer_busy:
            if self._writer is not None:
                self._writer.close()
            self._writer = None
        self._readers.close()

    # -- writes ------------------------------------------------------------------------

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        then: Callable[[T], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> T:
        """Run ``fn`` on the writer in the next group commit; its result once committed. A
        raise rolls back ``fn``'s work only. ``then`` and ``undo``: see the module docstring
        (they must not raise; ``then`` is not called when ``fn`` raised)."""
        loop = asyncio.get_running_loop()
        job: _Write[T] = _Write(fn, loop.create_future(), then, undo)
        self._queue.append(job)
        if self._runner is None:
            self._runner = loop.create_task(self._run(), context=logs.detached())
        return await job.future

    async def write_locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` alone in one transaction, for a caller that holds ``write_lock``."""
        return await self._thread.run(self._transaction, fn)

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
            self.commits += 1
            return result

    async def _run(self) -> None:
        try:
            while self._queue:
                async with self.write_lock:
                    await self._batch()
        finally:
            self._runner = None
            if self._queue:  # cancelled (at shutdown, the loop's teardown): answer everyone
                left, self._queue = self._queue, []
                reason = "store is closed" if self._opened == 0 else "the writer was stopped"
                for job in left:
                    _settle(job, StoreError(reason))

    def _take(self, continued: bool = True) -> list[_Write[Any]]:
        """The queued writes (their callers cancelled: dropped); without ``continued``, only
        those without a ``then``, the others staying queued in order for the next transaction
        (writes queued at once are concurrent: any order of them is a valid one)."""
        jobs = [job for job in self._queue if not job.future.done()]
        self._queue = [] if continued else [job for job in jobs if job.then is not None]
        return jobs if continued else [job for job in jobs if job.then is None]

    async def _batch(self) -> None:
        """One transaction in one trip to the writer's thread: the queued writes, then (rounds)
        what their ``then`` started, which the event loop hands over mid-trip."""
        jobs = self._take()
        if not jobs:
            return
        written = list(jobs)  # and the later rounds', added by the writer's thread
        loop = asyncio.get_running_loop()
        try:
            await self._thread.run(self._rounds, jobs, written, loop)
        except asyncio.CancelledError as exc:
            # A bare cancel (the loop's teardown) gets through the thread's shield while the
            # transaction runs there, and the thread goes on: what it did decides. Once it is
            # idle, a transaction it finished was committed: answered as such, not undone.
            await self._thread.run(_idle)
            if self._finished is not written:
                await self._abandon(written, exc)
                return
            self._finished = None
            self._answer(written)
            raise
        except BaseException as exc:
            await self._abandon(written, exc)
            return
        self._finished = None
        self._answer(written)

    def _answer(self, written: list[_Write[Any]]) -> None:
        for job in written:
            if job.error is not None:
                _settle(job, job.error)
            elif not job.future.done():
                job.future.set_result(job.result)

    def _rounds(
        self, jobs: list[_Write[Any]], written: list[_Write[Any]], loop: asyncio.AbstractEventLoop
    ) -> None:
        """On the writer's thread: BEGIN, each round's writes in their savepoints, COMMIT.
        Between two rounds the thread waits for the loop to call the ``then``s and hand over
        what they queued (``Handover``): no return to the loop's runner in between."""
        with self._writer_busy:
            conn = self._writer
            if conn is None:
                raise StoreError("store is closed")
            if len(jobs) == 1 and jobs[0].then is None:
                self._run_alone(conn, jobs[0])
                self._finished = written
                return
            conn.execute("BEGIN IMMEDIATE")
            rounds = 0
            while True:
                rounds += 1
                self._run_writes(conn, jobs)
                if rounds >= MAX_ROUNDS or all(job.then is None for job in jobs):
                    break
                handover = Handover()
                try:
                    loop.call_soon_threadsafe(self._next_round, jobs, rounds, handover)
                except RuntimeError:  # the loop is closed
                    raise StoreError("store is closed") from None
                jobs = handover.wait()
                written += jobs
            conn.execute("COMMIT")
            self.commits += 1
            self._finished = written

    def _next_round(self, jobs: list[_Write[Any]], rounds: int, handover: Handover) -> None:
        """On the loop, between two rounds: call the ``then``s, and one turn later (a journal
        woken by one queues its append) hand the queued writes over. The last round takes no
        write with a ``then``: its follow-up would miss this transaction."""
        if not handover.start():
            return  # the thread gave up waiting: the transaction fails, nothing was shown
        try:
            self._continue(jobs)
        except BaseException as exc:
            handover.give(exc)
            raise
        asyncio.get_running_loop().call_soon(self._hand_over, rounds + 1 < MAX_ROUNDS, handover)

    def _hand_over(self, continued: bool, handover: Handover) -> None:
        jobs = self._take(continued)
        if not handover.give(jobs):  # not taken after all: they go first in the next one
            self._queue[:0] = jobs

    def _continue(self, jobs: list[_Write[Any]]) -> None:
        for job in jobs:
            if job.then is None or job.error is not None:
                continue
            job.continued = True
            try:
                job.then(job.result)
            except BaseException as exc:
                if must_propagate(exc):
                    raise
                log.exception("a write's continuation failed (it must not raise)")

    def _run_writes(self, conn: sqlite3.Connection, jobs: list[_Write[Any]]) -> None:
        """On the writer's thread, in the open transaction: each write in its savepoint."""
        for job in jobs:
            conn.execute("SAVEPOINT write")
            try:
                job.result = job.fn(conn)
            except BaseException as exc:
                if not conn.in_transaction:
                    raise _Aborted(repr(exc)) from exc
                conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
                job.error = exc
            else:
                conn.execute("RELEASE write")

    def _run_alone(self, conn: sqlite3.Connection, job: _Write[Any]) -> None:
        """A transaction of one write: no savepoint, its failure rolls the whole back."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            job.result = job.fn(conn)
        except BaseException as exc:
            if not conn.in_transaction:
                raise _Aborted(repr(exc)) from exc
            conn.execute("ROLLBACK")
            job.error = exc
            return
        conn.execute("COMMIT")
        self.commits += 1

    async def _abandon(self, written: list[_Write[Any]], exc: BaseException) -> None:
        """The transaction failed as a whole: roll back, take back what was shown, fail all."""
        log.error("a transaction failed, %d writes lost: %r", len(written), exc)

        def _rollback() -> None:
            with self._writer_busy:
                conn = self._writer
                if conn is not None and conn.in_transaction:
                    conn.execute("ROLLBACK")

        try:
            await self._thread.run(_rollback)
        except Exception:
            log.exception("rollback failed")
        for job in written:
            if job.continued and job.undo is not None:
                try:
                    job.undo()
                except Exception:
                    log.exception("a write's undo failed (it must not raise)")
        reason = str(exc) if isinstance(exc, StoreError) else f"commit failed: {exc!r}"
        for job in written:
            _settle(job, job.error if job.error is not None else StoreError(reason))
        if not isinstance(exc, Exception):
            raise exc

    # -- reads -------------------------------------------------------------------------

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a reader connection (``collab.db.readers``); it opens a transaction
        if it needs a consistent view across statements."""
        return await self._readers.run(fn)

    async def lookup(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``read`` for a lookup of a few rows by key: on the event loop while nothing holds
        the lookups' connection, which is much cheaper than a worker thread's round trip."""
        return await self._readers.lookup(fn)


def _idle() -> None:
    """Nothing: a trip that returns once the writer's thread finished what came before it."""


def _settle(job: _Write[Any], exc: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(exc)
        job.future.exception()  # retrieved: a caller that went away leaves no warning


def sqlite_database(url: str, synchronous: str = "FULL") -> Database | None:
    """The one Database for both stores of a store URL (not yet opened), or None when the URL
    is not SQLite: a server passes it to ``open_store`` and ``open_meta_store``."""
    path = sqlite_path(url)
    return None if path is None else Database(path, synchronous)
