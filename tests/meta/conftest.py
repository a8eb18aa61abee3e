"""The ``meta`` fixture: every test of the contract runs against every backend (memory, SQLite
and PostgreSQL: a fresh database per test on the shared server, skipped with the reason when
there is none, failing under CI=true), each with an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab.db import migrate_with_backup
from collab.meta import MetaStore
from collab.meta.memory import MemoryMetaStore
from collab.meta.postgres import PostgresMetaStore
from collab.meta.sqlite import SQLiteMetaStore
from tests.meta.support import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def meta(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[MetaStore]:
    store: MetaStore
    if request.param == "memory":
        store = MemoryMetaStore(clock=clock)
    elif request.param == "sqlite":
        migrate_with_backup(tmp_path / "c.db")
        store = SQLiteMetaStore(tmp_path / "c.db", clock=clock)
    else:
        store = PostgresMetaStore(request.getfixturevalue("pg_url"), clock=clock)
    await store.open()
    yield store
    await store.close()
