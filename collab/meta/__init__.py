"""Everything persistent that is not a Yjs document: users, sessions, rooms, members, invites,
API tokens, tickets, a small cache, audit. One small Protocol per record kind, each with a memory
twin and one SQL implementation that SQLite and PostgreSQL both run, chosen by the same store
URL as the documents (``open_meta_store``).

    base.py         Role, secret digests (refusals are collab.errors.Conflict / NotFound)
    users.py        User, Users             sessions.py     Session, Sessions
    handles.py      users' handles: parse, normalize, candidates (pure)
    rooms.py        RoomRecord, Member, Rooms (members included)
    dms.py          Dms: direct messages, rooms of two
    invites.py      Invite, Invites         api_tokens.py   ApiToken, ApiTokens
    doc_meta.py     DocMeta, DocMetas (doc titles and kinds)
    messages.py     Message, Messages (chat messages, live or archived), WebhookOutbox
    files.py        FileRecord, Files (a room's references to uploaded bytes)
    reads.py        ReadMarker, Unread, Reads (read markers, unread counts)
    inbox.py        InboxEntry, Inbox (mentions)
    tickets.py      Ticket, Tickets         cache.py        Cache
    audit.py        AuditEvent, Audit       purge.py        Purged, Purge
    room_tokens.py  RoomTokenRevocations (revoked room token ids)
    bots.py         BotRecord, Bots (bots made through the API, by room)
    incoming_hooks.py  IncomingHook, IncomingHooks (post into a room's chat by URL)
    webhooks.py     Endpoint, Delivery, Attempt, Health, Webhooks (outgoing webhooks' outbox)
    metastore.py    MetaStore (all of the above in one), open_meta_store, described_docs
    memory/         MemoryMetaStore: one module per kind over shared in-process tables
    sql/            SqlMetaStore: one module per kind in portable SQL over a Backend
    sqlite/         SQLiteMetaStore: the SQL kinds over one collab.db.Database
    postgres/       PostgresMetaStore: the SQL kinds over a PostgreSQL pool, several nodes
"""

from __future__ import annotations

from collab.meta.api_tokens import ApiToken, ApiTokens
from collab.meta.audit import Audit, AuditEvent
from collab.meta.base import Role, digest, new_secret
from collab.meta.bots import BotRecord, Bots
from collab.meta.cache import Cache
from collab.meta.dms import Dms
from collab.meta.doc_meta import DOC_KINDS, DocMeta, DocMetas
from collab.meta.files import FileRecord, Files
from collab.meta.inbox import Inbox, InboxEntry
from collab.meta.incoming_hooks import IncomingHook, IncomingHooks
from collab.meta.invites import Invite, Invites, grantable
from collab.meta.messages import (
    MAX_REACTIONS,
    Message,
    Messages,
    NewMessage,
    ThreadProblem,
    WebhookOutbox,
    Written,
)
from collab.meta.metastore import MetaStore, described_docs, open_meta_store
from collab.meta.purge import Purge, Purged
from collab.meta.reads import MAX_UNREAD, ReadMarker, Reads, Unread
from collab.meta.room_tokens import RoomTokenRevocations
from collab.meta.rooms import DM_MEMBERS, Member, MemberChange, RoomRecord, Rooms
from collab.meta.sessions import Session, Sessions
from collab.meta.tickets import Ticket, Tickets
from collab.meta.users import User, Users
from collab.meta.webhooks import Attempt, Delivery, Endpoint, Health, Webhooks

__all__ = [
    "DM_MEMBERS",
    "DOC_KINDS",
    "MAX_REACTIONS",
    "MAX_UNREAD",
    "ApiToken",
    "ApiTokens",
    "Attempt",
    "Audit",
    "AuditEvent",
    "BotRecord",
    "Bots",
    "Cache",
    "Delivery",
    "Dms",
    "DocMeta",
    "DocMetas",
    "Endpoint",
    "FileRecord",
    "Files",
    "Health",
    "Inbox",
    "InboxEntry",
    "IncomingHook",
    "IncomingHooks",
    "Invite",
    "Invites",
    "Member",
    "MemberChange",
    "Message",
    "Messages",
    "MetaStore",
    "NewMessage",
    "Purge",
    "Purged",
    "ReadMarker",
    "Reads",
    "Role",
    "RoomRecord",
    "RoomTokenRevocations",
    "Rooms",
    "Session",
    "Sessions",
    "ThreadProblem",
    "Ticket",
    "Tickets",
    "Unread",
    "User",
    "Users",
    "WebhookOutbox",
    "Webhooks",
    "Written",
    "described_docs",
    "digest",
    "grantable",
    "new_secret",
    "open_meta_store",
]
