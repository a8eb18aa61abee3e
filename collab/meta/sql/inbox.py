"""The mention inbox (``migrations/sqlite/0007_reads.sql``).

An entry is unique per (user, message): adding one twice (a retried post, an edit repeating a
mention) changes nothing. One user's entries are added one write at a time (on PostgreSQL under
the user's lock), so their ids commit in order: paging back by id skips none. Listing joins
the user's current memberships and the messages, so a user removed from a room stops seeing its
entries, and a deleted message's never show.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from collab.meta.inbox import InboxEntry
from collab.meta.messages import Message
from collab.meta.sql.base import SqlKind, Tx
from collab.meta.sql.messages import COLUMNS, message_record

_ENTRY = "i.id, i.user_id, i.room_id, i.message_id, i.seq, i.created_at, i.read"
_MESSAGE = ", ".join("m." + column.strip() for column in COLUMNS.split(","))


def _entry(row: tuple[Any, ...]) -> InboxEntry:
    entry_id, user, room, message, seq, at, read = row
    return InboxEntry(int(entry_id), user, room, message, int(seq), at, bool(read))


class SqlInbox(SqlKind):
    async def add_inbox_entries(
        self, message: Message, user_ids: Iterable[str], at: float, *, read_if_marked: bool = False
    ) -> list[str]:
        users = list(dict.fromkeys(user_ids))

        def _add(db: Tx) -> list[str]:
            # Each user's entries are added under the user's lock (in one order: no deadlock),
            # so one user's ids commit in the order they are drawn, and a reader paging back
            # by id never passes one still to commit (``list_inbox``'s ``before_id``).
            if db.dialect.key_lock:
                for user_id in sorted(users):
                    db.execute(db.dialect.key_lock, (f"inbox:{user_id}",))
            added: list[str] = []
            for user_id in users:
                read = (
                    read_if_marked
                    and db.execute(
                        "SELECT 1 FROM read_markers WHERE room_id=? AND user_id=? AND up_to>=?",
                        (message.room_id, user_id, message.seq),
                    ).fetchone()
                    is not None
                )
                cur = db.execute(
                    "INSERT INTO inbox (user_id, room_id, message_id, seq, created_at, read)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (user_id, message.room_id, message.id, message.seq, at, read),
                )
                if cur.rowcount:
                    added.append(user_id)
            return added

        return await self._write(_add) if users else []

    async def list_inbox(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[tuple[InboxEntry, Message]]:
        where = ["i.user_id=?", "NOT m.deleted"]
        params: list[Any] = [user_id]
        if unread_only:
            where.append("NOT i.read")
        if before_id is not None:
            where.append("i.id<?")
            params.append(before_id)
        rows = await self._read(
            f"SELECT {_ENTRY}, {_MESSAGE} FROM inbox i"
            " JOIN members mb ON mb.room_id = i.room_id AND mb.user_id = i.user_id"
            " JOIN messages m ON m.room_id = i.room_id AND m.id = i.message_id"
            f" WHERE {' AND '.join(where)} ORDER BY i.id DESC LIMIT ?",
            (*params, limit),
        )
        return [(_entry(row[:7]), message_record(row[7:])) for row in rows]

    async def mark_inbox_read(self, user_id: str, ids: Sequence[int] | None) -> int:
        wanted = None if ids is None else sorted(set(ids))

        def _mark(db: Tx) -> int:
            if wanted is None:
                cur = db.execute(
                    "UPDATE inbox SET read=TRUE WHERE user_id=? AND NOT read", (user_id,)
                )
                return int(cur.rowcount)
            changed = 0
            for start in range(0, len(wanted), 500):
                batch = wanted[start : start + 500]
                marks = ", ".join("?" for _ in batch)
                cur = db.execute(
                    f"UPDATE inbox SET read=TRUE WHERE user_id=? AND NOT read AND id IN ({marks})",
                    (user_id, *batch),
                )
                changed += int(cur.rowcount)
            return changed

        return await self._write(_mark)
