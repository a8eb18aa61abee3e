"""The one-writer Database: transactions all or nothing, one writer at a time, refusals."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from collab.db import Database, StoreError, connect, migrate_with_backup

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    migrate_with_backup(tmp_path / "c.db")
    database = Database(tmp_path / "c.db")
    await database.open()
    yield database
    await database.close()


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM cache").fetchone()[0])


async def test_a_write_commits_and_a_raise_rolls_it_back(db: Database) -> None:
    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO cache VALUES ('b', 'v', 0)")
        raise ValueError("refused")

    await db.write(lambda conn: conn.execute("INSERT INTO cache VALUES ('a', 'v', 0)"))
    with pytest.raises(ValueError, match="refused"):
        await db.write(insert_then_fail)
    assert await db.read(_count) == 1


async def test_writes_run_one_at_a_time(db: Database) -> None:
    inside = 0
    overlap = False

    def slow(conn: sqlite3.Connection) -> None:
        nonlocal inside, overlap
        inside += 1
        overlap = overlap or inside > 1
        conn.execute("INSERT INTO cache VALUES (hex(randomblob(8)), 'v', 0)")
        conn.execute("SELECT count(*) FROM cache").fetchone()
        inside -= 1

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(db.write, slow)
    assert not overlap and await db.read(_count) == 20


async def test_refuses_pending_migrations_closed_use_and_bad_synchronous(tmp_path: Path) -> None:
    fresh = Database(tmp_path / "fresh.db")
    with pytest.raises(StoreError, match="pending migrations"):
        await fresh.open()
    migrate_with_backup(tmp_path / "fresh.db")
    await fresh.open()
    await fresh.close()
    await fresh.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await fresh.read(_count)
    with pytest.raises(StoreError, match="closed"):
        await fresh.write(_count)
    with pytest.raises(StoreError, match="sqlite_synchronous"):
        connect(tmp_path / "x.db", "OFF")
