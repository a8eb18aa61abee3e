"""The blob store seam: uploaded files' bytes, content-addressed by their SHA-256.

A blob is immutable and named by the SHA-256 of its bytes, so one copy serves every room that
uploaded them (deduplication) and its name is its own checksum (``collab verify`` re-hashes).
Which rooms may read a blob is not the store's business: ``collab.meta.files`` holds the
per-room references, and nothing here reads a document or a record.

An upload is written to a temporary file in the store's own ``tmp/`` (the same filesystem),
hashed on the way, capped while it streams (``FileTooLarge``), fsynced, then renamed into place:
a blob is whole or absent, never partial. Committing bytes already stored only touches the
existing blob (its mtime is the collector's "recently uploaded" clock) and drops the new copy.

The collector removes a blob in three steps (``remove``): rename it into ``tmp/`` (atomic), then
look at its mtime and ask whether it is still wanted, then unlink it or rename it back. An
upload of the same bytes that touched it before the rename leaves a fresh mtime; one that comes
after the rename finds no blob and puts its own copy in place. So no reference ever ends up
naming a blob that is gone, also with several processes on one directory. A blob moved aside
is never a stale temporary file: cleaning ``tmp/`` puts it back (a collector that died before
its last step, or one racing another's cleaning, loses nothing; the next pass decides again).
A removal pass runs only under the blob directory's backup lock (``removal``,
``collab.store.bloblock``): while ``collab backup`` copies blobs, nothing is removed.

``DirectoryBlobStore`` is the one implementation: ``<root>/ab/cdef...`` (the first two hex
digits name a directory). The seam is what several nodes would share through a common volume
today, or an S3-compatible store later (``stat`` then names a local cache file).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from collab.db import sqlite_path
from collab.errors import FileTooLarge
from collab.store.bloblock import try_removal_lock

SHA256_RE = re.compile(r"[0-9a-f]{64}")
_PREFIX_RE = re.compile(r"[0-9a-f]{2}")
_GC_ASIDE_RE = re.compile(r"gc-[0-9a-f]{64}-[0-9a-f]+")  # a blob ``remove`` moved aside
HEAD_BYTES = 64 * 1024  # kept in memory for sniffing the type
FLUSH_BYTES = 1024 * 1024  # written (and hashed) in a worker thread once this much is buffered
TMP = "tmp"


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    mtime: float  # the last upload of these bytes (the collector's clock)
    path: Path  # a local file holding the bytes


def blob_path(root: Path, sha256: str) -> Path:
    """Where a blob lives under ``root``: ``ab/cdef...``."""
    if not SHA256_RE.fullmatch(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return root / sha256[:2] / sha256[2:]


def files_root(store_url: str, files_dir: str = "") -> Path | None:
    """The blob directory for a store URL: ``files_dir`` if set, else ``files`` beside the
    SQLite database; None for a store without files (``memory://``: a temporary one)."""
    if files_dir:
        return Path(files_dir)
    db = sqlite_path(store_url)
    return None if db is None else db.parent / "files"


def private_mkdir(path: Path) -> None:
    """``path`` and its missing parents, each 0700 (uploads are private to their rooms)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobUpload:
    """One upload on its way in: a private temporary file, hashed as written, capped at
    ``limit`` bytes (``FileTooLarge`` past it; the caller then ``discard``s it)."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self.head = b""  # the first HEAD_BYTES, for sniffing
        self.sha256 = ""  # set by finish()
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    async def write(self, data: bytes) -> None:
        if self.size + len(data) > self.limit:
            raise FileTooLarge(f"file larger than {self.limit} bytes")
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.size += len(data)
        self._buffer += data
        if len(self._buffer) >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        await anyio.to_thread.run_sync(self._write_now, data)

    def _write_now(self, data: bytes) -> None:
        assert self._fd is not None, "the upload is closed"
        self._hash.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    async def finish(self) -> str:
        """Flush, fsync and close; the SHA-256 of everything written."""
        await self._flush()

        def _close() -> None:
            assert self._fd is not None, "the upload is closed"
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

        await anyio.to_thread.run_sync(_close)
        self.sha256 = self._hash.hexdigest()
        return self.sha256

    def discard(self) -> None:
        """Close and remove the temporary file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class BlobStore(Protocol):
    async def open(self) -> None:
        """Create the store's directories if missing."""

    async def close(self) -> None: ...

    def upload(self, limit: int) -> BlobUpload:
        """A new temporary file for an upload of at most ``limit`` bytes."""

    async def commit(self, upload: BlobUpload) -> bool:
        """Publish a finished upload under its SHA-256: True if the bytes are new, False if
        they were stored already (then the blob is touched and the upload dropped)."""

    async def stat(self, sha256: str) -> BlobInfo | None:
        """The stored blob, or None."""

    def listing(self) -> AsyncIterator[list[BlobInfo]]:
        """Every stored blob, in batches (one directory at a time)."""

    def removal(self) -> AbstractAsyncContextManager[bool]:
        """Held around a removal pass: True if blobs may be removed now, False while a
        backup (or another collector's pass) holds the store (remove nothing then)."""

    async def remove(
        self, sha256: str, older_than: float, in_use: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Remove the blob unless it was uploaded after ``older_than`` or ``in_use()`` says
        it is wanted (asked after the blob was moved aside); whether it was removed."""

    async def clean_temps(self, older_than: float) -> int:
        """Remove temporary files untouched since ``older_than`` (uploads a crash left)."""


class DirectoryBlobStore:
    """Blobs in a directory (``root``); with ``root`` None, a temporary directory that lives
    as long as the store is open (``memory://``)."""

    def __init__(self, root: Path | None) -> None:
        self._given = root
        self.root = root or Path(tempfile.gettempdir()) / "collab-files-unopened"

    async def open(self) -> None:
        if self._given is None:
            self.root = Path(tempfile.mkdtemp(prefix="collab-files-"))
        await anyio.to_thread.run_sync(private_mkdir, self.root / TMP)

    async def close(self) -> None:
        if self._given is None:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(self.root, ignore_errors=True))

    def upload(self, limit: int) -> BlobUpload:
        return BlobUpload(self.root / TMP / f"upload-{secrets.token_hex(12)}", limit)

    async def commit(self, upload: BlobUpload) -> bool:
        target = blob_path(self.root, upload.sha256)

        def _commit() -> bool:
            try:
                os.utime(target)  # stored already: the collector's clock starts again
            except FileNotFoundError:
                private_mkdir(target.parent)
                os.rename(upload.path, target)
                _fsync_dir(target.parent)
                return True
            upload.discard()
            return False

        return await anyio.to_thread.run_sync(_commit)

    async def stat(self, sha256: str) -> BlobInfo | None:
        path = blob_path(self.root, sha256)
        try:
            st = await anyio.to_thread.run_sync(os.stat, path)
        except FileNotFoundError:
            return None
        return BlobInfo(sha256, st.st_size, st.st_mtime, path)

    async def listing(self) -> AsyncIterator[list[BlobInfo]]:
        prefixes = await anyio.to_thread.run_sync(self._prefixes)
        for prefix in prefixes:
            batch = await anyio.to_thread.run_sync(self._scan, prefix)
            if batch:
                yield batch

    def _prefixes(self) -> list[str]:
        names = os.listdir(self.root) if self.root.is_dir() else []
        return sorted(n for n in names if _PREFIX_RE.fullmatch(n))

    def _scan(self, prefix: str) -> list[BlobInfo]:
        found = []
        with os.scandir(self.root / prefix) as entries:
            for entry in entries:
                sha256 = prefix + entry.name
                if SHA256_RE.fullmatch(sha256) and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found.append(BlobInfo(sha256, st.st_size, st.st_mtime, Path(entry.path)))
        return found

    @asynccontextmanager
    async def removal(self) -> AsyncIterator[bool]:
        held = await anyio.to_thread.run_sync(try_removal_lock, self.root)
        try:
            yield held is not None
        finally:
            if held is not None:
                os.close(held)

    async def remove(
        self, sha256: str, older_than: float, in_use: Callable[[], Awaitable[bool]]
    ) -> bool:
        path = blob_path(self.root, sha256)
        aside = self.root / TMP / f"gc-{sha256}-{secrets.token_hex(6)}"
        try:
            await anyio.to_thread.run_sync(os.rename, path, aside)
        except FileNotFoundError:
            return False
        try:
            st = await anyio.to_thread.run_sync(os.stat, aside)
            if st.st_mtime > older_than or await in_use():
                # Wanted after all. An upload that found no blob meanwhile put an identical
                # copy in place: either is the same bytes.
                await anyio.to_thread.run_sync(os.replace, aside, path)
                return False
            await anyio.to_thread.run_sync(aside.unlink)
        except FileNotFoundError:
            return False  # another collector's clean_temps put it back meanwhile
        return True

    async def clean_temps(self, older_than: float) -> int:
        def _clean() -> int:
            removed = 0
            with os.scandir(self.root / TMP) as entries:
                for entry in entries:
                    if _GC_ASIDE_RE.fullmatch(entry.name):
                        self._put_back(Path(entry.path), entry.name[3:67])
                    elif entry.stat(follow_symlinks=False).st_mtime < older_than:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)
                            removed += 1
            return removed

        return await anyio.to_thread.run_sync(_clean)

    def _put_back(self, aside: Path, sha256: str) -> None:
        """A blob a collector moved aside (``remove``): never a stale temporary file. Put
        back where it was unless an upload put the same bytes there meanwhile (``link``
        never replaces), so a collector that died with a wanted blob aside loses nothing;
        one still at work finds it gone and leaves it to its next pass."""
        target = blob_path(self.root, sha256)
        private_mkdir(target.parent)
        with contextlib.suppress(FileNotFoundError, FileExistsError):
            os.link(aside, target)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)


def open_blob_store(store_url: str, files_dir: str = "") -> BlobStore:
    """The blob store for a store URL and the ``files_dir`` setting (not yet opened)."""
    return DirectoryBlobStore(files_root(store_url, files_dir))
