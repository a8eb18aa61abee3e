"""A PostgreSQL database as collab's stores use it: a pool of connections, one transaction per
block of work.

    PgDatabase      asyncio: a psycopg_pool.AsyncConnectionPool (the DocumentStore's path)
    SyncPgDatabase  the same over a sync ConnectionPool, for code that runs its SQL on worker
                    threads (the MetaStore's kinds share their code with SQLite that way)

Both have ``open``, ``close``, ``ping`` and ``transaction(isolation=None)``: a context manager
yielding a connection inside one transaction, committed when the block ends and rolled back
when it raises. Every connection is in autocommit mode outside those blocks, so a transaction
is exactly a block and a pooled connection never carries one into the next user.

Facts every connection gets (the pool's ``configure``): ``synchronous_commit = on`` whatever
the server's default, because "saved" promises that the update is committed and flushed in
PostgreSQL; ``idle_in_transaction_session_timeout`` (``IDLE_IN_TRANSACTION_TIMEOUT``) unless
one is set already, so a node stopped inside a transaction frees its locks;
``application_name`` ``collab`` unless the URL names one (a node's sessions are then told
apart in ``pg_stat_activity``). A connection the server dropped (a restart,
``pg_terminate_backend``) is found by the pool's check before it is handed out, and replaced:
a restarted server costs the transactions in flight, never the process. The asyncio pool's
check (``check_quiet``) asks the server (an empty query, a round trip) only when the idle
connection's socket has something to read: a dropped session has its last words (the FATAL
error, the end of the stream) waiting there, a live idle one has nothing.

Every psycopg failure leaves as ``collab.db.StoreError``. Opening refuses a database with
pending migrations, as SQLite's ``Database`` does: ``collab migrate`` applies them
(``collab.db.pgmigrate``).
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import anyio.to_thread
import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from collab.db.errors import StoreError
from collab.db.pgmigrate import check_schema
from collab.settings import masked

Isolation = Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]
_SET_ISOLATION: dict[Isolation, str] = {
    "READ COMMITTED": "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "REPEATABLE READ": "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "SERIALIZABLE": "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
}

_CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "fallback_application_name": "collab",
}
# Seconds a transaction may sit idle (the server waiting for its next statement) before the
# server ends it: collab's transactions are a few statements in a row, so only a node that
# stopped in one (paused, cut off from the database while its connection stays open) gets
# there, and what it had locked (a room's chat, a doc's row) is freed for the other nodes.
# A timeout the URL (``options=-c ...``), the role or the database sets is kept.
IDLE_IN_TRANSACTION_TIMEOUT = 10
_CONFIGURE = (
    "SET synchronous_commit = on;"
    " SELECT set_config('idle_in_transaction_session_timeout',"
    f" '{IDLE_IN_TRANSACTION_TIMEOUT}s', false)"
    " WHERE current_setting('idle_in_transaction_session_timeout') = '0'"
)
# A ping answers /readyz, which a balancer probes with a short deadline of its own: a server
# that gives no connection within this is down, whatever the pool would wait for a commit.
PING_TIMEOUT = 2.0
# psycopg_pool retries a failed connection with a doubling delay and no ceiling: after a
# server outage of T seconds, the next attempt could come up to T seconds after it is back.
# Giving a retry series up after this many seconds caps that: the next checkout (a commit, a
# /readyz ping) starts a fresh series at once.
RECONNECT_WINDOW = 5.0


async def check_quiet(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's check on every checkout, without a round trip while nothing says one is
    needed: a connection whose socket has bytes (or the end of the stream) waiting, or that
    psycopg knows is closed, gets psycopg_pool's own check (which raises if it is dead)."""
    if not conn.closed:
        try:
            waiting, _, _ = select.select([conn.pgconn.socket], [], [], 0)
        except (OSError, ValueError, psycopg.OperationalError):
            waiting = [True]
        if not waiting:
            return
    await AsyncConnectionPool.check_connection(conn)


