"""PostgreSQL's migrations: applied once each, all or nothing, only by `collab migrate`, never
twice by two runs at once; a newer database is refused, a pending one is refused by servers."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from collab.db import StoreError, pgmigrate
from collab.db import migrate as m
from collab.db.postgres import PgDatabase, SyncPgDatabase


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows}


def with_extra(monkeypatch: pytest.MonkeyPatch, *extra: m.Migration) -> None:
    known = m.load_migrations("postgresql")
    monkeypatch.setattr(pgmigrate, "load_migrations", lambda dialect: [*known, *extra])


def test_a_fresh_database_gets_every_migration_once(pg_empty_url: str) -> None:
    applied = pgmigrate.migrate(pg_empty_url)
    assert applied[0] == "0001_documents"
    assert applied == [f"{x.version:04d}_{x.name}" for x in m.load_migrations("postgresql")]
    assert pgmigrate.migrate(pg_empty_url) == []
    assert {"docs", "doc_updates", "collab_migrations"} <= tables(pg_empty_url)


def test_checking_a_database_changes_nothing(pg_empty_url: str) -> None:
    with pytest.raises(StoreError, match="has pending migrations: run `collab migrate`"):
        pgmigrate.check_schema(pg_empty_url)
    assert tables(pg_empty_url) == set()  # not even the bookkeeping table
    pgmigrate.migrate(pg_empty_url)
    pgmigrate.check_schema(pg_empty_url)


@pytest.mark.anyio
async def test_servers_refuse_pending_migrations_and_never_apply_them(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_extra(monkeypatch, m.Migration(9990, "later", "CREATE TABLE later (x integer);"))
    with pytest.raises(StoreError, match="has pending migrations: run `collab migrate`"):
        await PgDatabase(pg_url).open()
    with pytest.raises(StoreError, match="has pending migrations"):
        SyncPgDatabase(pg_url).open()
    assert "later" not in tables(pg_url)


def test_a_failed_migration_leaves_no_trace(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = m.Migration(9999, "bad", "CREATE TABLE half (x integer);\nSELECT * FROM missing;\n")
    with_extra(monkeypatch, bad)
    with pytest.raises(StoreError, match=r"migration failed:.*missing"):
        pgmigrate.migrate(pg_url)
    assert "half" not in tables(pg_url)
    with psycopg.connect(pg_url) as conn:
        assert 9999 not in pgmigrate.applied_versions(conn)


def test_a_database_newer_than_the_code_is_refused_naming_both(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO collab_migrations VALUES (9999, 'future', 0)")
    with pytest.raises(StoreError, match=r"9999 is newer than this collab's \(\d+\)"):
        pgmigrate.migrate(pg_url)
    with pytest.raises(StoreError, match=r"9999 is newer"):
        pgmigrate.check_schema(pg_url)


def test_two_runs_at_once_apply_each_migration_once(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second run waits on the advisory lock, then finds nothing pending (without the lock
    both would see 9991 pending and one would fail on the duplicate table)."""
    slow = m.Migration(9991, "slow", "SELECT pg_sleep(1);\nCREATE TABLE slow (x integer);\n")
    with_extra(monkeypatch, slow)
    results: list[list[str] | BaseException] = []

    def run() -> None:
        try:
            results.append(pgmigrate.migrate(pg_url))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=len) == [[], ["9991_slow"]]  # type: ignore[arg-type]


def test_collab_migrate_applies_postgresql_migrations_and_hides_the_password(
    pg_empty_url: str, tmp_path: Path
) -> None:
    # Trust auth ignores the password, so it can be any secret the output must not show.
    parts = urlsplit(pg_empty_url)
    url = urlunsplit(parts._replace(netloc=parts.netloc.replace("@", ":hunter2-pg-pw@", 1)))

    def collab_migrate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "collab", "migrate", "--store", url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    first = collab_migrate()
    assert first.returncode == 0, first.stderr
    assert "applied 0001_documents" in first.stdout
    second = collab_migrate()
    assert second.returncode == 0 and second.stdout.strip().endswith(": up to date")
    for result in (first, second):
        assert "hunter2" not in result.stdout + result.stderr
    assert "docs" in tables(pg_empty_url)
    assert not list(tmp_path.iterdir())  # nothing written beside it (no SQLite file)
