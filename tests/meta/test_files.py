"""Files (issue 12): a room's references to uploaded bytes, on every backend."""

from __future__ import annotations

import anyio
import pytest

from collab.errors import LimitReached, NotFound, Quota
from collab.meta import FileRecord, MetaStore
from tests.meta.support import T0

pytestmark = pytest.mark.anyio

SHA_A = "a" * 64
SHA_B = "b" * 64


def record(file_id: str, room: str = "r", sha256: str = SHA_A, size: int = 10) -> FileRecord:
    return FileRecord(file_id, room, sha256, size, "image/png", f"{file_id}.png", "u1", T0)


async def test_a_file_is_read_only_through_its_own_room(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.create_room("other", "O", "u1")
    stored = await meta.add_file(record("f1"), room_quota=1000)
    assert await meta.get_file("r", "f1") == stored
    assert await meta.get_file("other", "f1") is None  # knowing the id grants nothing
    assert await meta.get_file("r", "nope") is None
    assert stored.attachment() == {"id": "f1", "name": "f1.png", "size": 10, "mime": "image/png"}


async def test_list_delete_and_bytes_per_room(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.create_room("other", "O", "u1")
    await meta.add_file(record("f2", size=5), room_quota=1000)
    await meta.add_file(record("f1", size=7), room_quota=1000)
    await meta.add_file(record("g1", room="other"), room_quota=1000)
    assert [f.id for f in await meta.list_files("r")] == ["f1", "f2"]  # same time: by id
    assert await meta.room_file_bytes("r") == 12 and await meta.room_file_bytes("none") == 0
    deleted = await meta.delete_file("r", "f1")
    assert deleted is not None and deleted.id == "f1"
    assert await meta.delete_file("r", "f1") is None
    assert await meta.delete_file("r", "g1") is None  # another room's
    assert [f.id for f in await meta.list_files("r")] == ["f2"]


async def test_the_room_quota_counts_every_upload_and_holds_under_concurrency(
    meta: MetaStore,
) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.create_room("busy", "B", "u1")
    await meta.add_file(record("f1", size=60), room_quota=100)
    with pytest.raises(LimitReached) as refused:
        await meta.add_file(record("f2", size=41), room_quota=100)
    assert refused.value.quota is Quota.room_files
    await meta.add_file(record("f3", size=40), room_quota=100)  # exactly at the quota
    assert await meta.get_file("r", "f2") is None
    # Ten concurrent uploads of 10 bytes into a room with room for 5 of them: 5 pass.
    passed: list[str] = []

    async def upload(i: int) -> None:
        try:
            await meta.add_file(record(f"c{i}", room="busy", size=10), room_quota=50)
            passed.append(str(i))
        except LimitReached:
            pass

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(upload, i)
    assert len(passed) == 5 and await meta.room_file_bytes("busy") == 50


async def test_no_file_is_recorded_in_a_room_that_does_not_exist(meta: MetaStore) -> None:
    """An upload that ends after its room was deleted: refused, nothing recorded, so a room
    made later with the same id does not find it."""
    await meta.create_room("gone", "G", "u1")
    await meta.delete_room("gone")
    with pytest.raises(NotFound):
        await meta.add_file(record("f1", room="gone"), room_quota=1000)
    await meta.create_room("gone", "G again", "u2")
    assert await meta.list_files("gone") == [] and await meta.get_file("gone", "f1") is None
    assert await meta.referenced_blobs([SHA_A]) == set()


async def test_a_deleted_rooms_files_go_with_it(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.create_room("gone", "G", "u1")
    await meta.add_file(record("f1", sha256=SHA_A), room_quota=1000)
    await meta.add_file(record("f2", room="gone", sha256=SHA_B, size=20), room_quota=1000)
    await meta.add_file(record("f3", room="gone", sha256=SHA_A), room_quota=1000)
    assert await meta.referenced_blobs([SHA_A, SHA_B, "c" * 64]) == {SHA_A, SHA_B}
    assert await meta.stored_blob_bytes() == 30  # SHA_A once
    await meta.delete_room("gone")
    assert await meta.referenced_blobs([SHA_A, SHA_B]) == {SHA_A}
    assert await meta.list_files("gone") == []
    assert await meta.drop_orphan_files() == 0  # nothing left behind for the collector
    assert await meta.stored_blob_bytes() == 10
    assert await meta.referenced_blobs([]) == set()


async def test_referenced_blobs_takes_any_number_of_hashes(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.add_file(record("f1", sha256=SHA_B), room_quota=1000)
    many = [f"{i:064x}" for i in range(1200)] + [SHA_B]
    assert await meta.referenced_blobs(many) == {SHA_B}


async def test_a_room_made_again_with_a_deleted_rooms_id_sees_none_of_its_files(
    meta: MetaStore,
) -> None:
    """A file is readable in a room only if it was uploaded into that room: Alice's room "r"
    had a file and was deleted; Bob's new "r" lists none and cannot read it, before any
    collection ran (found in review: the rows stayed until the next purge)."""
    await meta.create_room("r", "r", "alice")
    await meta.add_file(
        FileRecord("f1", "r", "a" * 64, 3, "text/plain", "a.txt", "alice", T0), 10**9
    )
    await meta.delete_room("r")
    await meta.create_room("r", "r", "bob")
    assert await meta.list_files("r") == []
    assert await meta.get_file("r", "f1") is None
