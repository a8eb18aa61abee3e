"""Files (``migrations/sqlite/0010_files.sql``).

``add_file`` checks the room exists, sums its sizes and inserts in one write transaction that
nothing interleaves with, so two uploads cannot both pass the room's quota, and an upload that
ends after its room was deleted leaves no record for a later room of the same id to find.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple
from typing import Any

from collab.errors import NotFound
from collab.meta.files import FileRecord, room_quota_refusal
from collab.meta.sql.base import SqlKind, Tx
from collab.meta.sql.rooms import room_exists

_COLUMNS = "id, room_id, sha256, size, mime, name, uploader, created_at"
_BATCH = 500  # sha256s per IN (...) query: well under SQLite's variable limit


def _record(row: tuple[Any, ...]) -> FileRecord:
    return FileRecord(*row)


class SqlFiles(SqlKind):
    async def add_file(self, record: FileRecord, room_quota: int) -> FileRecord:
        def _add(db: Tx) -> FileRecord:
            if not room_exists(db, record.room_id):  # deleted while the bytes came in
                raise NotFound(f"no room {record.room_id!r}")
            (used,) = db.execute(
                "SELECT coalesce(sum(size), 0) FROM files WHERE room_id=?", (record.room_id,)
            ).fetchone()
            if used + record.size > room_quota:
                raise room_quota_refusal(room_quota)
            db.execute(
                f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", astuple(record)
            )
            return record

        return await self._write(_add)

    async def get_file(self, room_id: str, file_id: str) -> FileRecord | None:
        rows = await self._lookup(
            f"SELECT {_COLUMNS} FROM files WHERE room_id=? AND id=?", (room_id, file_id)
        )
        return _record(rows[0]) if rows else None

    async def list_files(self, room_id: str) -> list[FileRecord]:
        rows = await self._read(
            f"SELECT {_COLUMNS} FROM files WHERE room_id=? ORDER BY created_at, id", (room_id,)
        )
        return [_record(row) for row in rows]

    async def delete_file(self, room_id: str, file_id: str) -> FileRecord | None:
        def _delete(db: Tx) -> FileRecord | None:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM files WHERE room_id=? AND id=?", (room_id, file_id)
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM files WHERE id=?", (file_id,))
            return _record(row)

        return await self._write(_delete)

    async def room_file_bytes(self, room_id: str) -> int:
        rows = await self._read(
            "SELECT coalesce(sum(size), 0) FROM files WHERE room_id=?", (room_id,)
        )
        return int(rows[0][0])

    async def referenced_blobs(self, sha256s: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(sha256s), _BATCH):
            batch = list(sha256s[start : start + _BATCH])
            marks = ", ".join("?" * len(batch))
            rows = await self._read(
                f"SELECT DISTINCT sha256 FROM files WHERE sha256 IN ({marks})"
                " AND room_id IN (SELECT id FROM rooms)",
                tuple(batch),
            )
            found.update(row[0] for row in rows)
        return found

    async def drop_orphan_files(self) -> int:
        def _drop(db: Tx) -> int:
            cursor = db.execute("DELETE FROM files WHERE room_id NOT IN (SELECT id FROM rooms)")
            return int(cursor.rowcount)

        return await self._write(_drop)

    async def stored_blob_bytes(self) -> int:
        rows = await self._read(
            "SELECT coalesce(sum(size), 0) FROM (SELECT DISTINCT sha256, size FROM files) AS blobs"
        )
        return int(rows[0][0])
