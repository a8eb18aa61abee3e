"""The collector: removes the bytes no room references any more.

A blob goes only when no record of an existing room names it (``Files.referenced_blobs``) and
nothing uploaded it within ``GRACE`` (its mtime, touched by every upload of the same bytes), and
the store asks once more after moving it aside (``BlobStore.remove``), so an upload racing the
collector keeps its bytes. Records of deleted rooms are dropped first: they reference nothing.
Temporary files older than ``TEMP_GRACE`` (uploads a crash cut short) go too. The collector
reads records and file names only, never a document's content: an embed in a doc is no
reference (it resolves only to files the room itself references).

No blob is removed while ``collab backup`` runs on the same blob directory: the removal pass
takes the directory's backup lock without waiting (``BlobStore.removal``,
``collab.store.bloblock``), and while a backup holds it the pass is deferred (``deferred``,
logged and counted by the service, printed by ``collab files gc``); references of deleted rooms
and stale temporary files still go. A backup thus copies every blob its snapshot references,
even one whose last reference was deleted after the snapshot.
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
    deferred: bool = False  # a backup held the blob directory: no blob was removed this pass

    @property
    def total(self) -> int:
        return self.references + self.blobs + self.temps


async def collect(files: Files, blobs: BlobStore, *, now: float, grace: float = GRACE) -> Collected:
    """One pass over the store; safe while uploads and downloads go on."""
    references = await files.drop_orphan_files()
    removed = freed = 0
    async with blobs.removal() as allowed:
        if allowed:
            removed, freed = await _remove_unreferenced(files, blobs, now - grace)
    temps = await blobs.clean_temps(now - max(grace, TEMP_GRACE))
    return Collected(references, removed, freed, temps, deferred=not allowed)


async def _remove_unreferenced(files: Files, blobs: BlobStore, cutoff: float) -> tuple[int, int]:
    """Remove every blob older than ``cutoff`` that no record names: (count, bytes)."""
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
    return removed, freed
