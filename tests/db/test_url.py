"""Store URLs: which SQLite file one names (relative, absolute, bare path), or none."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab.db import StoreError, sqlite_path


def test_sqlite_urls() -> None:
    assert sqlite_path("sqlite:///collab.db") == Path("collab.db")
    assert sqlite_path("sqlite:///./data/collab.db") == Path("data/collab.db")
    assert sqlite_path("sqlite:////var/lib/collab/collab.db") == Path("/var/lib/collab/collab.db")
    assert sqlite_path("/tmp/x.db") == Path("/tmp/x.db")
    assert sqlite_path("memory://") is None
    with pytest.raises(StoreError):
        sqlite_path("sqlite://host/x.db")
    with pytest.raises(StoreError):
        sqlite_path("sqlite:///")
