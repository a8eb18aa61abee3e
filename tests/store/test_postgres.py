"""What the PostgreSQL DocumentStore promises beyond the shared contract: several nodes (here,
store objects with pools of their own on one database) writing, loading and compacting one doc
at once lose nothing and number every row once (issue 15, "Done means" 1); every session
commits synchronously; a restarted server costs the transactions in flight, not the store.
The shared contract (tests/store/test_contract.py) runs on PostgreSQL too."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import psycopg
import pytest
from pycrdt import Doc, Text

from collab.db import StoreError
from collab.errors import LimitReached
from collab.names import DocKey
from collab.store import postgres as pgstore
from collab.store.base import GenerationGone, StoredDoc
from collab.store.postgres import PostgresStore
from tests.support.postgres import fresh_database, private_cluster, sessions_waiting
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

A = DocKey("room", "a")


@contextlib.asynccontextmanager
async def nodes(url: str, n: int) -> AsyncIterator[list[PostgresStore]]:
    """``n`` stores on one database, each with its own pool: what ``n`` nodes hold."""
    stores = [PostgresStore(url) for _ in range(n)]
    try:
        for store in stores:
            await store.open()
        yield stores
    finally:
        for store in stores:
            await store.close()


def text_updates(n: int) -> tuple[list[bytes], Callable[[int], bytes], str]:
    """``n`` real Yjs updates appending to one text, a snapshot-maker (the GC'd state after
    the first k updates, as compaction writes it) and the final text."""
    doc: Doc[Any] = Doc()
    text = doc.get("text", type=Text)
    updates = []
    for i in range(n):
        before = doc.get_state()
        text += f"{i},"
        updates.append(doc.get_update(before))

    def snapshot(k: int) -> bytes:
        folded: Doc[Any] = Doc()
        for update in updates[:k]:
            folded.apply_update(update)
        return folded.get_update()

    return updates, snapshot, str(text)


def rebuilt_text(stored: StoredDoc) -> str:
    doc: Doc[Any] = Doc()
    if stored.snapshot:
        doc.apply_update(stored.snapshot)
    for _, update in stored.updates:
        doc.apply_update(update)
    return str(doc.get("text", type=Text))


async def test_two_nodes_appending_1000_updates_each_to_one_doc_number_them_1_to_2000(
    pg_url: str,
) -> None:
    async with nodes(pg_url, 2) as (one, two):

        async def writer(store: PostgresStore, name: str, n: int) -> None:
            for i in range(n):
                await store.append(A, [f"{name}-{i}".encode()])

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                # Several writers per node, so each node group-commits batches while the other
                # node's transactions hold the doc's row.
                for w in range(5):
                    tg.start_soon(writer, one, f"one{w}", 200)
                    tg.start_soon(writer, two, f"two{w}", 200)
        stored = await one.load(A)
    assert [seq for seq, _ in stored.updates] == list(range(1, 2001))
    payloads = [u.decode() for _, u in stored.updates]
    assert len(set(payloads)) == 2000
    for w in range(5):
        for name in (f"one{w}", f"two{w}"):  # each writer's updates in the order it made them
            own = [p for p in payloads if p.startswith(name + "-")]
            assert own == [f"{name}-{i}" for i in range(200)]


async def test_one_batch_of_interleaved_jobs_numbers_each_doc_from_its_head(pg_url: str) -> None:
    """The append is one statement for a whole group commit: jobs of several docs, interleaved,
    some with several updates, each get their doc's next seqs in queue order, and each job's
    answer is its last seq."""
    b = DocKey("room", "b")
    async with nodes(pg_url, 1) as (store,):
        assert await store.append(b, [b"b1"]) == 1  # b has a head, a has none yet
        jobs = [(A, [b"a1", b"a2"]), (b, [b"b2"]), (A, [b"a3"]), (b, [b"b3", b"b4", b"b5"])]
        answers: dict[int, int] = {}

        async def one_job(i: int) -> None:
            key, updates = jobs[i]
            answers[i] = await store.append(key, updates)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                async with store._write_lock:  # queued while a commit is "in flight": one batch
                    for i in range(len(jobs)):
                        tg.start_soon(one_job, i)
                    await wait_until(lambda: len(store._queue) == len(jobs))
        assert answers == {0: 2, 1: 2, 2: 3, 3: 5}
        assert (await store.load(A)).updates == [(1, b"a1"), (2, b"a2"), (3, b"a3")]
        assert [u for _, u in (await store.load(b)).updates] == [b"b1", b"b2", b"b3", b"b4", b"b5"]
        assert [s for s, _ in (await store.load(b)).updates] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("naming", ["no generation", "generations", "mixed"])
async def test_batches_naming_docs_in_opposite_orders_never_deadlock(
    pg_url: str, naming: str
) -> None:
    """Node one's batch names d0..d5, node two's d5..d0, and both reach the docs while a third
    session holds d2: in the order they were queued, one would hold d0-d1 and the other d5-d3,
    each then waiting for the other (a deadlock PostgreSQL breaks by failing one commit).
    Every batch locks its docs in one order, so the second waits instead; so too when the
    appends name the generation they expect (locked by the same statement before the upsert),
    on one node only ("mixed") or on both."""
    keys = [DocKey("r", f"d{i}") for i in range(6)]
    async with nodes(pg_url, 2) as (one, two):
        for key in keys:
            await one.append(key, [b"0"])
        generations = {key: (await one.load(key)).generation for key in keys}
        named: dict[str, tuple[PostgresStore, ...]] = {"generations": (one, two), "mixed": (one,)}
        naming_nodes = named.get(naming, ())
        async with await psycopg.AsyncConnection.connect(pg_url) as holder:
            await holder.execute("SELECT 1 FROM docs WHERE room = 'r' AND name = 'd2' FOR UPDATE")
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for store, order in ((one, keys), (two, keys[::-1])):
                        # Queued while the node's commit lock is held: one batch of six.
                        async with store._write_lock:
                            for key in order:
                                expect = generations[key] if store in naming_nodes else None
                                append = functools.partial(store.append, generation=expect)
                                tg.start_soon(append, key, [b"1"])
                            await wait_until(lambda s=store: len(s._queue) == 6)  # type: ignore[misc]
                    await wait_until(sessions_waiting(pg_url, 2), what="both batches waiting")
                    await holder.commit()
        for key in keys:
            assert [s for s, _ in (await one.load(key)).updates] == [1, 2, 3]


@pytest.mark.parametrize("recreated", [False, True])
async def test_an_append_waiting_for_a_delete_in_flight_does_not_bring_the_doc_back(
    pg_url: str, recreated: bool
) -> None:
    """Issue 15: another node's delete (and, ``recreated``, its re-creation) has not committed
    yet when this node's append, naming the old generation, reaches the doc's row. The append
    waits for it, then must find the doc gone: under READ COMMITTED a check made on the
    statement's snapshot would still see the old row and write the stray update into a new
    row (the doc back from the dead) or into the successor."""
    async with nodes(pg_url, 1) as (store,):
        await store.append(A, [b"1"])
        old = (await store.load(A)).generation
        assert old is not None
        outcome: list[int | GenerationGone] = []

        async def stray() -> None:
            try:
                outcome.append(await store.append(A, [b"stray"], generation=old))
            except GenerationGone as exc:
                outcome.append(exc)

        async with await psycopg.AsyncConnection.connect(pg_url) as other:
            await other.execute("DELETE FROM docs WHERE room = %s AND name = %s", A)
            await other.execute("DELETE FROM doc_updates WHERE room = %s AND name = %s", A)
            if recreated:
                await other.execute(
                    "INSERT INTO docs (room, name, generation, created_at, last_seq)"
                    " VALUES (%s, %s, 'successor', 0, 1)",
                    A,
                )
                await other.execute(
                    "INSERT INTO doc_updates (room, name, seq, data) VALUES (%s, %s, 1, 'new')", A
                )
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stray)
                    await wait_until(sessions_waiting(pg_url, 1), what="the append waiting")
                    await other.commit()
        (answer,) = outcome
        assert isinstance(answer, GenerationGone) and answer.expected == old
        stored = await store.load(A)
        if recreated:
            assert stored.generation == "successor" and stored.updates == [(1, b"new")]
        else:
            assert not stored.exists
            assert await store.list_docs(A.room) == []


async def test_one_batch_with_two_expectations_for_one_doc_keeps_its_jobs_in_order(
    pg_url: str,
) -> None:
    """A node may hold a dropped copy of a doc and a fresh one at once: their jobs in one
    group commit expect different generations (or none), and each is judged on its own, in
    queue order."""
    async with nodes(pg_url, 1) as (store,):
        await store.append(A, [b"1"])
        current = (await store.load(A)).generation
        jobs: list[tuple[list[bytes], str | None]] = [
            ([b"2"], current),
            ([b"3", b"4"], None),
            ([b"lost"], "an older one"),
            ([b"5"], current),
        ]
        answers: dict[int, int | GenerationGone] = {}

        async def one_job(i: int) -> None:
            updates, generation = jobs[i]
            try:
                answers[i] = await store.append(A, updates, generation=generation)
            except GenerationGone as exc:
                answers[i] = exc

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                async with store._write_lock:  # queued while a commit is "in flight"
                    for i in range(len(jobs)):
                        tg.start_soon(one_job, i)
                    await wait_until(lambda: len(store._queue) == len(jobs))
        lost = answers.pop(2)
        assert isinstance(lost, GenerationGone) and lost.current == current
        assert answers == {0: 2, 1: 4, 3: 5}
        assert (await store.load(A)).updates == [
            (1, b"1"),
            (2, b"2"),
            (3, b"3"),
            (4, b"4"),
            (5, b"5"),
        ]


async def test_a_failed_first_append_leaves_no_empty_doc(pg_url: str) -> None:
    """A first update under the room's doc cap that fails (here the database refuses its row)
    creates nothing: no empty doc listed, loaded, or counted against the cap. The doc's row
    was made empty in a step of its own before the append, and stayed."""
    async with nodes(pg_url, 1) as (store,):
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.data = 'refused' THEN RAISE EXCEPTION 'refused'; END IF;"
                " RETURN NEW; END $$"
            )
            admin.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON doc_updates"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        with pytest.raises(StoreError, match="refused"):
            await store.append(A, [b"refused"], max_docs=1)
        assert await store.list_docs(A.room) == []
        assert await store.count_docs(A.room) == 0
        assert not (await store.load(A)).exists
        assert await store.append(DocKey("room", "b"), [b"x"], max_docs=1) == 1
        with pytest.raises(LimitReached):
            await store.append(A, [b"x"], max_docs=1)


async def test_a_compaction_between_a_loaders_two_reads_loses_no_row(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    updates, snapshot, final = text_updates(6)
    async with nodes(pg_url, 2) as (loader, compactor):
        await loader.append(A, updates)
        read_log = pgstore._read_log
        compacted = False

        async def compaction_first(*args: Any) -> list[tuple[int, bytes]]:
            nonlocal compacted
            if not compacted:  # another node compacts after the loader read the doc's row
                compacted = True
                await compactor.compact(A, snapshot(4), 4)
            return await read_log(*args)

        monkeypatch.setattr(pgstore, "_read_log", compaction_first)
        with anyio.fail_after(20):
            stored = await loader.load(A)
        assert compacted
        # The loader's one snapshot: the doc before the compaction, every row there.
        assert stored.snapshot is None and stored.snapshot_seq == 0
        assert [s for s, _ in stored.updates] == [1, 2, 3, 4, 5, 6]
        assert rebuilt_text(stored) == final
        after = await loader.load(A)
        assert after.snapshot_seq == 4 and [s for s, _ in after.updates] == [5, 6]
        assert rebuilt_text(after) == final


@pytest.mark.parametrize("order", ["older-first", "newer-first", "racing"])
async def test_two_racing_compactions_leave_one_snapshot_and_lose_nothing(
    pg_url: str, order: str
) -> None:
    updates, snapshot, final = text_updates(20)
    async with nodes(pg_url, 2) as (one, two):
        await one.append(A, updates)
        older, newer = (one, snapshot(10), 10), (two, snapshot(15), 15)
        with anyio.fail_after(20):
            if order == "older-first":
                for store, snap, upto in (older, newer):
                    await store.compact(A, snap, upto)
            elif order == "newer-first":
                for store, snap, upto in (newer, older):
                    await store.compact(A, snap, upto)
            else:
                await _race_on_the_row_lock(pg_url, [older, newer])
        stored = await one.load(A)
    assert stored.snapshot == snapshot(15) and stored.snapshot_seq == 15
    assert [s for s, _ in stored.updates] == [16, 17, 18, 19, 20]
    assert rebuilt_text(stored) == final
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT count(*) FROM doc_updates").fetchone()
        assert rows is not None and rows[0] == 5  # the folded rows are gone, the rest kept


async def _race_on_the_row_lock(
    url: str, compactions: list[tuple[PostgresStore, bytes, int]]
) -> None:
    """Start every compaction while a third session holds the doc's row, wait until all of
    them wait for it, then let them go at once."""
    async with await psycopg.AsyncConnection.connect(url) as holder:
        await holder.execute("SELECT 1 FROM docs WHERE room = %s AND name = %s FOR UPDATE", A)
        async with anyio.create_task_group() as tg:
            for store, snap, upto in compactions:
                tg.start_soon(store.compact, A, snap, upto)
            waiting = sessions_waiting(url, len(compactions))
            await wait_until(waiting, 10, what="every compaction waiting for the row lock")
            await holder.commit()


async def test_a_compaction_of_rows_the_doc_no_longer_has_changes_nothing(pg_url: str) -> None:
    """Deleted and re-created meanwhile: the new doc has fewer rows than the fold covered."""
    async with nodes(pg_url, 1) as (store,):
        await store.append(A, [b"1", b"2", b"3"])
        await store.delete_doc(A)
        await store.append(A, [b"new"])
        await store.compact(A, b"stale snapshot", 3)
        stored = await store.load(A)
    assert stored.snapshot is None and stored.updates == [(1, b"new")]


async def test_connections_commit_synchronously_whatever_the_database_default(
    pg_url: str,
) -> None:
    """'Saved' means committed in PostgreSQL: synchronous_commit is on for every session."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    async with nodes(pg_url, 1) as (store,):
        async with store._db.transaction() as conn:
            cur = await conn.execute("SHOW synchronous_commit")
            assert await cur.fetchone() == ("on",)


