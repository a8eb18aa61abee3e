"""Forward-only migrations of a PostgreSQL database (``migrations/postgresql/NNNN_name.sql``).

The same rules as SQLite's runner (``collab.db.migrate``: the files, versions and the refusal
of a database newer than the code are shared), with two differences that come from several
nodes sharing one database:

- they are applied only by ``collab migrate --store postgresql://...`` (``migrate``), never by
  ``collab serve``: a rolling upgrade must not have its first new node change the schema under
  the old ones. A server opening a database with pending migrations refuses it
  (``check_schema``), with the message SQLite's ``Database`` gives;
- a session-level advisory lock serialises whole runs, so two ``collab migrate`` at once (a
  deploy script on two hosts) never both apply a migration: the second waits, then finds
  nothing pending.

Each migration runs with its bookkeeping row in one transaction (PostgreSQL's DDL is
transactional: a failed migration leaves no trace). No backup is taken here: ``pg_dump`` first
(docs/postgresql.md).
"""

from __future__ import annotations

import time

import psycopg
from psycopg.rows import TupleRow

from collab.db.errors import StoreError
from collab.db.migrate import Migration, load_migrations, outstanding
from collab.settings import masked

DIALECT = "postgresql"
# The advisory lock key of a migration run: "collab" in ASCII, as a bigint. Advisory locks are
# per database, so this serialises runs on one database only.
MIGRATION_LOCK = 0x636F6C6C6162


def connect(url: str) -> psycopg.Connection[TupleRow]:
    """One autocommit connection (transactions are explicit); StoreError when it fails."""
    try:
        return psycopg.connect(
            url, autocommit=True, connect_timeout=10, fallback_application_name="collab"
        )
    except psycopg.Error as exc:
        raise StoreError(f"{masked('store', url)}: {exc}") from exc


def applied_versions(conn: psycopg.Connection[TupleRow]) -> set[int]:
    """The versions recorded in ``collab_migrations`` (none when the table is not there yet:
    reading never creates it, so checking a database changes nothing)."""
    row = conn.execute("SELECT to_regclass('collab_migrations') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return set()
    return {int(v) for (v,) in conn.execute("SELECT version FROM collab_migrations")}


def pending(conn: psycopg.Connection[TupleRow]) -> list[Migration]:
    """Migrations still to apply; StoreError when the database is newer than the code."""
    return outstanding(load_migrations(DIALECT), applied_versions(conn))


def check_schema(url: str) -> None:
    """Raise StoreError unless the database is reachable and fully migrated."""
    with connect(url) as conn:
        try:
            todo = pending(conn)
        except psycopg.Error as exc:
            raise StoreError(f"{masked('store', url)}: {exc}") from exc
    if todo:
        raise StoreError(f"{masked('store', url)} has pending migrations: run `collab migrate`")


def migrate(url: str) -> list[str]:
    """Apply every pending migration, each in its own transaction; the names applied."""
    with connect(url) as conn:
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS collab_migrations (version integer PRIMARY KEY,"
                    " name text NOT NULL, applied_at double precision NOT NULL)"
                )
                todo = pending(conn)
                for migration in todo:
                    with conn.transaction():
                        # No parameters: psycopg sends the file as one simple query, so a
                        # migration may hold several statements.
                        conn.execute(migration.sql)
                        conn.execute(
                            "INSERT INTO collab_migrations (version, name, applied_at)"
                            " VALUES (%s, %s, %s)",
                            (migration.version, migration.name, time.time()),
                        )
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        except psycopg.Error as exc:
            raise StoreError(f"{masked('store', url)}: migration failed: {exc}") from exc
    return [f"{m.version:04d}_{m.name}" for m in todo]
