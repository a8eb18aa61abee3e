"""SQLiteMetaStore: every record kind's SQLite class in one object, over one database.

The meta tables live in the same SQLite file as the documents (``migrations/sqlite/``), written
in a server through the same ``collab.db.Database`` (``collab.db.sqlite_database``: one writer
per file, and one group commit for both stores); the app applies migrations before opening, and
a database with pending ones is refused. Each kind (``users``, ``sessions``, ``rooms``, ...) is
a class of its own over a shared ``collab.db.Database``; this composite inherits them all, so
callers keep one ``meta`` object.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from collab.db import Database
from collab.meta.sqlite.api_tokens import SQLiteApiTokens
from collab.meta.sqlite.audit import SQLiteAudit
from collab.meta.sqlite.bots import SQLiteBots, SQLiteIncomingHooks
from collab.meta.sqlite.cache import SQLiteCache
from collab.meta.sqlite.dms import SQLiteDms
from collab.meta.sqlite.doc_meta import SQLiteDocMetas
from collab.meta.sqlite.files import SQLiteFiles
from collab.meta.sqlite.inbox import SQLiteInbox
from collab.meta.sqlite.invites import SQLiteInvites
from collab.meta.sqlite.messages import SQLiteMessages
from collab.meta.sqlite.purge import SQLitePurge
from collab.meta.sqlite.reads import SQLiteReads
from collab.meta.sqlite.room_tokens import SQLiteRoomTokenRevocations
from collab.meta.sqlite.rooms import SQLiteRooms
from collab.meta.sqlite.sessions import SQLiteSessions
from collab.meta.sqlite.tickets import SQLiteTickets
from collab.meta.sqlite.users import SQLiteUsers
from collab.meta.sqlite.webhooks import SQLiteWebhooks

__all__ = ["SQLiteMetaStore"]


class SQLiteMetaStore(
    SQLiteUsers,
    SQLiteSessions,
    SQLiteRooms,
    SQLiteDms,
    SQLiteInvites,
    SQLiteDocMetas,
    SQLiteMessages,
    SQLiteFiles,
    SQLiteReads,
    SQLiteInbox,
    SQLiteApiTokens,
    SQLiteTickets,
    SQLiteRoomTokenRevocations,
    SQLiteCache,
    SQLiteAudit,
    SQLitePurge,
    SQLiteBots,
    SQLiteIncomingHooks,
    SQLiteWebhooks,
):
    """The MetaStore in the same SQLite file as the documents; ``clock`` is injectable."""

    def __init__(
        self,
        path: Path,
        synchronous: str = "FULL",
        *,
        clock: Callable[[], float] = time.time,
        database: Database | None = None,
    ) -> None:
        super().__init__(database or Database(path, synchronous), clock=clock)
        self.path = path
        self.synchronous = synchronous

    async def open(self) -> None:
        """Connect, then give a handle to users made before handles existed (0006)."""
        await self.db.open()
        await self.assign_missing_handles()

    async def close(self) -> None:
        await self.db.close()
