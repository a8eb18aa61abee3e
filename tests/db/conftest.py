"""A migrated SQLite Database in a temporary directory, opened for the test and closed after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab.db import Database, migrate_with_backup


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    migrate_with_backup(tmp_path / "c.db")
    database = Database(tmp_path / "c.db")
    await database.open()
    yield database
    await database.close()
