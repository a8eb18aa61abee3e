"""The writes of one group commit (``collab.db.database``) and how a transaction runs them: each
in its savepoint, so that a write that raises undoes only its own work, or alone without one.
The same on the writer's thread and, for a quick transaction (``collab.db.quick``), on the
event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class Write(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]
    then: Callable[[T], None] | None = None
    undo: Callable[[], None] | None = None
    quick: bool = False  # a few rows by key: the event loop may run it (collab.db.quick)
    result: Any = None
    error: BaseException | None = None
    continued: bool = False  # ``then`` was called inside the transaction


class Aborted(Exception):
    """A write's failure ended the whole transaction (SQLite rolled it back)."""


def run_writes(conn: sqlite3.Connection, jobs: list[Write[Any]]) -> None:
    """In the open transaction: each write in its savepoint (a raise is the write's error)."""
    for job in jobs:
        conn.execute("SAVEPOINT write")
        try:
            job.result = job.fn(conn)
        except BaseException as exc:
            if not conn.in_transaction:
                raise Aborted(repr(exc)) from exc
            conn.execute("ROLLBACK TO write")
            conn.execute("RELEASE write")
            job.error = exc
        else:
            conn.execute("RELEASE write")


def write_alone(conn: sqlite3.Connection, job: Write[Any]) -> bool:
    """In the open transaction, the only write: no savepoint. Whether there is anything to
    commit: a raise rolls the transaction back and is the write's error."""
    try:
        job.result = job.fn(conn)
    except BaseException as exc:
        if not conn.in_transaction:
            raise Aborted(repr(exc)) from exc
        conn.execute("ROLLBACK")
        job.error = exc
        return False
    return True


def settle(job: Write[Any], exc: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(exc)
        job.future.exception()  # retrieved: a caller that went away leaves no warning
