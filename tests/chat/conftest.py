"""Services on a fresh SQLite store for each test (``services``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab.services import Services
from collab.settings import Settings


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    # No purge task: its writes would share the commits the tests count.
    settings = Settings(store=f"sqlite:///{tmp_path / 'collab.db'}", purge_interval=0)
    found = Services.create(settings)
    await found.open()
    try:
        yield found
    finally:
        await found.close()
