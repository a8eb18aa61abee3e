"""Direct messages in memory: rooms of kind ``dm``, found by scanning for their ``dm_key``.

Opening has no ``await`` between the lookup and the insert, so it is one atomic step on the
event loop, as the SQLite store's transaction is: concurrent opens of one pair yield one room.
"""

from __future__ import annotations

from collab.errors import Conflict
from collab.meta.base import Role
from collab.meta.memory.base import MemoryKind
from collab.meta.rooms import Member, RoomRecord, dm_key


class MemoryDms(MemoryKind):
    def _find_dm(self, key: str) -> RoomRecord | None:
        return next((r for r in self.tables.rooms.values() if r.dm_key == key), None)

    async def open_dm(self, opener: str, peer: str, room_id: str) -> tuple[RoomRecord, bool]:
        if opener == peer:
            raise ValueError("a direct message needs two users")
        key = dm_key(opener, peer)
        found = self._find_dm(key)
        if found is not None:
            return found, False
        t = self.tables
        if room_id in t.rooms:
            raise Conflict(f"room {room_id!r} exists")
        now = self.clock()
        room = RoomRecord(room_id, "", opener, now, audit_floor=t.audit_seq, kind="dm", dm_key=key)
        t.rooms[room_id] = room
        for user_id in (opener, peer):
            t.members[room_id, user_id] = Member(room_id, user_id, Role.editor, now)
        return room, True

    async def find_dm(self, user_a: str, user_b: str) -> RoomRecord | None:
        return self._find_dm(dm_key(user_a, user_b))

    async def list_dms_for(self, user_id: str) -> list[RoomRecord]:
        t = self.tables
        found = [r for r in t.rooms.values() if r.is_dm and (r.id, user_id) in t.members]
        return sorted(found, key=lambda r: (r.created_at, r.id))
