"""The PostgreSQL backend of the SQL kinds: a pool of sync connections used from worker threads
(``collab.db.postgres.SyncPgDatabase``), so the kinds' code is SQLite's.

Several nodes write at once, so the SQLite backend's promise (nothing interleaves with a write
function) comes from PostgreSQL's SERIALIZABLE isolation instead of one writer: a transaction
that PostgreSQL cannot fit in a serial order with the others fails with a serialization failure
(or a deadlock, or a unique key taken by a racing transaction) and is run again from the start,
on a fresh snapshot, where its checks see what the winner wrote. Two nodes posting into one room
thus get gapless seqs and one row per client id; two owners demoting each other leave one owner.

A write that names a ``serial`` key (every write of one room's chat) runs instead in READ
COMMITTED under a transaction-scoped advisory lock on the key: writers of one room queue, none
has to be retried, and each statement sees what the previous one committed.

Statements are the kinds' portable SQL with ``?`` placeholders, turned into psycopg's ``%s``
here (a literal ``%`` is doubled); ``POSTGRES`` holds the few spellings that differ.

PostgreSQL's ``text`` cannot hold NUL, and psycopg refuses to send a string that has one: a key
from a request (``/messages/a%00b``) would fail the statement, a store error, where SQLite
finds nothing. No stored text can equal such a string, so in a statement that only selects or
deletes rows (its strings are compared, never stored), it is bound as NULL, which equals
nothing either (``bindable``): the lookup finds nothing, as on SQLite. The kinds' SQL never
tests a parameter for NULL (``? IS NULL``) in such a statement. A write that would store one
still fails.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import psycopg
import psycopg.errors
from psycopg.rows import TupleRow

from collab.db import StoreError
from collab.db.postgres import SyncPgDatabase
from collab.meta.sql.base import Dialect, IntegrityError

T = TypeVar("T")

POSTGRES = Dialect(
    "postgresql",
    greatest_function="greatest",
    nocase_template="collab_ascii_fold({column}) = collab_ascii_fold(?)",
    claim_lock=" FOR UPDATE SKIP LOCKED",
    key_lock="SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
)

# A transaction that lost a race is run at most this many times (then the error stands):
# conflicts are short, and each retry waits a little longer, at random, so racing nodes stop
# meeting. A unique key that a racing transaction took first (PostgreSQL may say so instead of
# a serialization failure) is such a race too: the next run's checks see the winner's row. The
# kinds catch the IntegrityError they expect (a handle taken) inside the transaction, so only
# races reach this loop.
MAX_ATTEMPTS = 30
_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
# A transaction-scoped advisory lock on the key's 64-bit hash (two keys sharing a hash only
# wait for each other).
_SERIAL_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


@functools.lru_cache(maxsize=1024)
def to_psycopg(sql: str) -> str:
    """The kinds' ``?`` placeholders as psycopg's ``%s`` (the kinds write no ``?`` in literals)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _compares_only(sql: str) -> bool:
    """Whether ``sql`` only selects or deletes rows: its parameters are compared, not stored."""
    head = sql.lstrip()[:6].upper()
    return head in ("SELECT", "DELETE")


def bindable(sql: str, params: Sequence[Any]) -> tuple[Any, ...]:
    """``params`` as PostgreSQL can take them for ``sql``: in a statement that only compares
    them, a string holding NUL (which no stored text equals) becomes NULL (equal to nothing)."""
    values = tuple(params)
    if not any(isinstance(v, str) and "\x00" in v for v in values) or not _compares_only(sql):
        return values
    return tuple(None if isinstance(v, str) and "\x00" in v else v for v in values)


class PostgresTx:
    """A write transaction on one pooled connection; IntegrityError as the kinds know it."""

    dialect = POSTGRES

    def __init__(self, conn: psycopg.Connection[TupleRow]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[TupleRow]:
        try:
            return self.conn.execute(to_psycopg(sql), bindable(sql, params))
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc


def _retryable(exc: StoreError) -> bool:
    return isinstance(exc.__cause__, _RETRYABLE)


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.001 * 2 ** min(attempt, 6)))


class PostgresBackend:
    """The kinds' ``Backend`` over a ``SyncPgDatabase``; at most ``db.max_size`` threads at
    once, so no thread waits for a pooled connection while holding a worker slot."""

    dialect = POSTGRES

    def __init__(self, db: SyncPgDatabase) -> None:
        self.db = db
        self.limiter = anyio.CapacityLimiter(db.max_size)
        self.retries = 0  # transactions run again after losing a race (an observation)
        self._counting = threading.Lock()
        # Per serial key, held only while a write with a ``then`` runs (dropped when unused).
        self._serial_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def write(
        self,
        fn: Callable[[PostgresTx], T],
        *,
        serial: str | None = None,
        then: Callable[[T], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> T:
        """``then`` runs after the commit (a chat row, then the doc's update that shows it: two
        commits, the row's first); ``undo`` is never needed. Writes of one ``serial`` key that
        have a ``then`` queue on this node's lock for the key too, so their ``then`` runs in
        the order of their commits."""
        if then is None:
            return await anyio.to_thread.run_sync(self._write, fn, serial, limiter=self.limiter)
        lock = self._ordered(serial)  # a local: the weak dict keeps it while anyone holds it
        async with lock:
            result = await anyio.to_thread.run_sync(self._write, fn, serial, limiter=self.limiter)
            then(result)
            return result

    def _ordered(self, serial: str | None) -> asyncio.Lock:
        """This node's lock for ``serial`` (a fresh one without a key: nothing to order)."""
        if serial is None:
            return asyncio.Lock()
        lock = self._serial_locks.get(serial)
        if lock is None:
            lock = self._serial_locks[serial] = asyncio.Lock()
        return lock

    def _write(self, fn: Callable[[PostgresTx], T], serial: str | None) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                if serial is None:
                    with self.db.transaction("SERIALIZABLE") as conn:
                        return fn(PostgresTx(conn))
                # The lock before anything is read; READ COMMITTED, because a SERIALIZABLE
                # snapshot would be taken when the lock is asked for, before the previous
                # holder's commit.
                with self.db.transaction("READ COMMITTED") as conn:
                    conn.execute(_SERIAL_LOCK, (serial,))
                    return fn(PostgresTx(conn))
            except StoreError as exc:
                if not _retryable(exc) or attempt >= MAX_ATTEMPTS:
                    raise
            except IntegrityError:
                if attempt >= MAX_ATTEMPTS:
                    raise
            with self._counting:
                self.retries += 1
            _backoff(attempt)

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def _run() -> list[tuple[Any, ...]]:
            with self.db.transaction() as conn:
                return conn.execute(to_psycopg(sql), bindable(sql, params)).fetchall()

        return await anyio.to_thread.run_sync(_run, limiter=self.limiter)

    async def lookup(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A lookup is a read like any other here (a network round trip either way)."""
        return await self.read(sql, params)
