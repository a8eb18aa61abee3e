"""The collector (issue 12, Done means 5): referenced files and recent uploads stay, orphans go,
and the references of deleted rooms count for nothing. Over both meta backends and a real
blob directory, with the blobs' mtimes set by hand (the collector's clock)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from collab.cli import main
from collab.db import migrate_with_backup
from collab.files.gc import GRACE, Collected, collect
from collab.meta import FileRecord, MetaStore
from collab.meta.sqlite import SQLiteMetaStore
from collab.store.bloblock import backup_lock
from collab.store.blobs import BlobStore, DirectoryBlobStore

pytestmark = pytest.mark.anyio

HOUR = 3600.0


@pytest.fixture
async def blobs(tmp_path: Path) -> AsyncIterator[BlobStore]:
    store = DirectoryBlobStore(tmp_path / "files")
    await store.open()
    yield store
    await store.close()


async def blob(blobs: BlobStore, data: bytes, age: float) -> str:
    """Store ``data`` as if last uploaded ``age`` seconds ago."""
    upload = blobs.upload(1 << 20)
    await upload.write(data)
    sha256 = await upload.finish()
    await blobs.commit(upload)
    info = await blobs.stat(sha256)
    assert info is not None
    when = time.time() - age
    os.utime(info.path, (when, when))
    return sha256


async def reference(meta: MetaStore, room: str, sha256: str, file_id: str) -> None:
    record = FileRecord(file_id, room, sha256, 1, "text/plain", "f.txt", "u1", time.time())
    await meta.add_file(record, room_quota=1 << 30)


async def stored(blobs: BlobStore) -> set[str]:
    return {b.sha256 async for batch in blobs.listing() for b in batch}


async def test_referenced_and_recent_stay_orphans_go(meta: MetaStore, blobs: BlobStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.create_room("gone", "G", "u1")
    kept = await blob(blobs, b"referenced, old", age=10 * HOUR)
    recent = await blob(blobs, b"unreferenced, just uploaded", age=60)
    await blob(blobs, b"unreferenced, old", age=2 * HOUR)  # an orphan
    deleted = await blob(blobs, b"referenced by a deleted file", age=2 * HOUR)
    of_gone_room = await blob(blobs, b"referenced by a deleted room only", age=2 * HOUR)
    shared = await blob(blobs, b"in a deleted room and a live one", age=2 * HOUR)
    await reference(meta, "r", kept, "f1")
    await reference(meta, "r", deleted, "f2")
    await meta.delete_file("r", "f2")
    await reference(meta, "gone", of_gone_room, "f3")
    await reference(meta, "gone", shared, "f4")
    await reference(meta, "r", shared, "f5")
    await meta.delete_room("gone")

    collected = await collect(meta, blobs, now=time.time())
    # The deleted room's references went with it; its blobs are the collector's.
    assert collected.blobs == 3 and collected.references == 0 and collected.total == 3
    assert collected.bytes == len(b"unreferenced, old") + len(b"referenced by a deleted file") + (
        len(b"referenced by a deleted room only")
    )
    assert await stored(blobs) == {kept, recent, shared}
    assert await meta.get_file("r", "f1") is not None and await meta.get_file("r", "f5")
    # The next pass finds nothing; once the recent upload is old, it goes too.
    assert await collect(meta, blobs, now=time.time()) == Collected()
    assert (await collect(meta, blobs, now=time.time() + GRACE)).blobs == 1
    assert await stored(blobs) == {kept, shared}


async def test_a_reference_recorded_during_the_pass_keeps_the_blob(
    meta: MetaStore, blobs: BlobStore
) -> None:
    """The collector listed an old orphan, then an upload of the same bytes recorded a
    reference before the collector got to it: asked again after moving it aside, it stays."""
    await meta.create_room("r", "R", "u1")
    sha256 = await blob(blobs, b"uploaded again", age=2 * HOUR)

    class Racing:
        """The meta store, with a reference appearing after the first question."""

        def __init__(self) -> None:
            self.asked = 0

        async def drop_orphan_files(self) -> int:
            return 0

        async def referenced_blobs(self, sha256s: list[str]) -> set[str]:
            self.asked += 1
            if self.asked == 2:
                await reference(meta, "r", sha256, "late")
            return await meta.referenced_blobs(sha256s)

    racing = Racing()
    collected = await collect(racing, blobs, now=time.time())  # type: ignore[arg-type]
    assert collected.blobs == 0 and racing.asked == 2
    assert await stored(blobs) == {sha256}


async def test_a_pass_while_a_backup_runs_removes_no_blob(
    meta: MetaStore, blobs: BlobStore, tmp_path: Path
) -> None:
    """A backup holds the blob directory (``collab.store.bloblock``): the pass is deferred,
    said in its result, and the next one, after the backup, removes the orphan."""
    orphan = await blob(blobs, b"an orphan a backup may still copy", age=2 * HOUR)
    with backup_lock(tmp_path / "files"):
        collected = await collect(meta, blobs, now=time.time())
    assert collected == Collected(deferred=True) and await stored(blobs) == {orphan}
    assert await collect(meta, blobs, now=time.time()) == Collected(blobs=1, bytes=33)
    assert await stored(blobs) == set()


def test_the_cli_collects_what_the_server_would(tmp_path: Path) -> None:
    db = tmp_path / "collab.db"
    migrate_with_backup(db)
    files = tmp_path / "files"

    async def prepare() -> tuple[str, str]:
        meta = SQLiteMetaStore(db)
        blobs = DirectoryBlobStore(files)
        await meta.open()
        await blobs.open()
        await meta.create_room("r", "R", "u1")
        kept = await blob(blobs, b"kept", age=2 * HOUR)
        await reference(meta, "r", kept, "f1")
        orphan = await blob(blobs, b"orphan", age=2 * HOUR)
        await meta.close()
        return kept, orphan

    kept, orphan = asyncio.run(prepare())
    runner = CliRunner()
    result = runner.invoke(main, ["files", "gc", "--store", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    assert "removed 1 unreferenced files (6 bytes)" in result.output
    assert (files / kept[:2] / kept[2:]).is_file()
    assert not (files / orphan[:2] / orphan[2:]).exists()
    result = runner.invoke(main, ["files", "gc", "--store", f"sqlite:///{db}", "--grace", "0"])
    assert "removed 0 unreferenced files" in result.output
    refused = runner.invoke(main, ["files", "gc", "--store", "memory://"])
    assert refused.exit_code == 2 and "keeps no files" in refused.output
