"""``FileService``: a room's files, between the HTTP door (``collab.api.files``) and the two
stores: the bytes in the blob store (``collab.store.blobs``), the per-room references in the
meta store (``collab.meta.files``).

An upload streams into a ``BlobUpload`` (hashed and capped on the way, never whole in memory),
then ``store`` sniffs its type, publishes the bytes under their hash (deduplicated) and records
the room's reference, within the room's quota. A file is readable in a room only through that
room's reference (``get``); previews are made in worker threads, a few at a time, and kept in
a small cache by hash. The collector (``collab.files.gc``) runs with the server's purge; a pass
that a running ``collab backup`` deferred is logged and counted.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

import anyio
import anyio.to_thread

from collab.errors import CollabError, NotFound
from collab.files.gc import GRACE, Collected, collect
from collab.files.names import sanitise_name
from collab.files.preview import Preview, make_preview
from collab.files.sniff import is_inline, sniff
from collab.meta import FileRecord, MetaStore
from collab.meta.files import room_quota_refusal
from collab.metrics.files import FileMetrics
from collab.settings import Settings
from collab.store.blobs import BlobInfo, BlobStore, BlobUpload

log = logging.getLogger("collab.files")

PREVIEW_WORKERS = 2  # previews decoded at once (each may hold a 40 MP image)
PREVIEW_CACHE = 64  # previews kept, by hash (a few MiB at most)


class FileService:
    def __init__(
        self,
        meta: MetaStore,
        blobs: BlobStore,
        settings: Settings,
        metrics: FileMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.meta = meta
        self.blobs = blobs
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self._previews: OrderedDict[str, Preview | None] = OrderedDict()
        self._preview_workers = anyio.CapacityLimiter(PREVIEW_WORKERS)

    async def open(self) -> None:
        await self.blobs.open()
        self.metrics.stored_bytes.set(await self.meta.stored_blob_bytes())

    async def close(self) -> None:
        await self.blobs.close()

    # -- uploads -----------------------------------------------------------------------

    async def room_space(self, room_id: str) -> int:
        """Bytes the room may still upload; LimitReached (``room_files``) when none."""
        quota = self.settings.max_room_files_bytes
        left = quota - await self.meta.room_file_bytes(room_id)
        if left <= 0:
            raise room_quota_refusal(quota)
        return left

    def begin(self) -> BlobUpload:
        """A new upload, capped at ``max_upload_size``; the caller writes, then ``store``s
        or ``discard``s it."""
        return self.blobs.upload(self.settings.max_upload_size)

    async def store(
        self, room_id: str, uploader: str, upload: BlobUpload, name: str | None
    ) -> FileRecord:
        """Finish the upload and record it in the room. Past the room's quota the bytes, if
        new, stay unreferenced for the collector (an upload of the same bytes may want them
        before it runs)."""
        sha256 = await upload.finish()
        mime = sniff(upload.head)
        new_bytes = await self.blobs.commit(upload)
        record = FileRecord(
            id=uuid.uuid4().hex,
            room_id=room_id,
            sha256=sha256,
            size=upload.size,
            mime=mime,
            name=sanitise_name(name),
            uploader=uploader,
            created_at=self.clock(),
        )
        if new_bytes:
            self.metrics.stored(upload.size)
        await self.meta.add_file(record, self.settings.max_room_files_bytes)
        self.metrics.uploaded(upload.size)
        return record

    # -- reads -------------------------------------------------------------------------

    async def get(self, room_id: str, file_id: str) -> FileRecord:
        """The room's file; NotFound when missing or another room's (the same answer)."""
        found = await self.meta.get_file(room_id, file_id)
        if found is None:
            raise NotFound("no such file")
        return found

    async def blob(self, record: FileRecord) -> BlobInfo:
        """The stored bytes of a referenced file (their absence is a server fault)."""
        found = await self.blobs.stat(record.sha256)
        if found is None:
            log.error("the bytes of file %s (%s) are missing", record.id, record.sha256)
            raise CollabError("file bytes missing")
        return found

    async def preview(self, record: FileRecord) -> Preview | None:
        """A thumbnail of a raster image, or None (not an image, too large, undecodable)."""
        if not is_inline(record.mime):
            return None
        if record.sha256 in self._previews:
            self._previews.move_to_end(record.sha256)
            return self._previews[record.sha256]
        blob = await self.blob(record)
        made = await anyio.to_thread.run_sync(
            make_preview, blob.path, limiter=self._preview_workers
        )
        self._previews[record.sha256] = made
        while len(self._previews) > PREVIEW_CACHE:
            self._previews.popitem(last=False)
        return made

    # -- removal -----------------------------------------------------------------------

    async def delete(self, room_id: str, file_id: str) -> FileRecord:
        """Drop the room's reference; the bytes go with the collector, once unreferenced."""
        found = await self.meta.delete_file(room_id, file_id)
        if found is None:
            raise NotFound("no such file")
        return found

    async def collect(self, grace: float = GRACE) -> Collected:
        collected = await collect(self.meta, self.blobs, now=self.clock(), grace=grace)
        self.metrics.collected(collected.bytes)
        if collected.deferred:
            self.metrics.collection_deferred.inc()
            log.info(
                "a backup (or another collector's pass) holds the files: "
                "no unreferenced file removed this pass"
            )
        if collected.total:
            log.info("collected %s", collected)
        return collected
