"""The group commit's edges: its runner cancelled (the loop's teardown) mid-transaction or with
writes queued, a COMMIT that fails, closing from a continuation, writes queued while closing, a
continuation's write with a continuation of its own in the last round."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from collab.db import Database, StoreError, connect

pytestmark = pytest.mark.anyio


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM cache").fetchone()[0])


def _committed(path: Path) -> int:
    conn = connect(path)
    try:
        return _count(conn)
    finally:
        conn.close()


def _insert(key: str) -> Callable[[sqlite3.Connection], None]:
    def insert(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO cache VALUES (?, 'v', 0)", (key,))

    return insert


def _blocking(
    key: str, inside: threading.Event, release: threading.Event
) -> Callable[[sqlite3.Connection], None]:
    def insert(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO cache VALUES (?, 'v', 0)", (key,))
        inside.set()
        release.wait(5)

    return insert


async def _until(event: threading.Event) -> None:
    while not event.is_set():
        await anyio.sleep(0.005)


async def test_a_runner_cancelled_mid_transaction_answers_what_the_thread_committed(
    db: Database,
) -> None:
    """A bare cancel of the runner (the loop's teardown) gets through the shield of its wait
    while the writer's thread runs the transaction, and the thread goes on to COMMIT: its
    caller is answered with its result and its ``then`` is not undone (found in review: the
    caller was told it failed, its shown change taken back, although its row was durable)."""
    inside, release = threading.Event(), threading.Event()
    shown: list[str] = []
    with anyio.fail_after(10):
        write = asyncio.ensure_future(
            db.write(
                _blocking("row", inside, release),
                then=lambda _: shown.append("shown"),
                undo=lambda: shown.append("undone"),
            )
        )
        await _until(inside)
        runner = db._runner
        assert runner is not None
        runner.cancel()
        await asyncio.sleep(0)  # the cancellation reaches the runner's wait for the thread
        release.set()
        (result,) = await asyncio.gather(write, return_exceptions=True)
        await asyncio.gather(runner, return_exceptions=True)
    committed = _committed(db.path)
    assert committed == 1  # the thread did commit the row
    assert not isinstance(result, BaseException), (result, shown)
    assert shown == ["shown"]


async def test_a_write_queued_when_the_runner_is_cancelled_is_answered(db: Database) -> None:
    """The runner cancelled while the Database is open, with a write queued behind the
    transaction in flight: that write is answered (StoreError), never left waiting, and
    ``close()`` still returns (found in review: it was answered only once the Database was
    closed, so its caller waited forever)."""
    inside, release = threading.Event(), threading.Event()
    with anyio.fail_after(10):
        first = asyncio.ensure_future(db.write(_blocking("first", inside, release)))
        await _until(inside)
        queued = asyncio.ensure_future(db.write(_insert("queued")))
        await asyncio.sleep(0)  # queued behind the transaction in flight
        runner = db._runner
        assert runner is not None
        runner.cancel()
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, runner, return_exceptions=True)
        await db.close()  # "closing never loses a queued write nor hangs"
        done, _ = await asyncio.wait([queued], timeout=1)
    assert queued in done, "the queued write was never answered (nor written)"
    assert isinstance(queued.exception(), StoreError)


async def test_a_commit_that_fails_fails_every_write_and_undoes_every_then(
    db: Database,
) -> None:
    """COMMIT itself refused (a deferred foreign key, as SQLITE_FULL/BUSY at COMMIT would): the
    transaction stays open, ``_abandon`` rolls it back, every caller gets StoreError."""
    assert db._writer is not None
    db._writer.execute("PRAGMA foreign_keys=ON")
    await db.write(
        lambda conn: conn.execute(
            "CREATE TABLE IF NOT EXISTS review_child (parent TEXT"
            " REFERENCES cache(key) DEFERRABLE INITIALLY DEFERRED)"
        )
    )
    shown: list[str] = []
    before = db.commits

    def orphan(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO review_child VALUES ('nobody')")

    with anyio.fail_after(10):
        results = await asyncio.gather(
            db.write(
                _insert("a"), then=lambda _: shown.append("a"), undo=lambda: shown.append("-a")
            ),
            db.write(_insert("b")),
            db.write(orphan),
            return_exceptions=True,
        )
    assert all(isinstance(r, StoreError) for r in results), results
    assert shown == ["a", "-a"]
    assert db.commits == before
    assert _committed(db.path) == 0
    assert db._writer is not None and not db._writer.in_transaction
    # A single write (``_run_alone``) whose COMMIT fails: same.
    with pytest.raises(StoreError, match="commit failed"):
        await db.write(orphan)
    await db.write(_insert("later"))
    assert _committed(db.path) == 1


async def test_close_from_a_then_does_not_hang_and_commits_the_follow_up(db: Database) -> None:
    closing: list[asyncio.Task[None]] = []
    follow_up: list[asyncio.Task[None]] = []

    def then(_: None) -> None:
        loop = asyncio.get_running_loop()
        follow_up.append(loop.create_task(db.write(_insert("follow-up"))))
        closing.append(loop.create_task(db.close()))

    with anyio.fail_after(10):
        await db.write(_insert("row"), then=then)
        await follow_up[0]
        await closing[0]
    assert _committed(db.path) == 2


async def test_writes_queued_while_closing_are_committed(db: Database) -> None:
    inside, release = threading.Event(), threading.Event()
    with anyio.fail_after(10):
        first = asyncio.ensure_future(db.write(_blocking("first", inside, release)))
        await _until(inside)
        closing = asyncio.ensure_future(db.close())
        await asyncio.sleep(0)
        later = [asyncio.ensure_future(db.write(_insert(f"k{n}"))) for n in range(5)]
        release.set()
        await asyncio.gather(first, *later, closing)
    assert _committed(db.path) == 6


async def test_a_then_write_with_its_own_then_in_the_last_round_goes_to_the_next_commit(
    db: Database,
) -> None:
    """Every round's ``then`` starts a write with a ``then``: round MAX_ROUNDS takes none of
    them (``_take(continued=False)``), the chain goes on in the next transaction and every
    ``then`` is called exactly once, before its write's caller is answered."""
    from collab.db import database as database_module

    calls: list[int] = []
    tasks: list[asyncio.Task[None]] = []

    def chain(n: int) -> Callable[[None], None]:
        def then(_: None) -> None:
            calls.append(n)
            if n < 2 * database_module.MAX_ROUNDS:
                tasks.append(
                    asyncio.get_running_loop().create_task(
                        db.write(_insert(f"k{n + 1}"), then=chain(n + 1))
                    )
                )

        return then

    before = db.commits
    with anyio.fail_after(10):
        await db.write(_insert("k0"), then=chain(0))
        while len(tasks) < 2 * database_module.MAX_ROUNDS:
            await asyncio.gather(*tasks)
        await asyncio.gather(*tasks)
    assert calls == list(range(2 * database_module.MAX_ROUNDS + 1))
    assert _committed(db.path) == 2 * database_module.MAX_ROUNDS + 1
    assert db.commits - before >= 3
