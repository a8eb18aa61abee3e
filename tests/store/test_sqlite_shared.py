"""Several nodes on one SQLite file (WAL): each process has its own writer connection, and
SQLite's file lock (``BEGIN IMMEDIATE``) must keep every doc's sequence gapless across them."""

from __future__ import annotations

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
