"""Direct messages: rooms of kind ``dm`` with a unique ``dm_key`` (migration 0006).

Opening looks the key up and inserts the room with its two members in one write transaction
that nothing interleaves with, so concurrent opens of one pair cannot both create; the unique
index on ``dm_key`` refuses a second row even from another process's writer or another node.
"""

from __future__ import annotations

from collab.errors import Conflict
from collab.meta.base import Role
from collab.meta.rooms import Member, RoomRecord, dm_key
from collab.meta.sql.base import SqlKind, Tx, as_row, insert
from collab.meta.sql.rooms import ROOM_COLUMNS, room_exists, room_record


def _find(db: Tx, key: str) -> RoomRecord | None:
    row = db.execute(f"SELECT {ROOM_COLUMNS} FROM rooms WHERE dm_key=?", (key,)).fetchone()
    return room_record(row) if row else None


class SqlDms(SqlKind):
    async def open_dm(self, opener: str, peer: str, room_id: str) -> tuple[RoomRecord, bool]:
        if opener == peer:
            raise ValueError("a direct message needs two users")
        key = dm_key(opener, peer)

        def _open(db: Tx) -> tuple[RoomRecord, bool]:
            found = _find(db, key)
            if found is not None:
                return found, False
            if room_exists(db, room_id):
                raise Conflict(f"room {room_id!r} exists")
            floor = db.execute("SELECT coalesce(max(id), 0) FROM audit").fetchone()[0]
            now = self.clock()
            room = RoomRecord(
                room_id, "", opener, now, audit_floor=int(floor), kind="dm", dm_key=key
            )
            insert(db, "rooms", as_row(room))
            for user_id in (opener, peer):
                member = Member(room_id, user_id, Role.editor, now)
                insert(db, "members", as_row(member))
            return room, True

        return await self._write(_open)

    async def find_dm(self, user_a: str, user_b: str) -> RoomRecord | None:
        rows = await self._read(
            f"SELECT {ROOM_COLUMNS} FROM rooms WHERE dm_key=?", (dm_key(user_a, user_b),)
        )
        return room_record(rows[0]) if rows else None

    async def list_dms_for(self, user_id: str) -> list[RoomRecord]:
        columns = ", ".join("r." + c for c in ROOM_COLUMNS.split(", "))
        rows = await self._read(
            f"SELECT {columns} FROM members m JOIN rooms r ON r.id = m.room_id"
            " WHERE m.user_id=? AND r.kind='dm' ORDER BY r.created_at, r.id",
            (user_id,),
        )
        return [room_record(row) for row in rows]
