"""One contract, every DocumentStore backend."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from collab.db import StoreError, migrate_with_backup
from collab.errors import LimitReached, Quota
from collab.meta import described_docs, open_meta_store
from collab.names import DocKey
from collab.store import DocumentStore, open_store
from collab.store.base import GenerationGone
from collab.store.postgres import PostgresStore
from collab.store.sqlite import SQLiteStore
from tests.support.postgres import fresh_database
from tests.support.waiting import wait_until

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


async def test_updates_after_returns_the_rows_a_replica_lacks(store: DocumentStore) -> None:
    assert not (await store.updates_after(A, 0)).exists  # no such doc
    await store.append(A, [b"1", b"2", b"3"])
    generation = (await store.load(A)).generation
    tail = await store.updates_after(A, 1)
    assert tail.generation == generation
    assert tail.snapshot is None and tail.updates == [(2, b"2"), (3, b"3")]
    assert (await store.updates_after(A, 3)).updates == []
    assert (await store.updates_after(A, 0)).updates == [(1, b"1"), (2, b"2"), (3, b"3")]


async def test_updates_after_past_the_snapshot_is_the_whole_doc(store: DocumentStore) -> None:
    await store.append(A, [b"1", b"2", b"3", b"4"])
    await store.compact(A, b"snap", 3)
    # Rows 2 and 3 are folded into the snapshot: the catching-up replica gets all of it.
    whole = await store.updates_after(A, 1)
    assert whole.snapshot == b"snap" and whole.snapshot_seq == 3
    assert whole.updates == [(4, b"4")] and whole.last_seq == 4
    assert whole == await store.load(A)
    # Holding everything the snapshot folded: only the rows after it, never the snapshot.
    for held in (3, 4):
        tail = await store.updates_after(A, held)
        assert tail.snapshot is None and tail.snapshot_seq == 3
        assert tail.updates == ([(4, b"4")] if held == 3 else [])


async def test_compaction_never_replaces_a_newer_snapshot(store: DocumentStore) -> None:
    """Two nodes compact one doc: the one that read less must change nothing."""
    await store.append(A, [b"1", b"2", b"3", b"4"])
    await store.compact(A, b"newer", 3)
    await store.compact(A, b"older", 2)
    stored = await store.load(A)
    assert stored.snapshot == b"newer" and stored.snapshot_seq == 3
    assert stored.updates == [(4, b"4")]
    await store.compact(A, b"same", 3)  # as new as the stored one: fine either way
    assert (await store.load(A)).updates == [(4, b"4")]


async def test_compaction_of_another_generation_changes_nothing(store: DocumentStore) -> None:
    await store.append(A, [b"1", b"2"])
    old = (await store.load(A)).generation
    await store.delete_doc(A)
    await store.append(A, [b"new1", b"new2"])
    await store.compact(A, b"old snapshot", 2, generation=old)
    stored = await store.load(A)
    assert stored.snapshot is None and stored.updates == [(1, b"new1"), (2, b"new2")]
    await store.compact(A, b"snap", 1, generation=stored.generation)
    assert (await store.load(A)).snapshot == b"snap"


async def test_an_append_naming_a_generation_writes_only_into_that_generation(
    store: DocumentStore,
) -> None:
    """Issue 15: a node that has not heard of a delete must not bring the doc back, nor write
    into the doc re-created under its name."""
    await store.append(A, [b"1"])
    old = (await store.load(A)).generation
    assert old is not None
    assert await store.append(A, [b"2"], generation=old) == 2
    await store.delete_doc(A)
    with pytest.raises(GenerationGone) as deleted:
        await store.append(A, [b"stray"], generation=old)
    assert deleted.value.key == A and deleted.value.expected == old
    assert deleted.value.current is None
    assert not (await store.load(A)).exists  # not re-created
    assert await store.list_docs("room") == [] and await store.count_docs("room") == 0
    assert await store.append(A, [b"new"]) == 1  # without a generation: created, as before
    new = (await store.load(A)).generation
    with pytest.raises(GenerationGone) as recreated:
        await store.append(A, [b"stray"], generation=old)
    assert recreated.value.current == new and new != old
    stored = await store.load(A)
    assert stored.generation == new and stored.updates == [(1, b"new")]
    assert await store.append(A, [b"merged"]) == 2  # no generation: a merge, still allowed
    with pytest.raises(GenerationGone):
        await store.append(B, [b"x"], generation="never-was")
    assert not (await store.load(B)).exists


def commit_lock(store: DocumentStore) -> tuple[asyncio.Lock | None, Callable[[], int]]:
    """The lock a group commit takes and how many appends queue behind it: holding it while
    appends are queued puts them all in one group commit."""
    if isinstance(store, PostgresStore):
        return store._write_lock, lambda: len(store._queue)
    if isinstance(store, SQLiteStore):
        return store._db.write_lock, lambda: len(store._db._queue)
    return None, lambda: 0  # memory: each append is atomic on its own


async def test_in_one_group_commit_a_gone_doc_fails_only_its_own_appends(
    store: DocumentStore,
) -> None:
    c = DocKey("room", "c")
    await store.append(A, [b"a1"])
    await store.append(B, [b"b1"])
    gone, kept = (await store.load(A)).generation, (await store.load(B)).generation
    await store.delete_doc(A)
    jobs = {
        "a": (A, [b"stray"], gone),
        "b": (B, [b"b2", b"b3"], kept),
        "c": (c, [b"c1"], None),
        "a again": (A, [b"stray again"], gone),
        "b again": (B, [b"b4"], kept),
    }
    answers: dict[str, int | GenerationGone] = {}

    async def run(name: str) -> None:
        key, updates, generation = jobs[name]
        try:
            answers[name] = await store.append(key, updates, generation=generation)
        except GenerationGone as exc:
            answers[name] = exc

    lock, queued = commit_lock(store)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            async with lock or contextlib.nullcontext():
                for name in jobs:
                    tg.start_soon(run, name)
                if lock is not None:
                    await wait_until(lambda: queued() == len(jobs))
    assert {name: answer for name, answer in answers.items() if isinstance(answer, int)} == {
        "b": 3,
        "c": 1,
        "b again": 4,
    }
    assert all(isinstance(answers[name], GenerationGone) for name in ("a", "a again"))
    assert not (await store.load(A)).exists
    assert (await store.load(B)).updates == [(1, b"b1"), (2, b"b2"), (3, b"b3"), (4, b"b4")]
    assert (await store.load(c)).updates == [(1, b"c1")]


async def test_ping(store: DocumentStore) -> None:
    await store.ping()


def test_store_urls(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unknown store scheme 'mysql'"):
        open_store("mysql://nope")
    for url in ("postgresql://app@db.example/collab", "postgres://db.example/collab"):
        pg = open_store(url)  # nothing connects before open()
        assert isinstance(pg, PostgresStore) and pg.url == url


async def test_appends_creating_docs_stay_within_max_docs(store: DocumentStore) -> None:
    """The cap is counted in the step that creates a doc: of 12 first appends at once for a
    cap of 3 with one doc stored, 2 create theirs (LimitReached, nothing written, for the
    others). A doc that exists takes appends at the cap; another room has its own count."""
    await store.append(A, [b"a"])
    outcomes: list[str] = []

    async def create(index: int) -> None:
        try:
            await store.append(DocKey("room", f"n{index}"), [b"x"], max_docs=3)
            outcomes.append("ok")
        except LimitReached as exc:
            assert exc.quota == Quota.docs_per_room
            outcomes.append("refused")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for index in range(12):
                tg.start_soon(create, index)
    assert sorted(outcomes) == ["ok"] * 2 + ["refused"] * 10
    assert await store.count_docs("room") == 3
    assert all(doc.updated_seq == 1 for doc in await store.list_docs("room"))
    assert await store.append(A, [b"b"], max_docs=3) == 2
    with pytest.raises(LimitReached):
        await store.append(B, [b"b"], max_docs=3)
    assert not (await store.load(B)).exists
    assert await store.append(DocKey("other", "a"), [b"x"], max_docs=1) == 1


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql"])
async def test_first_appends_and_new_doc_metadata_share_one_cap(
    backend: str, tmp_path: Path
) -> None:
    """Where the meta store shares the database (or, on memory://, is linked to the document
    store as a server links them), a doc described only counts in the append's step (and may
    itself be created), and first appends through two stores (two nodes; one store on
    memory://) race new metadata without passing the cap together: 3 of 16 get in."""
    with contextlib.ExitStack() as stack:
        if backend == "memory":
            url = "memory://"
        elif backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'c.db'}"
            migrate_with_backup(tmp_path / "c.db")
        else:
            url = stack.enter_context(fresh_database())
        meta = open_meta_store(url)
        nodes = [open_store(url, described=described_docs(meta)) for _ in range(2)]
        if backend == "memory":
            nodes = [nodes[0], nodes[0]]
        for node in set(nodes):
            await node.open()
        await meta.open()
        try:
            await meta.put_doc_meta("room", "described", title=None, kind=None, by="u")
            with pytest.raises(LimitReached):
                await nodes[0].append(A, [b"x"], max_docs=1)
            assert await nodes[0].append(DocKey("room", "described"), [b"x"], max_docs=1) == 1
            outcomes: list[str] = []

            async def create(index: int) -> None:
                name = f"n{index}"
                try:
                    if index % 4 == 3:  # as the API does it: with the names stored
                        names = [doc.name for doc in await nodes[0].list_docs("race")]
                        await meta.put_doc_meta(
                            "race", name, title=None, kind=None, by="u", max_docs=3, stored=names
                        )
                    else:
                        await nodes[index % 2].append(DocKey("race", name), [b"x"], max_docs=3)
                    outcomes.append(name)
                except LimitReached:
                    pass

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for index in range(16):
                        tg.start_soon(create, index)
            stored = {doc.name for doc in await nodes[0].list_docs("race")}
            described = {doc.name for doc in await meta.list_doc_meta("race")}
            assert len(outcomes) == 3 and stored | described == set(outcomes)
        finally:
            for node in set(nodes):
                await node.close()
            await meta.close()
