"""Forward-only SQL migrations: each file runs with its bookkeeping row in one transaction.

Files live in the top-level ``migrations/<dialect>/NNNN_name.sql`` of the source tree; the wheel
carries them as ``collab/_migrations`` (pyproject's force-include). A database that has a
migration the code does not know is refused with both versions named: never moved aside.
One runner for the one file that both the document store and the meta store live in;
PostgreSQL's (``collab.db.pgmigrate``) reads the same files and versions the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from collab.db.connection import backup, connect_database
from collab.db.errors import StoreError

_FILE_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir(dialect: str = "sqlite") -> Path:
    packaged = resources.files("collab") / "_migrations" / dialect
    if packaged.is_dir():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "migrations" / dialect
    if source.is_dir():
        return source
    raise StoreError(f"migrations for {dialect} not found (looked in {packaged} and {source})")


def load_migrations(dialect: str = "sqlite") -> list[Migration]:
    found = []
    for path in sorted(migrations_dir(dialect).iterdir()):
        match = _FILE_RE.fullmatch(path.name)
        if match:
            found.append(Migration(int(match[1]), match[2], path.read_text("utf-8")))
    return found


def split_statements(sql: str) -> list[str]:
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        raise StoreError("migration ends with an incomplete statement")
    return statements


def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS collab_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    _ensure_table(conn)
    return {row[0] for row in conn.execute("SELECT version FROM collab_migrations")}


def pending(conn: sqlite3.Connection) -> list[Migration]:
    """Migrations still to apply; raises StoreError when the database is newer than the code."""
    return outstanding(load_migrations(), applied_versions(conn))


def outstanding(known: list[Migration], applied: set[int]) -> list[Migration]:
    """The ``known`` migrations not in ``applied``; StoreError when the database has a newer
    one than the code knows (both versions named). Every dialect's runner decides with this."""
    code_version = max((m.version for m in known), default=0)
    db_version = max(applied, default=0)
    if db_version > code_version:
        raise StoreError(
            f"database schema version {db_version} is newer than this collab's "
            f"({code_version}); upgrade collab instead"
        )
    return [m for m in known if m.version not in applied]


def apply(conn: sqlite3.Connection, migrations: list[Migration]) -> list[Migration]:
    """Run each migration and record it, one transaction per migration; the ones it ran.

    Whether a migration is applied is read again once its transaction holds the write lock:
    another run (a second ``collab migrate``, a ``collab serve`` starting) may have applied it
    since ``pending`` was read, and running it again would fail half-way ("duplicate column")."""
    done = []
    for migration in migrations:
        conn.execute("BEGIN IMMEDIATE")
        try:
            recorded = conn.execute(
                "SELECT 1 FROM collab_migrations WHERE version=?", (migration.version,)
            ).fetchone()
            if recorded is not None:
                conn.execute("ROLLBACK")
                continue
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO collab_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        done.append(migration)
    return done


def migrate_with_backup(path: Path) -> list[str]:
    """Apply pending migrations, first taking an online backup of a non-empty database.

    Returns the names applied. The backup sits beside the database as
    ``<name>.pre-<version>.bak`` and is a consistent copy (SQLite's backup API). Runs on one
    database take turns (``<name>.migrate.lock``, an ``flock`` that dies with its process): a
    second run (``collab migrate`` beside a starting ``collab serve``) that read the same
    pending list used to take its "pre-migration" backup after the first had migrated, over
    the first's, and the copy from before the migration was gone.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _migration_turn(path):
        conn = connect_database(path)
        try:
            todo = pending(conn)
            if todo and applied_versions(conn):
                backup_path = path.with_name(f"{path.name}.pre-{todo[0].version:04d}.bak")
                backup(path, backup_path)
            return [f"{m.version:04d}_{m.name}" for m in apply(conn, todo)]
        finally:
            conn.close()


@contextlib.contextmanager
def _migration_turn(path: Path) -> Iterator[None]:
    """This process's turn to migrate ``path``: waits for another run's to end."""
    lock = path.with_name(path.name + ".migrate.lock")
    try:
        # Read-only: flock needs no write access, so a lock file another user made (a
        # `sudo collab migrate`) does not refuse the service's own start.
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:  # a directory this user may not write: the database is not theirs
        raise StoreError(f"{path}: cannot make its migration lock {lock}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
