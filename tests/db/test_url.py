"""Store URLs: which SQLite file one names (relative, absolute, bare path), or none; which
name PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab.db import StoreError, postgres_url, sqlite_path


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


def test_postgres_urls() -> None:
    for url in ("postgresql://app:pw@db.example:5432/collab?sslmode=require", "postgres://db/c"):
        assert postgres_url(url) == url
        assert sqlite_path(url) is None
    for url in ("sqlite:///collab.db", "memory://", "/tmp/x.db", "postgresql:/x", "mysql://db"):
        assert postgres_url(url) is None
