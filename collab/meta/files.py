"""Files: a room's references to uploaded bytes, one row per upload.

The bytes live in a content-addressed blob store (``collab.store.blobs``), named by their
SHA-256 and shared by every room that uploaded the same content; a ``FileRecord`` is what makes
them readable in one room. Only an upload into a room creates a record there (attaching a file
to a message needs one already), so knowing another room's file id grants nothing. A blob that
no record of an existing room names may be collected (``collab.files.gc``): records of a room
that no longer exists count for nothing and are dropped by the collector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collab.errors import LimitReached, Quota


@dataclass(frozen=True)
class FileRecord:
    id: str
    room_id: str
    sha256: str  # the blob's name: 64 lowercase hex digits
    size: int
    mime: str  # sniffed from the bytes, never the client's word
    name: str  # the client's name, sanitised (collab.files.names): display and downloads only
    uploader: str  # user id
    created_at: float

    def attachment(self) -> dict[str, Any]:
        """The file as a chat message carries it (``Message.attachments``)."""
        return {"id": self.id, "name": self.name, "size": self.size, "mime": self.mime}


def room_quota_refusal(room_quota: int) -> LimitReached:
    """What ``add_file`` raises past the room's quota (both backends word it alike)."""
    return LimitReached(
        Quota.room_files, f"the room's files would pass their quota of {room_quota} bytes"
    )


class Files(Protocol):
    async def add_file(self, record: FileRecord, room_quota: int) -> FileRecord:
        """Store the record, unless the room's files would then pass ``room_quota`` bytes:
        errors.LimitReached (``Quota.room_files``), nothing written; errors.NotFound when the
        room no longer exists (deleted during the upload). The checks and the insert are one
        step, so concurrent uploads cannot pass the quota together."""

    async def get_file(self, room_id: str, file_id: str) -> FileRecord | None:
        """The room's record of that id; None when missing or another room's."""

    async def list_files(self, room_id: str) -> list[FileRecord]:
        """The room's records, oldest first (``created_at``, then id)."""

    async def delete_file(self, room_id: str, file_id: str) -> FileRecord | None:
        """Delete the room's record (the blob stays until collected); None when missing."""

    async def room_file_bytes(self, room_id: str) -> int:
        """The sum of the sizes of the room's records (what ``max_room_files_bytes`` caps)."""

    async def referenced_blobs(self, sha256s: Sequence[str]) -> set[str]:
        """Those of ``sha256s`` that a record of an existing room names."""

    async def drop_orphan_files(self) -> int:
        """Delete the records of rooms that no longer exist; how many went."""

    async def stored_blob_bytes(self) -> int:
        """The bytes of the distinct blobs the records name (each counted once)."""
