"""The mention inbox in memory: entries by id (ids only grow), one per (user, message)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from collab.meta.inbox import InboxEntry
from collab.meta.memory.base import MemoryKind
from collab.meta.messages import Message


class MemoryInbox(MemoryKind):
    async def add_inbox_entries(
        self, message: Message, user_ids: Iterable[str], at: float, *, read_if_marked: bool = False
    ) -> list[str]:
        t = self.tables
        added: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            if (user_id, message.id) in t.inbox_keys:
                continue
            marker = t.read_markers.get((message.room_id, user_id))
            read = read_if_marked and marker is not None and marker.up_to >= message.seq
            t.inbox_seq += 1
            t.inbox[t.inbox_seq] = InboxEntry(
                t.inbox_seq, user_id, message.room_id, message.id, message.seq, at, read
            )
            t.inbox_keys[user_id, message.id] = t.inbox_seq
            added.append(user_id)
        return added

    def _message(self, entry: InboxEntry) -> Message | None:
        """The entry's message, if the user may see it: a member of its room, not deleted."""
        t = self.tables
        seq = t.message_seqs.get((entry.room_id, entry.message_id))
        if seq is None or (entry.room_id, entry.user_id) not in t.members:
            return None
        message = t.messages[entry.room_id][seq - 1]
        return None if message.deleted else message

    async def list_inbox(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[tuple[InboxEntry, Message]]:
        found: list[tuple[InboxEntry, Message]] = []
        for entry_id in sorted(self.tables.inbox, reverse=True):
            entry = self.tables.inbox[entry_id]
            if len(found) >= limit:
                break
            if entry.user_id != user_id or (before_id is not None and entry_id >= before_id):
                continue
            if unread_only and entry.read:
                continue
            message = self._message(entry)
            if message is not None:
                found.append((entry, message))
        return found

    async def mark_inbox_read(self, user_id: str, ids: Sequence[int] | None) -> int:
        t = self.tables
        wanted = None if ids is None else set(ids)
        changed = 0
        for entry_id, entry in t.inbox.items():
            if entry.user_id == user_id and not entry.read:
                if wanted is None or entry_id in wanted:
                    t.inbox[entry_id] = replace(entry, read=True)
                    changed += 1
        return changed
