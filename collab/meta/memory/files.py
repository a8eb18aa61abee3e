"""Files in memory: the same rules as SQLite's, each method one step on the event loop."""

from __future__ import annotations

from collections.abc import Sequence

from collab.errors import NotFound
from collab.meta.files import FileRecord, room_quota_refusal
from collab.meta.memory.base import MemoryKind


class MemoryFiles(MemoryKind):
    def _room_bytes(self, room_id: str) -> int:
        return sum(f.size for f in self.tables.files.values() if f.room_id == room_id)

    async def add_file(self, record: FileRecord, room_quota: int) -> FileRecord:
        if record.room_id not in self.tables.rooms:
            raise NotFound(f"no room {record.room_id!r}")
        if self._room_bytes(record.room_id) + record.size > room_quota:
            raise room_quota_refusal(room_quota)
        self.tables.files[record.id] = record
        return record

    async def get_file(self, room_id: str, file_id: str) -> FileRecord | None:
        found = self.tables.files.get(file_id)
        return found if found is not None and found.room_id == room_id else None

    async def list_files(self, room_id: str) -> list[FileRecord]:
        found = [f for f in self.tables.files.values() if f.room_id == room_id]
        return sorted(found, key=lambda f: (f.created_at, f.id))

    async def delete_file(self, room_id: str, file_id: str) -> FileRecord | None:
        found = await self.get_file(room_id, file_id)
        if found is not None:
            del self.tables.files[file_id]
        return found

    async def room_file_bytes(self, room_id: str) -> int:
        return self._room_bytes(room_id)

    async def referenced_blobs(self, sha256s: Sequence[str]) -> set[str]:
        wanted, rooms = set(sha256s), self.tables.rooms
        return {
            f.sha256
            for f in self.tables.files.values()
            if f.sha256 in wanted and f.room_id in rooms
        }

    async def drop_orphan_files(self) -> int:
        gone = [i for i, f in self.tables.files.items() if f.room_id not in self.tables.rooms]
        for file_id in gone:
            del self.tables.files[file_id]
        return len(gone)

    async def stored_blob_bytes(self) -> int:
        return sum(dict((f.sha256, f.size) for f in self.tables.files.values()).values())
