"""Rooms and members in memory. ``put_member`` is shared with invites: redeeming one adds a
member in the same step. No method awaits between its reads and its writes, so each is one
atomic step on the event loop, as the SQLite store's transactions are. Membership changes in
a DM are refused (:func:`refuse_dm`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from collab.errors import Conflict, NotFound
from collab.meta.audit import AuditEvent
from collab.meta.base import Role
from collab.meta.memory.audit import append_event
from collab.meta.memory.base import MemoryKind, Tables, drop_inbox_entries
from collab.meta.rooms import DM_MEMBERS, Member, MemberChange, RoomRecord, room_limit


def put_member(
    tables: Tables,
    clock: Callable[[], float],
    room_id: str,
    user_id: str,
    role: Role,
    *,
    lower: bool,
) -> Member:
    """Insert or update a membership (keeping added_at); ``lower=False`` only raises it."""
    current = tables.members.get((room_id, user_id))
    if current is None:
        member = Member(room_id, user_id, role, clock())
    elif lower or role > current.role:
        member = replace(current, role=role)
    else:
        member = current
    tables.members[room_id, user_id] = member
    return member


def refuse_dm(tables: Tables, room_id: str) -> None:
    """errors.Conflict when the room is a DM: its two members are all it ever has."""
    room = tables.rooms.get(room_id)
    if room is not None and room.is_dm:
        raise Conflict(DM_MEMBERS)


def void_invites(tables: Tables, room_id: str, created_by: str, now: float) -> int:
    """End the pending invites ``created_by`` made in the room (they may no longer grant)."""
    voided = 0
    for key, invite in list(tables.invites.items()):
        if (invite.room_id, invite.created_by) == (room_id, created_by) and (
            invite.status(now) == "pending"
        ):
            tables.invites[key] = replace(invite, closed_at=now, closed_reason="voided")
            voided += 1
    return voided


class MemoryRooms(MemoryKind):
    async def create_room(
        self, room_id: str, title: str, owner_id: str, *, max_rooms: int | None = None
    ) -> RoomRecord:
        # The count and the insert: no await between them, one step on the event loop.
        if max_rooms is not None and self._created_by(owner_id) >= max_rooms:
            raise room_limit()
        if room_id in self.tables.rooms:
            raise Conflict(f"room {room_id!r} exists")
        now = self.clock()
        room = RoomRecord(room_id, title, owner_id, now, audit_floor=self.tables.audit_seq)
        self.tables.rooms[room_id] = room
        self.tables.members[room_id, owner_id] = Member(room_id, owner_id, Role.owner, now)
        return room

    async def get_room(self, room_id: str) -> RoomRecord | None:
        return self.tables.rooms.get(room_id)

    async def existing_rooms(self, room_ids: set[str]) -> set[str]:
        return {room_id for room_id in room_ids if room_id in self.tables.rooms}

    async def list_rooms_for(self, user_id: str) -> list[tuple[RoomRecord, Role]]:
        rooms = self.tables.rooms
        found = [
            (rooms[m.room_id], m.role)
            for m in self.tables.members.values()
            if m.user_id == user_id and m.room_id in rooms and not rooms[m.room_id].is_dm
        ]
        return sorted(found, key=lambda pair: (pair[0].created_at, pair[0].id))

    async def list_room_ids(self, after: str = "", limit: int = 1000) -> list[str]:
        return sorted(room_id for room_id in self.tables.rooms if room_id > after)[:limit]

    async def count_rooms_created_by(self, user_id: str) -> int:
        return self._created_by(user_id)

    def _created_by(self, user_id: str) -> int:
        return sum(
            1
            for room in self.tables.rooms.values()
            if room.created_by == user_id and not room.is_dm
        )

    async def rename_room(self, room_id: str, title: str) -> None:
        room = self.tables.rooms.get(room_id)
        if room is None:
            raise NotFound(f"no room {room_id!r}")
        self.tables.rooms[room_id] = replace(room, title=title)

    async def delete_room(self, room_id: str, event: AuditEvent | None = None) -> None:
        t = self.tables
        if event is not None:
            append_event(t, event)
        t.rooms.pop(room_id, None)
        for member_key in [k for k in t.members if k[0] == room_id]:
            del t.members[member_key]
        for key in [k for k, invite in t.invites.items() if invite.room_id == room_id]:
            del t.invites[key]
        for key in [k for k, e in t.tickets.items() if e.ticket.room_id == room_id]:
            del t.tickets[key]
        t.messages.pop(room_id, None)
        for meta_key in [k for k in t.doc_meta if k[0] == room_id]:
            del t.doc_meta[meta_key]
        for seq_key in [k for k in t.message_seqs if k[0] == room_id]:
            del t.message_seqs[seq_key]
        for client_key in [k for k in t.message_clients if k[0] == room_id]:
            del t.message_clients[client_key]
        for marker_key in [k for k in t.read_markers if k[0] == room_id]:
            del t.read_markers[marker_key]
        drop_inbox_entries(t, lambda entry: entry.room_id == room_id)
        # Its files, webhooks, bots and hooks go with it (collab.meta.sql.rooms says why).
        for file_id in [i for i, f in t.files.items() if f.room_id == room_id]:
            del t.files[file_id]
        for bot_id in [i for i, b in t.bots.items() if b.room_id == room_id]:
            del t.bots[bot_id]
        for hook_id in [i for i, (h, _) in t.incoming_hooks.items() if h.room_id == room_id]:
            del t.incoming_hooks[hook_id]
        for endpoint_id in [i for i, e in t.webhooks.items() if e.room_id == room_id]:
            del t.webhooks[endpoint_id]
        now = time.time()
        for delivery in list(t.deliveries.values()):
            if delivery.room_id == room_id and delivery.state == "pending":
                t.deliveries[delivery.id] = replace(delivery, state="failed", finished_at=now)

    async def get_member(self, room_id: str, user_id: str) -> Member | None:
        return self.tables.members.get((room_id, user_id))

    async def list_members(self, room_id: str) -> list[Member]:
        found = [m for m in self.tables.members.values() if m.room_id == room_id]
        return sorted(found, key=lambda m: (m.added_at, m.user_id))

    async def set_member(self, room_id: str, user_id: str, role: Role) -> Member:
        if room_id not in self.tables.rooms:
            raise NotFound(f"no room {room_id!r}")
        refuse_dm(self.tables, room_id)
        return put_member(self.tables, self.clock, room_id, user_id, role, lower=True)

    async def add_member(self, room_id: str, user_id: str, role: Role) -> Member:
        if room_id not in self.tables.rooms:
            raise NotFound(f"no room {room_id!r}")
        refuse_dm(self.tables, room_id)
        if (room_id, user_id) in self.tables.members:
            raise Conflict("already a member")
        return put_member(self.tables, self.clock, room_id, user_id, role, lower=True)

    async def update_member(self, room_id: str, user_id: str, role: Role | None) -> MemberChange:
        members = self.tables.members
        previous = members.get((room_id, user_id))
        if previous is None:
            raise NotFound("not a member of this room")
        refuse_dm(self.tables, room_id)
        if previous.role == Role.owner and role != Role.owner:
            owners = [m for m in members.values() if m.room_id == room_id and m.role == Role.owner]
            if len(owners) <= 1:
                raise Conflict("a room keeps at least one owner")
        current = None
        if role is None:
            del members[room_id, user_id]
        else:
            current = put_member(self.tables, self.clock, room_id, user_id, role, lower=True)
        lowered = current is None or current.role < previous.role
        voided = void_invites(self.tables, room_id, user_id, self.clock()) if lowered else 0
        return MemberChange(previous, current, voided)

    async def remove_member(self, room_id: str, user_id: str) -> None:
        self.tables.members.pop((room_id, user_id), None)
