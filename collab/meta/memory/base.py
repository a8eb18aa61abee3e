"""What every record kind's memory half shares: the in-process tables and the clock.

``Tables`` is the memory twin's database: one dict per SQL table, shared by every kind, so a
step that spans kinds (deleting a room takes its members, invites and tickets; redeeming an
invite adds a member) stays one step, as it is one transaction in SQLite. Every method runs
without an ``await`` between its read and its write, so each is atomic on the event loop
exactly as the SQLite store's transactions are. Records are frozen dataclasses, so handing
them out never exposes internal state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from collab.meta.api_tokens import ApiToken
from collab.meta.audit import AuditEvent
from collab.meta.bots import BotRecord
from collab.meta.doc_meta import DocMeta
from collab.meta.files import FileRecord
from collab.meta.inbox import InboxEntry
from collab.meta.incoming_hooks import IncomingHook
from collab.meta.invites import Invite
from collab.meta.messages import Message
from collab.meta.reads import ReadMarker
from collab.meta.rooms import Member, RoomRecord
from collab.meta.sessions import Session
from collab.meta.tickets import Ticket
from collab.meta.users import User
from collab.meta.webhooks import Attempt, Delivery, Endpoint


@dataclass
class StoredTicket:
    ticket: Ticket
    used: bool = False


@dataclass
class Tables:
    """Everything, in dicts; lost on exit."""

    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)  # by digest
    rooms: dict[str, RoomRecord] = field(default_factory=dict)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)
    invites: dict[str, Invite] = field(default_factory=dict)  # by digest
    tokens: dict[str, tuple[ApiToken, str]] = field(default_factory=dict)  # by id: (token, digest)
    tickets: dict[str, StoredTicket] = field(default_factory=dict)  # by digest
    cache: dict[str, tuple[str, float]] = field(default_factory=dict)
    audit: list[AuditEvent] = field(default_factory=list)
    audit_seq: int = 0  # the last audit id given: ids only grow, even after a purge
    revoked_room_tokens: dict[tuple[str, str], float] = field(default_factory=dict)
    high_water_marks: dict[str, float] = field(default_factory=dict)  # by name, never lowered
    doc_meta: dict[tuple[str, str], DocMeta] = field(default_factory=dict)
    messages: dict[str, list[Message]] = field(default_factory=dict)  # by room, in seq order
    message_seqs: dict[tuple[str, str], int] = field(default_factory=dict)  # (room, id) -> seq
    message_clients: dict[tuple[str, str, str], str] = field(default_factory=dict)  # -> id
    files: dict[str, FileRecord] = field(default_factory=dict)  # by id
    read_markers: dict[tuple[str, str], ReadMarker] = field(default_factory=dict)  # (room, user)
    inbox: dict[int, InboxEntry] = field(default_factory=dict)  # by id, ids only grow
    inbox_seq: int = 0  # the last inbox id given
    inbox_keys: dict[tuple[str, str], int] = field(default_factory=dict)  # (user, message) -> id
    bots: dict[str, BotRecord] = field(default_factory=dict)  # by user id
    incoming_hooks: dict[str, tuple[IncomingHook, str]] = field(default_factory=dict)  # by id
    webhooks: dict[str, Endpoint] = field(default_factory=dict)  # by id
    deliveries: dict[str, Delivery] = field(default_factory=dict)  # by id
    delivery_claims: dict[str, tuple[str, float]] = field(default_factory=dict)  # (who, until)
    attempts: dict[str, list[Attempt]] = field(default_factory=dict)  # by delivery id


class MemoryKind:
    """The base of each kind's memory class; the composite ``MemoryMetaStore`` inherits every
    kind, so all of them share its one ``Tables`` and clock."""

    def __init__(self, tables: Tables, *, clock: Callable[[], float] = time.time) -> None:
        self.tables = tables
        self.clock = clock


def drop_inbox_entries(tables: Tables, which: Callable[[InboxEntry], bool]) -> None:
    """Delete the inbox entries ``which`` selects (a deleted message's, a deleted room's)."""
    for entry_id, entry in list(tables.inbox.items()):
        if which(entry):
            del tables.inbox[entry_id]
            del tables.inbox_keys[entry.user_id, entry.message_id]
