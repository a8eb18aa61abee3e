"""Read markers (``migrations/sqlite/0007_reads.sql``).

A marker moves forward only, by an upsert whose update applies only to a higher value; the
clamp to the room's last seq and the inbox entries it marks read are in the same transaction.
Unread counts are one query per list of rooms: per room, a range scan of the messages after the
marker on the messages' primary key (room_id, seq), stopped at ``MAX_UNREAD``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from collab.meta.reads import MAX_UNREAD, ReadMarker, Unread
from collab.meta.sql.base import SqlKind, Tx

_UPSERT = (
    "INSERT INTO read_markers (room_id, user_id, up_to, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (room_id, user_id) DO UPDATE SET up_to=excluded.up_to,"
    " updated_at=excluded.updated_at WHERE excluded.up_to > read_markers.up_to"
)

# Per room (the VALUES list): messages after the user's marker that are not theirs nor
# deleted, and their unread inbox entries there; each subquery stops at the cap.
_UNREAD = """
SELECT w.room_id,
    (SELECT count(*) FROM (
        SELECT 1 FROM messages m
        WHERE m.room_id = w.room_id AND m.author != ? AND NOT m.deleted
        AND m.seq > coalesce(
            (SELECT up_to FROM read_markers r WHERE r.room_id = w.room_id AND r.user_id = ?), 0)
        LIMIT ?) AS unread),
    (SELECT count(*) FROM (
        SELECT 1 FROM inbox i JOIN messages m ON m.room_id = i.room_id AND m.id = i.message_id
        WHERE i.user_id = ? AND i.room_id = w.room_id AND NOT i.read AND NOT m.deleted
        LIMIT ?) AS mentioned)
FROM wanted w
"""


class SqlReads(SqlKind):
    async def set_read_markers(self, room_id: str, wanted: Mapping[str, int]) -> dict[str, int]:
        def _set(db: Tx) -> dict[str, int]:
            last = db.execute(
                "SELECT coalesce(max(seq), 0) FROM messages WHERE room_id=?", (room_id,)
            ).fetchone()[0]
            now = self.clock()
            found: dict[str, int] = {}
            for user_id, up_to in wanted.items():
                target = min(max(up_to, 0), last)
                if target > 0:
                    db.execute(_UPSERT, (room_id, user_id, target, now))
                row = db.execute(
                    "SELECT up_to FROM read_markers WHERE room_id=? AND user_id=?",
                    (room_id, user_id),
                ).fetchone()
                found[user_id] = int(row[0]) if row else 0
                db.execute(
                    "UPDATE inbox SET read=TRUE"
                    " WHERE user_id=? AND room_id=? AND seq<=? AND NOT read",
                    (user_id, room_id, found[user_id]),
                )
            return found

        return await self._write(_set)

    async def get_read_marker(self, room_id: str, user_id: str) -> int:
        rows = await self._lookup(
            "SELECT up_to FROM read_markers WHERE room_id=? AND user_id=?", (room_id, user_id)
        )
        return int(rows[0][0]) if rows else 0

    async def list_read_markers(self, room_id: str) -> list[ReadMarker]:
        rows = await self._read(
            "SELECT r.user_id, r.up_to, r.updated_at FROM read_markers r"
            " JOIN members m ON m.room_id = r.room_id AND m.user_id = r.user_id"
            " WHERE r.room_id=? ORDER BY r.user_id",
            (room_id,),
        )
        return [ReadMarker(room_id, user, up_to, at) for user, up_to, at in rows]

    async def list_read_markers_of(self, room_ids: Sequence[str]) -> dict[str, list[ReadMarker]]:
        rooms = list(dict.fromkeys(room_ids))
        found: dict[str, list[ReadMarker]] = {room: [] for room in rooms}
        for start in range(0, len(rooms), 500):  # well under SQLite's bound on parameters
            batch = rooms[start : start + 500]
            rows = await self._read(
                "SELECT r.room_id, r.user_id, r.up_to, r.updated_at FROM read_markers r"
                " JOIN members m ON m.room_id = r.room_id AND m.user_id = r.user_id"
                f" WHERE r.room_id IN ({', '.join('?' for _ in batch)})"
                " ORDER BY r.room_id, r.user_id",
                batch,
            )
            for room, user, up_to, at in rows:
                found[room].append(ReadMarker(room, user, up_to, at))
        return found

    async def unread_counts(self, user_id: str, room_ids: Sequence[str]) -> dict[str, Unread]:
        found: dict[str, Unread] = {}
        rooms = list(dict.fromkeys(room_ids))
        for start in range(0, len(rooms), 500):  # well under SQLite's bound on parameters
            batch = rooms[start : start + 500]
            values = ", ".join("(?)" for _ in batch)
            rows = await self._read(
                f"WITH wanted(room_id) AS (VALUES {values}) {_UNREAD}",
                (*batch, user_id, user_id, MAX_UNREAD, user_id, MAX_UNREAD),
            )
            found.update(
                (room, Unread(int(unread), int(mentions))) for room, unread, mentions in rows
            )
        return found
