"""Forward-only migrations: each applied once, after a backup, all or nothing; a newer
database is refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from collab.db import StoreError, migrate_with_backup
from collab.db import migrate as m
from collab.db.connection import backup, connect_database


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


def test_a_second_run_never_replaces_the_first_runs_pre_migration_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs read the same pending list; the second took its "pre-migration" backup after
    the first had migrated, over the first's: the copy from before the migration was gone.
    Runs now take turns (``<name>.migrate.lock``): the first to read the list backs up and
    migrates, the other then finds nothing pending."""
    db = tmp_path / "c.db"
    known = m.load_migrations()
    conn = connect_database(db)
    assert not m.applied_versions(conn)  # (creates the bookkeeping table)
    m.apply(conn, [mig for mig in known if mig.version <= 2])  # an older collab's database
    conn.close()
    pending_from = min(mig.version for mig in known if mig.version > 2)
    real_backup = backup
    first_in_backup, other_done = threading.Event(), threading.Event()
    calls: list[str] = []

    def paced_backup(source: Path, target: Path) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:  # the first run: pending read, its backup not yet taken
            first_in_backup.set()
            other_done.wait(timeout=5)  # the other run may migrate meanwhile (before the fix)
        real_backup(source, target)

    monkeypatch.setattr(m, "backup", paced_backup)
    results: dict[str, list[str]] = {}

    def run(name: str) -> None:
        results[name] = migrate_with_backup(db)
        if name == "other":
            other_done.set()

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert first_in_backup.wait(timeout=30)
    other = threading.Thread(target=run, args=("other",), name="other")
    other.start()
    first.join(timeout=60)
    other.join(timeout=60)
    assert not first.is_alive() and not other.is_alive()
    with sqlite3.connect(tmp_path / f"c.db.pre-{pending_from:04d}.bak") as copy:
        assert copy.execute("SELECT max(version) FROM collab_migrations").fetchone()[0] == 2
    assert results["first"] and results["other"] == [] and calls == ["first"]