class _Pooled:
    """What both twins share: the URL, the pool's sizes and timeout, error wording."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, timeout: float = 10.0):
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout  # seconds to wait for a connection (open, and each checkout)

    @property
    def display(self) -> str:
        """The URL as it may be printed (its password hidden)."""
        return str(masked("store", self.url))

    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"{self.display}: {exc}")

    def _closed(self) -> StoreError:
        return StoreError("store is closed")


class PgDatabase(_Pooled):
    """An asyncio pool of autocommit connections to ``url``, opened by ``open``."""

    _pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] | None = None

    async def open(self) -> None:
        """Check the schema (StoreError when migrations are pending), then fill the pool."""
        await anyio.to_thread.run_sync(check_schema, self.url)

        async def configure(conn: psycopg.AsyncConnection[TupleRow]) -> None:
            await conn.execute(_CONFIGURE)

        pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            kwargs=_CONNECTION_KWARGS,
            configure=configure,
            check=check_quiet,
            timeout=self.timeout,
            reconnect_timeout=RECONNECT_WINDOW,
            name="collab",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=self.timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise self._error(exc) from exc
        self._pool = pool

    async def close(self) -> None:
        """Wait for the connections in use to come back, then close them all (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> None:
        async with self.transaction(wait=PING_TIMEOUT) as conn:
            await conn.execute("SELECT 1")

    def pool_stats(self) -> dict[str, int]:
        """psycopg_pool's counters and sizes ({} while closed): plain reads, no I/O."""
        pool = self._pool
        return pool.get_stats() if pool is not None else {}

    @contextlib.asynccontextmanager
    async def transaction(
        self, isolation: Isolation | None = None, *, wait: float | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        """A connection inside one transaction: committed at the end of the block, rolled
        back if it raises. psycopg errors (the commit's included) leave as StoreError, and
        so does waiting more than ``wait`` seconds (default: the pool's timeout) for a
        connection."""
        if self._pool is None:
            raise self._closed()
        try:
            async with self._pool.connection(wait) as conn, conn.transaction():
                if isolation is not None:
                    await conn.execute(_SET_ISOLATION[isolation])
                yield conn
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    @contextlib.asynccontextmanager
    async def autocommit(
        self, *, wait: float | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        """A connection outside any transaction block: each statement commits on its own (no
        BEGIN and COMMIT round trips, for a hot path that is one statement). Errors as in
        ``transaction``."""
        if self._pool is None:
            raise self._closed()
        try:
            async with self._pool.connection(wait) as conn:
                yield conn
        except psycopg.Error as exc:
            raise self._error(exc) from exc


class SyncPgDatabase(_Pooled):
    """``PgDatabase``'s twin over a sync pool: call it from worker threads, never from the
    event loop (every method blocks)."""

    _pool: ConnectionPool[psycopg.Connection[TupleRow]] | None = None

    def open(self) -> None:
        check_schema(self.url)

        def configure(conn: psycopg.Connection[TupleRow]) -> None:
            conn.execute(_CONFIGURE)

        pool: ConnectionPool[psycopg.Connection[TupleRow]] = ConnectionPool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            kwargs=_CONNECTION_KWARGS,
            configure=configure,
            check=ConnectionPool.check_connection,
            timeout=self.timeout,
            reconnect_timeout=RECONNECT_WINDOW,
            name="collab",
            open=False,
        )
        try:
            pool.open(wait=True, timeout=self.timeout)
        except psycopg.Error as exc:
            pool.close()
            raise self._error(exc) from exc
        self._pool = pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def ping(self) -> None:
        with self.transaction(wait=PING_TIMEOUT) as conn:
            conn.execute("SELECT 1")

    @contextlib.contextmanager
    def transaction(
        self, isolation: Isolation | None = None, *, wait: float | None = None
    ) -> Iterator[psycopg.Connection[TupleRow]]:
        if self._pool is None:
            raise self._closed()
        try:
            with self._pool.connection(wait) as conn, conn.transaction():
                if isolation is not None:
                    conn.execute(_SET_ISOLATION[isolation])
                yield conn
        except psycopg.Error as exc:
            raise self._error(exc) from exc
