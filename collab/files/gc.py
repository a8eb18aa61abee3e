"""The collector: removes the bytes no room references any more.

A blob goes only when no record of an existing room names it (``Files.referenced_blobs``) and
nothing uploaded it within ``GRACE`` (its mtime, touched by every upload of the same bytes), and
the store asks once more after moving it aside (``BlobStore.remove``), so an upload racing the
collector keeps its bytes. Records of deleted rooms are dropped first: they reference nothing.
Temporary files older than ``TEMP_GRACE`` (uploads a crash cut short) go too. The collector
reads records and file names only, never a document's content: an embed in a doc is no
reference (it resolves only to files the room itself references).
"""

from __future__ import annotations

from dataclasses import dataclass

from collab.meta.files import Files
from collab.store.blobs import BlobStore

GRACE = 3600.0  # a blob uploaded within the last hour is never collected
TEMP_GRACE = 24 * 3600.0  # an upload's temporary file may live this long (a slow link)


@dataclass(frozen=True)
class Collected:
    references: int = 0  # records of deleted rooms dropped
    blobs: int = 0  # blobs removed
    bytes: int = 0  # their bytes
    temps: int = 0  # stale temporary files removed

    @property
    def total(self) -> int:
        return self.references + self.blobs + self.temps


async def collect(files: Files, blobs: BlobStore, *, now: float, grace: float = GRACE) -> Collected:
    """One pass over the store; safe while uploads and downloads go on."""
    references = await files.drop_orphan_files()
    cutoff = now - grace
    removed = freed = 0
    async for batch in blobs.listing():
        old = [blob for blob in batch if blob.mtime <= cutoff]
        wanted = await files.referenced_blobs([b.sha256 for b in old]) if old else set()
        for blob in old:
            if blob.sha256 in wanted:
                continue

            async def in_use(sha256: str = blob.sha256) -> bool:
                return bool(await files.referenced_blobs([sha256]))

            if await blobs.remove(blob.sha256, cutoff, in_use):
                removed += 1
                freed += blob.size
    temps = await blobs.clean_temps(now - max(grace, TEMP_GRACE))
    return Collected(references, removed, freed, temps)
