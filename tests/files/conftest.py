"""The ``meta`` fixture of these tests: every backend (memory, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab.db import migrate_with_backup
from collab.meta import MetaStore
from collab.meta.memory import MemoryMetaStore
from collab.meta.postgres import PostgresMetaStore
from collab.meta.sqlite import SQLiteMetaStore


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def meta(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetaStore]:
    store: MetaStore
    if request.param == "memory":
        store = MemoryMetaStore()
    elif request.param == "sqlite":
        migrate_with_backup(tmp_path / "c.db")
        store = SQLiteMetaStore(tmp_path / "c.db")
    else:
        store = PostgresMetaStore(request.getfixturevalue("pg_url"))
    await store.open()
    yield store
    await store.close()
