"""One contract, every DocumentStore backend."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from collab.db import StoreError, migrate_with_backup
from collab.names import DocKey
from collab.store import DocumentStore, open_store
from collab.store.postgres import PostgresStore
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.anyio

A = DocKey("room", "a")
B = DocKey("room", "b")


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    with contextlib.ExitStack() as stack:
        if request.param == "memory":
            url = "memory://"
        elif request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'c.db'}"
            migrate_with_backup(tmp_path / "c.db")
        else:
            url = stack.enter_context(fresh_database())
        s = open_store(url)
        await s.open()
        yield s
        await s.close()


async def test_missing_doc_loads_empty(store: DocumentStore) -> None:
    stored = await store.load(A)
    assert not stored.exists
    assert stored.updates == [] and stored.snapshot is None and stored.last_seq == 0


async def test_append_assigns_gapless_per_doc_seqs(store: DocumentStore) -> None:
    assert await store.append(A, [b"1", b"2"]) == 2
    assert await store.append(B, [b"x"]) == 1
    assert await store.append(A, [b"3"]) == 3
    stored = await store.load(A)
    assert stored.exists and stored.generation
    assert stored.updates == [(1, b"1"), (2, b"2"), (3, b"3")]
    assert (await store.load(B)).updates == [(1, b"x")]


async def test_concurrent_appends_keep_order_and_all_rows(store: DocumentStore) -> None:
    async def writer(key: DocKey, n: int) -> None:
        for i in range(n):
            await store.append(key, [f"{key.doc}{i}".encode()])

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer, A, 50)
            tg.start_soon(writer, B, 50)
            tg.start_soon(writer, DocKey("other", "c"), 50)
    for key in (A, B):
        stored = await store.load(key)
        assert [u for _, u in stored.updates] == [f"{key.doc}{i}".encode() for i in range(50)]
        assert [s for s, _ in stored.updates] == list(range(1, 51))


async def test_compact_folds_exactly_the_rows_given(store: DocumentStore) -> None:
    await store.append(A, [b"1", b"2", b"3"])
    generation = (await store.load(A)).generation
    await store.compact(A, b"snap", 2)
    stored = await store.load(A)
    assert stored.snapshot == b"snap" and stored.snapshot_seq == 2
    assert stored.updates == [(3, b"3")]
    assert stored.generation == generation
    assert await store.append(A, [b"4"]) == 4
    assert (await store.load(A)).last_seq == 4


async def test_list_and_count_docs(store: DocumentStore) -> None:
    assert await store.list_docs("room") == []
    assert await store.count_docs("room") == 0
    await store.append(B, [b"xy"])
    await store.append(A, [b"1", b"22"])
    await store.append(DocKey("other", "c"), [b"z"])
    await store.compact(A, b"snap", 1)
    docs = await store.list_docs("room")
    assert [d.name for d in docs] == ["a", "b"]
    a, b = docs
    assert a.size == len(b"snap") + 2 and a.updated_seq == 2 and a.generation
    assert b.size == 2 and b.updated_seq == 1
    assert a.generation == (await store.load(A)).generation
    assert await store.count_docs("room") == 2
    assert await store.count_docs("other") == 1


async def test_delete_doc_then_recreate_gets_a_new_generation(store: DocumentStore) -> None:
    await store.append(A, [b"1", b"2"])
    await store.compact(A, b"snap", 1)
    await store.append(B, [b"x"])
    old = (await store.load(A)).generation
    await store.delete_doc(A)
    await store.delete_doc(DocKey("room", "never"))  # deleting nothing is fine
    assert not (await store.load(A)).exists
    assert [d.name for d in await store.list_docs("room")] == ["b"]
    assert await store.append(A, [b"new"]) == 1
    stored = await store.load(A)
    assert stored.generation and stored.generation != old
    assert stored.snapshot is None and stored.updates == [(1, b"new")]
    await store.compact(DocKey("room", "gone"), b"s", 1)  # compacting a deleted doc: no-op


async def test_ping(store: DocumentStore) -> None:
    await store.ping()


def test_store_urls(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unknown store scheme 'mysql'"):
        open_store("mysql://nope")
    for url in ("postgresql://app@db.example/collab", "postgres://db.example/collab"):
        pg = open_store(url)  # nothing connects before open()
        assert isinstance(pg, PostgresStore) and pg.url == url
