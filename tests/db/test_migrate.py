"""Forward-only migrations: each applied once, after a backup, all or nothing; a newer
database is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from collab.db import StoreError, migrate_with_backup
from collab.db import migrate as m


def test_fresh_database_gets_every_migration_once(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    applied = migrate_with_backup(db)
    assert applied and applied[0].startswith("0001_")
    assert migrate_with_backup(db) == []
    assert not list(tmp_path.glob("*.bak")), "no backup of an empty database"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"docs", "doc_updates", "collab_migrations"} <= tables


def test_pending_migration_is_applied_after_a_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "c.db"
    migrate_with_backup(db)
    extra = m.Migration(9998, "extra", "CREATE TABLE extra (x INTEGER);\n-- trailing comment\n")
    known = m.load_migrations()
    monkeypatch.setattr(m, "load_migrations", lambda dialect="sqlite": [*known, extra])
    assert migrate_with_backup(db) == ["9998_extra"]
    backup = tmp_path / "c.db.pre-9998.bak"
    assert backup.exists()
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT max(version) FROM collab_migrations").fetchone()[0] < 9998


def test_failed_migration_leaves_no_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "c.db"
    migrate_with_backup(db)
    bad = m.Migration(9999, "bad", "CREATE TABLE half (x INTEGER);\nSELECT * FROM missing;\n")
    known = m.load_migrations()
    monkeypatch.setattr(m, "load_migrations", lambda dialect="sqlite": [*known, bad])
    with pytest.raises(sqlite3.OperationalError):
        migrate_with_backup(db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='half'").fetchone() is None
    assert 9999 not in m.applied_versions(conn)


def test_database_newer_than_code_is_refused_naming_both(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    migrate_with_backup(db)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO collab_migrations VALUES (9999, 'future', 0)")
    with pytest.raises(StoreError, match=r"9999 is newer than this collab's \(\d+\)"):
        migrate_with_backup(db)
    assert db.exists()
