"""``MetaStore``: every record kind's Protocol in one, and the backend a store URL names.

Each backend provides one composite object (``MemoryMetaStore``, ``SQLiteMetaStore``,
``PostgresMetaStore``) with every method, so ``state.meta.get_user(...)`` works wherever the
store is passed around; a consumer that needs one kind only can ask for its small Protocol
(``Users``, ``Sessions``, ...) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from collab.db import Database, StoreError, postgres_url, sqlite_path
from collab.meta.api_tokens import ApiTokens
from collab.meta.audit import Audit
from collab.meta.bots import Bots
from collab.meta.cache import Cache
from collab.meta.dms import Dms
from collab.meta.doc_meta import DocMetas
from collab.meta.files import Files
from collab.meta.inbox import Inbox
from collab.meta.incoming_hooks import IncomingHooks
from collab.meta.invites import Invites
from collab.meta.messages import Messages
from collab.meta.purge import Purge
from collab.meta.reads import Reads
from collab.meta.room_tokens import RoomTokenRevocations
from collab.meta.rooms import Rooms
from collab.meta.sessions import Sessions
from collab.meta.tickets import Tickets
from collab.meta.users import Users
from collab.meta.webhooks import Webhooks


class MetaStore(
    Users,
    Sessions,
    Rooms,
    Dms,
    Invites,
    DocMetas,
    Messages,
    Files,
    Reads,
    Inbox,
    ApiTokens,
    Tickets,
    RoomTokenRevocations,
    Cache,
    Audit,
    Purge,
    Bots,
    IncomingHooks,
    Webhooks,
    Protocol,
):
    """Everything persistent that is not a Yjs document, opened and closed as one."""

    async def open(self) -> None:
        """Connect (applying nothing: migrations are the caller's explicit step)."""

    async def close(self) -> None:
        """Wait for the write in flight, then release every resource."""


def open_meta_store(
    url: str, *, synchronous: str = "FULL", database: Database | None = None
) -> MetaStore:
    """The MetaStore a store URL names (not yet opened): the same URL as ``open_store``, so one
    ``--store`` names all persistent state, in one SQLite file (written through ``database``
    when given: ``collab.db.sqlite_database``, shared with the document store) or one
    PostgreSQL database."""
    if url in {"memory://", "memory:"}:
        from collab.meta.memory import MemoryMetaStore

        return MemoryMetaStore()
    if postgres_url(url) is not None:
        from collab.meta.postgres import PostgresMetaStore

        return PostgresMetaStore(url)
    path = sqlite_path(url)
    if path is not None:
        from collab.meta.sqlite import SQLiteMetaStore

        return SQLiteMetaStore(path, synchronous=synchronous, database=database)
    scheme = url.split("://", 1)[0]
    raise StoreError(
        f"unknown store scheme {scheme!r} (expected sqlite:///, postgresql:// or memory://)"
    )


def described_docs(meta: MetaStore) -> Callable[[str], set[str]] | None:
    """For ``memory://``, whose document store does not share the meta store's database: the
    room's described doc names, read without an await, for the document store's doc cap
    (``open_store(described=...)``); None elsewhere (the SQL stores read ``doc_meta``)."""
    from collab.meta.memory import MemoryMetaStore

    return meta.described_docs if isinstance(meta, MemoryMetaStore) else None
