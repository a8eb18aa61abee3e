"""Read markers in memory: one record per (room, user), forward only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from collab.meta.memory.base import MemoryKind
from collab.meta.reads import MAX_UNREAD, ReadMarker, Unread


class MemoryReads(MemoryKind):
    async def set_read_markers(self, room_id: str, wanted: Mapping[str, int]) -> dict[str, int]:
        t = self.tables
        last = len(t.messages.get(room_id, ()))
        now = self.clock()
        found: dict[str, int] = {}
        for user_id, up_to in wanted.items():
            target = min(max(up_to, 0), last)
            current = t.read_markers.get((room_id, user_id))
            if target > (current.up_to if current else 0):
                current = ReadMarker(room_id, user_id, target, now)
                t.read_markers[room_id, user_id] = current
            found[user_id] = current.up_to if current else 0
            for entry_id, entry in t.inbox.items():
                if (entry.user_id, entry.room_id) == (user_id, room_id) and not entry.read:
                    if entry.seq <= found[user_id]:
                        t.inbox[entry_id] = replace(entry, read=True)
        return found

    async def get_read_marker(self, room_id: str, user_id: str) -> int:
        found = self.tables.read_markers.get((room_id, user_id))
        return found.up_to if found else 0

    async def list_read_markers(self, room_id: str) -> list[ReadMarker]:
        t = self.tables
        found = [
            marker
            for (room, user), marker in t.read_markers.items()
            if room == room_id and (room, user) in t.members
        ]
        return sorted(found, key=lambda m: m.user_id)

    async def list_read_markers_of(self, room_ids: Sequence[str]) -> dict[str, list[ReadMarker]]:
        t = self.tables
        found: dict[str, list[ReadMarker]] = {room_id: [] for room_id in room_ids}
        for (room, user), marker in sorted(t.read_markers.items()):
            if room in found and (room, user) in t.members:
                found[room].append(marker)
        return found

    async def unread_counts(self, user_id: str, room_ids: Sequence[str]) -> dict[str, Unread]:
        t = self.tables
        found: dict[str, Unread] = {}
        for room_id in room_ids:
            marker = t.read_markers.get((room_id, user_id))
            after = t.messages.get(room_id, [])[marker.up_to if marker else 0 :]
            unread = sum(1 for m in after if m.author != user_id and not m.deleted)
            mentions = sum(
                1
                for e in t.inbox.values()
                if (e.user_id, e.room_id) == (user_id, room_id)
                and not e.read
                and not t.messages[room_id][t.message_seqs[room_id, e.message_id] - 1].deleted
            )
            found[room_id] = Unread(min(unread, MAX_UNREAD), min(mentions, MAX_UNREAD))
        return found