async def test_open_refuses_a_database_with_pending_migrations(pg_empty_url: str) -> None:
    store = PostgresStore(pg_empty_url)
    with pytest.raises(StoreError, match=r"has pending migrations: run `collab migrate`"):
        await store.open()


async def test_a_closed_or_unreachable_store_raises_store_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/nowhere")
    with anyio.fail_after(20), pytest.raises(StoreError, match=r"127\.0\.0\.1"):
        await store.open()
    with pytest.raises(StoreError, match="closed"):
        await store.append(A, [b"x"])
    with pytest.raises(StoreError, match="closed"):
        await store.load(A)


async def test_a_restarted_server_costs_the_commits_in_flight_not_the_store() -> None:
    """An immediate stop (a crash) of a private cluster for 20 s: appends fail with StoreError
    while it is down, and the same store object commits again as soon as it is back (not when
    psycopg_pool's doubling retry delay, ~30 s by then, would next try), seqs gapless."""
    with private_cluster() as cluster, fresh_database(cluster.admin_url) as url:
        async with nodes(url, 1) as (store,):
            assert await store.append(A, [b"1"]) == 1
            cluster.stop("immediate")
            stopped = time.monotonic()
            with anyio.fail_after(30), pytest.raises(StoreError):
                await store.append(A, [b"lost"])
            # The scenario: an outage of 20 s in all, probed by a balancer's /readyz twice a
            # second, each answered within the ping's own short deadline, not the pool's.
            while time.monotonic() - stopped < 20:
                with anyio.fail_after(8), pytest.raises(StoreError):
                    await store.ping()
                await anyio.sleep(0.5)
            cluster.start()
            with anyio.fail_after(5):
                assert await store.append(A, [b"2"]) == 2
            stored = await store.load(A)
            assert stored.updates == [(1, b"1"), (2, b"2")]


async def test_terminated_sessions_are_replaced_before_the_next_commit(pg_url: str) -> None:
    """pg_terminate_backend of every session of a node (what an operator or a failover does):
    the pool finds the dead connections when it hands them out, and the next append commits."""
    async with nodes(pg_url, 1) as (store,):
        async with anyio.create_task_group() as tg:  # several connections in the pool
            for i in range(4):
                tg.start_soon(store.load, DocKey("r", f"d{i}"))
        assert await store.append(A, [b"1"]) == 1
        with psycopg.connect(pg_url, autocommit=True) as admin:
            pids = [
                pid
                for (pid,) in admin.execute(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
            ]
            assert pids
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            # pg_terminate_backend only signals: a commit sent before a session has ended is
            # a commit in flight, which fails (test_a_restarted_server_costs_the_commits_in_
            # flight_not_the_store). Here the sessions have ended, as after a failover.
            with anyio.fail_after(10):
                while admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
                ).fetchone() != (0,):
                    await anyio.sleep(0.05)
        with anyio.fail_after(20):
            assert await store.append(A, [b"2"]) == 2
            assert (await store.load(A)).updates == [(1, b"1"), (2, b"2")]
