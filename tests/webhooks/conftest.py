"""A migrated SQLite meta store for each test (``meta``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab.db import migrate_with_backup
from collab.meta import MetaStore
from collab.meta.sqlite import SQLiteMetaStore


@pytest.fixture
async def meta(tmp_path: Path) -> AsyncIterator[MetaStore]:
    migrate_with_backup(tmp_path / "c.db")
    store = SQLiteMetaStore(tmp_path / "c.db")
    await store.open()
    yield store
    await store.close()
