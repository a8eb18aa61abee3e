"""PostgresMetaStore: every record kind's SQL class (``collab.meta.sql``) in one object, over a
PostgreSQL database that several ``collab serve`` nodes share.

The tables are ``migrations/postgresql/0002_meta.sql`` onwards, beside the documents' (0001),
applied by ``collab migrate`` only: opening a database with pending migrations is refused.
The kinds' code is SQLite's; what SQLite's one writer guaranteed, SERIALIZABLE transactions
retried on conflict (or, for the busiest rows, a lock per key) guarantee here
(``base.PostgresBackend``), across nodes.

    base.py    PostgresBackend, PostgresTx, POSTGRES: the kinds' SQL on a pool, in threads
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio.to_thread

from collab.db.postgres import SyncPgDatabase
from collab.meta.postgres.base import PostgresBackend
from collab.meta.sql import SqlMetaStore

__all__ = ["PostgresMetaStore"]


class PostgresMetaStore(SqlMetaStore):
    """The MetaStore in the PostgreSQL database ``url`` names; ``clock`` is injectable."""

    def __init__(
        self, url: str, *, max_connections: int = 8, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = SyncPgDatabase(url, min_size=1, max_size=max_connections)
        super().__init__(PostgresBackend(self.db), clock=clock)
        self.url = url

    async def open(self) -> None:
        """Connect (StoreError when migrations are pending), then give a handle to any user
        without one."""
        await anyio.to_thread.run_sync(self.db.open)
        await self.assign_missing_handles()

    async def close(self) -> None:
        """Wait for the transactions in flight, then close every connection (idempotent)."""
        await anyio.to_thread.run_sync(self.db.close)
