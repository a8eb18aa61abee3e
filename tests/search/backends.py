"""Every SearchIndex a contract test runs against: memory, SQLite and PostgreSQL (only the
PostgreSQL one asks for a database: skipped without a server, failing under CI=true:
tests/support/postgres.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab.search.index import SearchIndex
from collab.search.memory import MemoryIndex
from collab.search.postgres import PostgresIndex
from collab.search.sqlite import SQLiteIndex

KINDS = ["memory", "sqlite", "postgresql"]


def new_index(request: pytest.FixtureRequest, tmp_path: Path) -> SearchIndex:
    """The index ``request.param`` names, not opened yet."""
    if request.param == "postgresql":
        return PostgresIndex(request.getfixturevalue("pg_url"))
    if request.param == "sqlite":
        return SQLiteIndex(tmp_path / "c.db.search.db")
    return MemoryIndex()
