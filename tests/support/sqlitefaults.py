"""Corruption SQLite's quick check does not look for, made on purpose for verify tests."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path


def declare_index(db: Path, name: str, table: str, columns: str) -> None:
    """Declare index ``name`` over ``columns`` without rebuilding its b-tree."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA writable_schema=ON")
    with conn:
        conn.execute(
            "UPDATE sqlite_master SET sql=? WHERE name=?",
            (f"CREATE INDEX {name} ON {table} ({columns})", name),
        )
    conn.close()


@contextlib.contextmanager
def misindexed(db: Path, name: str, table: str, *, written: str, declared: str) -> Iterator[None]:
    """Rows written inside go into index ``name`` keyed by ``written``; it is then declared over
    ``declared`` again, its b-tree unchanged: an index that no longer matches its table, which
    ``PRAGMA quick_check`` does not look for (lookups through it miss those rows)."""
    declare_index(db, name, table, written)
    yield
    declare_index(db, name, table, declared)


def write_row(db: Path, sql: str, fault: contextlib.AbstractContextManager[None] | None) -> None:
    """Run one INSERT in its own transaction, inside ``fault`` (``misindexed``) when given."""
    with fault if fault is not None else contextlib.nullcontext():
        conn = sqlite3.connect(db)
        with conn:
            conn.execute(sql)
        conn.close()


def assert_hidden_from_quick_check(db: Path, lookup: str) -> None:
    """The corruption is real (``lookup``, which goes through the index, finds nothing) and
    ``PRAGMA quick_check`` does not see it."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute(lookup).fetchall() == []
        (quick,) = conn.execute("PRAGMA quick_check").fetchone()
        assert quick == "ok"
    finally:
        conn.close()
