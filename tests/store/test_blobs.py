"""The blob store seam: content-addressed, atomic, deduplicated, and safe to collect from while
uploads go on. One contract, run against a directory and the memory:// temporary one."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab.errors import FileTooLarge
from collab.store.blobs import (
    FLUSH_BYTES,
    HEAD_BYTES,
    BlobStore,
    DirectoryBlobStore,
    blob_path,
    files_root,
    open_blob_store,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["directory", "temporary"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    url = f"sqlite:///{tmp_path / 'c.db'}" if request.param == "directory" else "memory://"
    blobs = open_blob_store(url)
    await blobs.open()
    yield blobs
    await blobs.close()


def root_of(store: BlobStore) -> Path:
    assert isinstance(store, DirectoryBlobStore)
    return store.root


async def put(store: BlobStore, data: bytes, limit: int = 1 << 30) -> tuple[str, bool]:
    upload = store.upload(limit)
    for start in range(0, len(data), 100_000):
        await upload.write(data[start : start + 100_000])
    sha256 = await upload.finish()
    return sha256, await store.commit(upload)


def temps(store: BlobStore) -> list[str]:
    return os.listdir(root_of(store) / "tmp")


async def test_a_blob_is_named_by_its_sha256_under_two_hex_digits(store: BlobStore) -> None:
    data = os.urandom(3 * FLUSH_BYTES + 17)  # several flushes and a tail
    sha256, new = await put(store, data)
    assert new and sha256 == hashlib.sha256(data).hexdigest()
    info = await store.stat(sha256)
    assert info is not None and info.size == len(data)
    assert info.path == root_of(store) / sha256[:2] / sha256[2:]
    assert info.path.read_bytes() == data
    assert info.path.stat().st_mode & 0o077 == 0  # private: uploads belong to their rooms
    assert temps(store) == []


async def test_the_head_is_kept_for_sniffing(store: BlobStore) -> None:
    upload = store.upload(1 << 20)
    await upload.write(b"a" * 10)
    await upload.write(b"b" * HEAD_BYTES)
    assert upload.head == b"a" * 10 + b"b" * (HEAD_BYTES - 10) and upload.size == HEAD_BYTES + 10
    upload.discard()


async def test_the_same_bytes_are_stored_once_and_touched(store: BlobStore) -> None:
    sha256, _ = await put(store, b"same bytes")
    info = await store.stat(sha256)
    assert info is not None
    os.utime(info.path, (1, 1))
    again, new = await put(store, b"same bytes")
    assert again == sha256 and not new
    touched = await store.stat(sha256)
    assert touched is not None and touched.mtime > time.time() - 60
    assert temps(store) == []  # the second copy went


async def test_past_the_limit_the_write_is_refused_and_discard_leaves_nothing(
    store: BlobStore,
) -> None:
    upload = store.upload(10)
    await upload.write(b"0123456789")
    with pytest.raises(FileTooLarge):
        await upload.write(b"x")
    upload.discard()
    upload.discard()  # idempotent
    assert temps(store) == []
    assert [batch async for batch in store.listing()] == []


async def test_listing_and_missing_blobs(store: BlobStore) -> None:
    shas = {(await put(store, bytes([i]) * 10))[0] for i in range(5)}
    listed = [blob async for batch in store.listing() for blob in batch]
    assert {b.sha256 for b in listed} == shas and all(b.size == 10 for b in listed)
    assert await store.stat("0" * 64) is None
    with pytest.raises(ValueError):
        blob_path(root_of(store), "../../etc/passwd")


async def test_remove_keeps_recent_and_wanted_blobs(store: BlobStore) -> None:
    sha256, _ = await put(store, b"bytes")
    info = await store.stat(sha256)
    assert info is not None
    now = time.time()

    async def unwanted() -> bool:
        return False

    async def wanted() -> bool:
        return True

    assert not await store.remove(sha256, now - 3600, unwanted)  # uploaded just now
    os.utime(info.path, (now - 7200, now - 7200))
    assert not await store.remove(sha256, now - 3600, wanted)  # a reference appeared
    assert await store.stat(sha256) is not None and temps(store) == []
    assert await store.remove(sha256, now - 3600, unwanted)
    assert await store.stat(sha256) is None and temps(store) == []
    assert not await store.remove(sha256, now - 3600, unwanted)  # gone already


async def test_an_upload_racing_the_collector_keeps_its_bytes(store: BlobStore) -> None:
    """The collector has moved an old blob aside when the same bytes are uploaded again: the
    upload finds no blob, puts its own copy in place, and the collector's removal of the
    copy it moved aside leaves the new one."""
    sha256, _ = await put(store, b"popular")
    info = await store.stat(sha256)
    assert info is not None
    old = time.time() - 7200
    os.utime(info.path, (old, old))

    async def upload_meanwhile() -> bool:
        assert await store.stat(sha256) is None  # moved aside
        assert (await put(store, b"popular"))[1]  # new bytes, as far as the upload knows
        return False  # the collector's check ran before the new reference was recorded

    assert await store.remove(sha256, old + 60, upload_meanwhile)
    after = await store.stat(sha256)
    assert after is not None and after.path.read_bytes() == b"popular"


async def test_stale_temporary_files_are_cleaned(store: BlobStore) -> None:
    stale = store.upload(100)
    await stale.write(b"cut short by a crash")
    fresh = store.upload(100)
    os.utime(stale.path, (1, 1))
    assert await store.clean_temps(time.time() - 3600) == 1
    assert temps(store) == [fresh.path.name]
    fresh.discard()


async def test_the_temporary_store_goes_with_close(tmp_path: Path) -> None:
    blobs = DirectoryBlobStore(None)
    await blobs.open()
    root = blobs.root
    await put(blobs, b"x")
    await blobs.close()
    assert not root.exists()


def test_where_the_files_live() -> None:
    assert files_root("sqlite:////var/lib/collab/collab.db") == Path("/var/lib/collab/files")
    assert files_root("sqlite:///data/c.db") == Path("data/files")
    assert files_root("collab.db") == Path("files")
    assert files_root("memory://") is None
    assert files_root("memory://", "/srv/files") == Path("/srv/files")
    assert files_root("sqlite:///c.db", "/srv/files") == Path("/srv/files")


async def test_a_second_collector_cleaning_temps_keeps_a_blob_moved_aside(
    store: BlobStore,
) -> None:
    """One collector has moved a referenced blob aside (into tmp/) and asks whether it is
    wanted; meanwhile another collector (another node, ``collab files gc``) ends its pass
    with ``clean_temps``. The blob, uploaded days ago, must not go as a stale temporary file."""
    sha256, _ = await put(store, b"referenced, uploaded long ago")
    info = await store.stat(sha256)
    assert info is not None
    old = time.time() - 3 * 24 * 3600
    os.utime(info.path, (old, old))

    async def wanted_while_another_cleans() -> bool:
        assert await store.stat(sha256) is None  # moved aside
        await store.clean_temps(time.time() - 24 * 3600)  # the other collector's last step
        return True  # a reference names it

    assert not await store.remove(sha256, time.time() - 3600, wanted_while_another_cleans)
    after = await store.stat(sha256)
    assert after is not None and after.path.read_bytes() == b"referenced, uploaded long ago"


async def test_a_blob_a_crash_left_aside_is_put_back_not_cleaned(store: BlobStore) -> None:
    """A collector killed between moving a blob aside and putting it back (it was wanted)
    leaves it in tmp/: the next cleaning puts it back instead of deleting it as a stale
    temporary file (the next pass decides again whether it is wanted)."""
    sha256, _ = await put(store, b"moved aside when the collector died")
    info = await store.stat(sha256)
    assert info is not None
    old = time.time() - 3 * 24 * 3600
    os.utime(info.path, (old, old))
    os.rename(info.path, root_of(store) / "tmp" / f"gc-{sha256}-0123456789ab")
    await store.clean_temps(time.time() - 24 * 3600)
    after = await store.stat(sha256)
    assert after is not None and after.path.read_bytes() == b"moved aside when the collector died"
    assert temps(store) == []
