"""The PostgreSQL pool wrappers both stores build on: one transaction per block, committed or
rolled back; isolation levels; psycopg failures as StoreError; the async and sync twins alike."""

from __future__ import annotations

import anyio.to_thread
import psycopg
import pytest

from collab.db import StoreError
from collab.db.postgres import PgDatabase, SyncPgDatabase, check_quiet

pytestmark = pytest.mark.anyio


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM docs").fetchone()
        return int(row[0]) if row else -1


INSERT = "INSERT INTO docs (room, name, generation, created_at) VALUES (%s, 'd', 'g', 0)"


async def test_a_block_commits_or_rolls_back(pg_url: str) -> None:
    db = PgDatabase(pg_url)
    await db.open()
    try:
        async with db.transaction() as conn:
            await conn.execute(INSERT, ("kept",))
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute(INSERT, ("dropped",))
                raise RuntimeError("the block failed")
        with pytest.raises(StoreError, match="duplicate key"):
            async with db.transaction() as conn:
                await conn.execute(INSERT, ("also dropped",))
                await conn.execute(INSERT, ("kept",))
        assert count(pg_url) == 1
        async with db.transaction("REPEATABLE READ") as conn:
            cur = await conn.execute("SHOW transaction_isolation")
            assert await cur.fetchone() == ("repeatable read",)
        async with db.transaction() as conn:  # a pooled connection keeps no level
            cur = await conn.execute("SHOW transaction_isolation")
            assert await cur.fetchone() == ("read committed",)
        await db.ping()
    finally:
        await db.close()
    await db.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await db.ping()


def _sync_twin(url: str) -> None:
    db = SyncPgDatabase(url)
    db.open()
    try:
        with db.transaction("SERIALIZABLE") as conn:
            conn.execute(INSERT, ("sync",))
            row = conn.execute("SHOW transaction_isolation").fetchone()
            assert row == ("serializable",)
        with pytest.raises(StoreError, match="duplicate key"), db.transaction() as conn:
            conn.execute(INSERT, ("sync",))
        with db.transaction() as conn:
            row = conn.execute("SHOW synchronous_commit").fetchone()
            assert row == ("on",)
        db.ping()
    finally:
        db.close()
    with pytest.raises(StoreError, match="closed"):
        db.ping()


async def test_the_sync_twin_on_a_worker_thread(pg_url: str) -> None:
    await anyio.to_thread.run_sync(_sync_twin, pg_url)
    assert count(pg_url) == 1


async def test_an_unreachable_server_is_a_store_error_naming_it_without_its_password() -> None:
    url = "postgresql://postgres:hunter2@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError) as caught:
        await PgDatabase(url).open()
    assert "127.0.0.1:1" in str(caught.value) and "hunter2" not in str(caught.value)
    with pytest.raises(StoreError):
        SyncPgDatabase(url).open()


async def test_the_checkout_check_asks_the_server_only_when_the_socket_has_words(
    pg_url: str,
) -> None:
    """``check_quiet``: a live idle connection passes without a round trip (the server's count
    of statements it ran stays still); a terminated one has its FATAL waiting and fails the
    check, so the pool replaces it; ``autocommit`` blocks commit each statement alone."""
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        pid = conn.info.backend_pid
        await conn.execute("SELECT 1")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            before = admin.execute(
                "SELECT state_change FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            await check_quiet(conn)
            after = admin.execute(
                "SELECT state_change FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            assert before == after  # no statement reached the server
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with anyio.fail_after(10):
            while True:  # the FATAL reaches the socket shortly after the call returns
                try:
                    await check_quiet(conn)
                except psycopg.OperationalError:
                    break
                await anyio.sleep(0.05)
    db = PgDatabase(pg_url)
    await db.open()
    try:
        async with db.autocommit() as conn:
            await conn.execute(INSERT, ("alone",))
            assert count(pg_url) == 1  # committed before the block ends
    finally:
        await db.close()
