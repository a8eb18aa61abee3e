"""Rooms and members.

A room's members, invites and tickets are deleted in the room's own transaction (no foreign
keys). ``put_member`` is shared with invites: redeeming one adds a member in the same
transaction. ``update_member`` reads the owners and writes in one write transaction that
nothing interleaves with, so "at least one owner" cannot be raced, even by two nodes.
Membership changes in a DM are refused in the same transaction (:func:`refuse_dm`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from collab.errors import Conflict, NotFound
from collab.meta.audit import AuditEvent
from collab.meta.base import Role
from collab.meta.rooms import DM_MEMBERS, Member, MemberChange, RoomRecord, room_limit
from collab.meta.sql.audit import insert_event
from collab.meta.sql.base import SqlKind, Tx, as_row, insert, upsert

EXISTING_BATCH = 500  # room ids per IN (...) query: well under SQLite's variable limit
ROOM_COLUMNS = "id, title, created_by, created_at, gc, audit_floor, kind, dm_key"


def room_record(row: tuple[Any, ...]) -> RoomRecord:
    """A RoomRecord from the columns of ``ROOM_COLUMNS``, in order."""
    i, title, by, at, gc, floor, kind, key = row[:8]
    return RoomRecord(i, title, by, at, bool(gc), int(floor), kind, key)


def _member(db: Tx, room_id: str, user_id: str) -> Member | None:
    row = db.execute(
        "SELECT role, added_at FROM members WHERE room_id=? AND user_id=?", (room_id, user_id)
    ).fetchone()
    return Member(room_id, user_id, Role[row[0]], row[1]) if row else None


def void_invites(db: Tx, room_id: str, created_by: str, now: float) -> int:
    """End the pending invites ``created_by`` made in the room (they may no longer grant)."""
    cur = db.execute(
        "UPDATE invites SET closed_at=?, closed_reason='voided' WHERE room_id=? AND"
        " created_by=? AND used_by IS NULL AND closed_reason IS NULL AND expires_at>?",
        (now, room_id, created_by, now),
    )
    return int(cur.rowcount)


def put_member(
    db: Tx,
    clock: Callable[[], float],
    room_id: str,
    user_id: str,
    role: Role,
    *,
    lower: bool,
) -> Member:
    """Insert or update a membership (keeping added_at); ``lower=False`` only raises it."""
    current = _member(db, room_id, user_id)
    if current is None:
        member = Member(room_id, user_id, role, clock())
    elif lower or role > current.role:
        member = Member(room_id, user_id, role, current.added_at)
    else:
        return current
    upsert(db, "members", as_row(member), pk=("room_id", "user_id"))
    return member


_CREATED_BY = "SELECT count(*) FROM rooms WHERE created_by=? AND kind='room'"


def _rooms_created_by(db: Tx, user_id: str) -> int:
    return int(db.execute(_CREATED_BY, (user_id,)).fetchone()[0])


def room_exists(db: Tx, room_id: str) -> bool:
    return db.execute("SELECT 1 FROM rooms WHERE id=?", (room_id,)).fetchone() is not None


def refuse_dm(db: Tx, room_id: str) -> None:
    """errors.Conflict when the room is a DM: its two members are all it ever has."""
    if db.execute("SELECT 1 FROM rooms WHERE id=? AND kind='dm'", (room_id,)).fetchone():
        raise Conflict(DM_MEMBERS)


class SqlRooms(SqlKind):
    async def create_room(
        self, room_id: str, title: str, owner_id: str, *, max_rooms: int | None = None
    ) -> RoomRecord:
        def _create(db: Tx) -> RoomRecord:
            # Counted in the insert's transaction: SQLite's one writer, or PostgreSQL's
            # SERIALIZABLE (two nodes' racing creates conflict, and the retry counts again).
            if max_rooms is not None and _rooms_created_by(db, owner_id) >= max_rooms:
                raise room_limit()
            if room_exists(db, room_id):
                raise Conflict(f"room {room_id!r} exists")
            # Ids only grow, so rows above today's highest are this room's (not an earlier
            # room's of the same id).
            floor = db.execute("SELECT coalesce(max(id), 0) FROM audit").fetchone()[0]
            room = RoomRecord(room_id, title, owner_id, self.clock(), audit_floor=int(floor))
            insert(db, "rooms", as_row(room))
            owner = Member(room_id, owner_id, Role.owner, room.created_at)
            upsert(db, "members", as_row(owner), pk=("room_id", "user_id"))
            return room

        return await self._write(_create)

    async def get_room(self, room_id: str) -> RoomRecord | None:
        rows = await self._lookup(f"SELECT {ROOM_COLUMNS} FROM rooms WHERE id=?", (room_id,))
        return room_record(rows[0]) if rows else None

    async def existing_rooms(self, room_ids: set[str]) -> set[str]:
        ids, found = sorted(room_ids), set[str]()
        for start in range(0, len(ids), EXISTING_BATCH):
            batch = ids[start : start + EXISTING_BATCH]
            marks = ", ".join("?" * len(batch))
            rows = await self._read(f"SELECT id FROM rooms WHERE id IN ({marks})", tuple(batch))
            found.update(str(room_id) for (room_id,) in rows)
        return found

    async def list_rooms_for(self, user_id: str) -> list[tuple[RoomRecord, Role]]:
        columns = ", ".join("r." + c for c in ROOM_COLUMNS.split(", "))
        rows = await self._read(
            f"SELECT {columns}, m.role FROM members m JOIN rooms r ON r.id = m.room_id"
            " WHERE m.user_id=? AND r.kind='room' ORDER BY r.created_at, r.id",
            (user_id,),
        )
        return [(room_record(row), Role[row[8]]) for row in rows]

    async def list_room_ids(self, after: str = "", limit: int = 1000) -> list[str]:
        rows = await self._read(
            "SELECT id FROM rooms WHERE id>? ORDER BY id LIMIT ?", (after, limit)
        )
        return [str(room_id) for (room_id,) in rows]

    async def count_rooms_created_by(self, user_id: str) -> int:
        rows = await self._read(_CREATED_BY, (user_id,))
        return int(rows[0][0])

    async def rename_room(self, room_id: str, title: str) -> None:
        def _rename(db: Tx) -> None:
            if db.execute("UPDATE rooms SET title=? WHERE id=?", (title, room_id)).rowcount == 0:
                raise NotFound(f"no room {room_id!r}")

        await self._write(_rename)

    async def delete_room(self, room_id: str, event: AuditEvent | None = None) -> None:
        def _delete(db: Tx) -> None:
            for table in (
                "members",
                "invites",
                "tickets",
                "messages",
                "doc_meta",
                "read_markers",
                "inbox",
            ):
                db.execute(f"DELETE FROM {table} WHERE room_id=?", (room_id,))
            # Its files, webhooks, bots and hooks go with it: a room made later with the same
            # id sees none of them, nor are its events sent to the old room's endpoints (the
            # files' blobs, if nothing else refers to them, go with the next collection).
            db.execute("DELETE FROM files WHERE room_id=?", (room_id,))
            db.execute("DELETE FROM bots WHERE room_id=?", (room_id,))
            db.execute("DELETE FROM incoming_hooks WHERE room_id=?", (room_id,))
            db.execute(
                "UPDATE webhook_endpoints SET deleted=TRUE WHERE room_id=? AND NOT deleted",
                (room_id,),
            )
            db.execute(
                "UPDATE webhook_deliveries SET state='failed', finished_at=?"
                " WHERE room_id=? AND state='pending'",
                (time.time(), room_id),
            )
            db.execute("DELETE FROM rooms WHERE id=?", (room_id,))
            if event is not None:
                insert_event(db, event)

        await self._write(_delete)

    async def get_member(self, room_id: str, user_id: str) -> Member | None:
        rows = await self._lookup(
            "SELECT role, added_at FROM members WHERE room_id=? AND user_id=?", (room_id, user_id)
        )
        return Member(room_id, user_id, Role[rows[0][0]], rows[0][1]) if rows else None

    async def list_members(self, room_id: str) -> list[Member]:
        rows = await self._read(
            "SELECT user_id, role, added_at FROM members WHERE room_id=?"
            " ORDER BY added_at, user_id",
            (room_id,),
        )
        return [Member(room_id, user, Role[role], added) for user, role, added in rows]

    async def set_member(self, room_id: str, user_id: str, role: Role) -> Member:
        def _set(db: Tx) -> Member:
            if not room_exists(db, room_id):
                raise NotFound(f"no room {room_id!r}")
            refuse_dm(db, room_id)
            return put_member(db, self.clock, room_id, user_id, role, lower=True)

        return await self._write(_set)

    async def add_member(self, room_id: str, user_id: str, role: Role) -> Member:
        def _add(db: Tx) -> Member:
            if not room_exists(db, room_id):
                raise NotFound(f"no room {room_id!r}")
            refuse_dm(db, room_id)
            if _member(db, room_id, user_id) is not None:
                raise Conflict("already a member")
            return put_member(db, self.clock, room_id, user_id, role, lower=True)

        return await self._write(_add)

    async def update_member(self, room_id: str, user_id: str, role: Role | None) -> MemberChange:
        def _update(db: Tx) -> MemberChange:
            previous = _member(db, room_id, user_id)
            if previous is None:
                raise NotFound("not a member of this room")
            refuse_dm(db, room_id)
            if previous.role == Role.owner and role != Role.owner:
                owners = db.execute(
                    "SELECT count(*) FROM members WHERE room_id=? AND role='owner'", (room_id,)
                ).fetchone()[0]
                if owners <= 1:
                    raise Conflict("a room keeps at least one owner")
            current = None
            if role is None:
                db.execute("DELETE FROM members WHERE room_id=? AND user_id=?", (room_id, user_id))
            else:
                current = put_member(db, self.clock, room_id, user_id, role, lower=True)
            lowered = current is None or current.role < previous.role
            voided = void_invites(db, room_id, user_id, self.clock()) if lowered else 0
            return MemberChange(previous, current, voided)

        return await self._write(_update)

    async def remove_member(self, room_id: str, user_id: str) -> None:
        await self._write(
            lambda db: db.execute(
                "DELETE FROM members WHERE room_id=? AND user_id=?", (room_id, user_id)
            )
        )
