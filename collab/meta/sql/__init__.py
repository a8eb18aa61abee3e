"""Every record kind of the MetaStore written once, in SQL that SQLite and PostgreSQL both run.

Each module holds one kind's class over a ``base.Backend`` (``SqlUsers``, ``SqlRooms``, ...);
``SqlMetaStore`` is all of them in one, which ``collab.meta.sqlite.SQLiteMetaStore`` and
``collab.meta.postgres.PostgresMetaStore`` give their backend and their open/close.

    base.py         Backend, Tx, Dialect (the few spellings that differ), insert/upsert
    users.py        SqlUsers                sessions.py     SqlSessions
    rooms.py        SqlRooms                dms.py          SqlDms
    invites.py      SqlInvites              api_tokens.py   SqlApiTokens
    doc_meta.py     SqlDocMetas             messages.py     SqlMessages
    files.py        SqlFiles                reads.py        SqlReads
    inbox.py        SqlInbox                tickets.py      SqlTickets
    cache.py        SqlCache                audit.py        SqlAudit
    purge.py        SqlPurge                room_tokens.py  SqlRoomTokenRevocations
    bots.py         SqlBots, SqlIncomingHooks
    webhooks.py     SqlWebhooks (the outbox)
"""

from __future__ import annotations

from collab.meta.sql.api_tokens import SqlApiTokens
from collab.meta.sql.audit import SqlAudit
from collab.meta.sql.bots import SqlBots, SqlIncomingHooks
from collab.meta.sql.cache import SqlCache
from collab.meta.sql.dms import SqlDms
from collab.meta.sql.doc_meta import SqlDocMetas
from collab.meta.sql.files import SqlFiles
from collab.meta.sql.inbox import SqlInbox
from collab.meta.sql.invites import SqlInvites
from collab.meta.sql.messages import SqlMessages
from collab.meta.sql.purge import SqlPurge
from collab.meta.sql.reads import SqlReads
from collab.meta.sql.room_tokens import SqlRoomTokenRevocations
from collab.meta.sql.rooms import SqlRooms
from collab.meta.sql.sessions import SqlSessions
from collab.meta.sql.tickets import SqlTickets
from collab.meta.sql.users import SqlUsers
from collab.meta.sql.webhooks import SqlWebhooks

__all__ = ["SqlMetaStore"]


class SqlMetaStore(
    SqlUsers,
    SqlSessions,
    SqlRooms,
    SqlDms,
    SqlInvites,
    SqlDocMetas,
    SqlMessages,
    SqlFiles,
    SqlReads,
    SqlInbox,
    SqlApiTokens,
    SqlTickets,
    SqlRoomTokenRevocations,
    SqlCache,
    SqlAudit,
    SqlPurge,
    SqlBots,
    SqlIncomingHooks,
    SqlWebhooks,
):
    """Every kind over one backend; the backends' stores add ``open`` and ``close``."""
