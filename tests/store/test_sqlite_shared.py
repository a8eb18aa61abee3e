"""Several nodes on one SQLite file (WAL): each process has its own writer connection, and
SQLite's file lock (``BEGIN IMMEDIATE``) must keep every doc's sequence gapless across them."""

from __future__ import annotations

import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import anyio
import pytest

from collab.db import migrate_with_backup
from collab.names import DocKey
from collab.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

KEY = DocKey("room", "shared")


async def test_two_writers_on_one_file_get_gapless_seqs(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    # Two stores: two writer connections, two write locks, like two `collab serve` processes.
    nodes = [SQLiteStore(path, synchronous="NORMAL"), SQLiteStore(path, synchronous="NORMAL")]
    for node in nodes:
        await node.open()
    returned: dict[int, list[int]] = {0: [], 1: []}

    async def writer(n: int) -> None:
        for i in range(1000):
            last = await nodes[n].append(KEY, [f"{n}.{i}".encode()])
            returned[n].append(last)

    try:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer, 0)
                tg.start_soon(writer, 1)
        stored = await nodes[0].load(KEY)
    finally:
        for node in nodes:
            await node.close()
    assert [seq for seq, _ in stored.updates] == list(range(1, 2001))
    assert sorted(returned[0] + returned[1]) == list(range(1, 2001))  # each seq told once
    for n in (0, 1):  # each writer's rows are in its own order
        mine = [u for _, u in stored.updates if u.startswith(f"{n}.".encode())]
        assert mine == [f"{n}.{i}".encode() for i in range(1000)]


def _append_many(path: str, node: int, count: int) -> list[int]:
    """A child process: one store of its own on the shared file, ``count`` appends."""
    import asyncio

    async def run() -> list[int]:
        store = SQLiteStore(Path(path), synchronous="NORMAL")
        await store.open()
        try:
            return [await store.append(KEY, [f"{node}.{i}".encode()]) for i in range(count)]
        finally:
            await store.close()

    return asyncio.run(run())


def test_two_processes_on_one_file_get_gapless_seqs(tmp_path: Path) -> None:
    """The same with two real processes, as two `collab serve` on one database."""
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    context = multiprocessing.get_context("spawn")
    # Not multiprocessing.Pool: its exit terminates the workers with SIGTERM, and a worker
    # whose SIGTERM handler (coverage's, under CI) ran while it waited on the pool's queue
    # lock once stayed alive, so the pool's join hung the whole run. The executor's workers
    # are told to stop and end on their own.
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(_append_many, [str(path)] * 2, [0, 1], [1000, 1000]))
    assert sorted(results[0] + results[1]) == list(range(1, 2001))
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT seq, data FROM doc_updates WHERE room=? AND name=? ORDER BY seq", KEY
        ).fetchall()
    finally:
        conn.close()
    assert [seq for seq, _ in rows] == list(range(1, 2001))
    for n in (0, 1):
        mine = [bytes(d) for _, d in rows if bytes(d).startswith(f"{n}.".encode())]
        assert mine == [f"{n}.{i}".encode() for i in range(1000)]
