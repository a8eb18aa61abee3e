"""Shared database plumbing under both stores: documents (``collab.store``) and everything else
(``collab.meta``) live in one database, opened, migrated and written the same way.

    errors.py      StoreError, what every store raises when the database fails it
    url.py         sqlite_path: the file a ``sqlite:///...`` store URL names (and its search
                   index's, search_index_path); postgres_url: whether it names PostgreSQL
    connection.py  connect (collab's pragmas) and backup (a consistent online copy)
    migrate.py     forward-only migrations, one transaction each; migrate_with_backup
    readers.py     Readers: a Database's reader connections, one read each at a time
    database.py    Database: one writer and its group commit, readers, work on threads;
                   sqlite_database: the one Database both stores of a URL share
    pgmigrate.py   PostgreSQL's migrations: applied by `collab migrate` only, under a lock
    postgres.py    PgDatabase / SyncPgDatabase: a pool of PostgreSQL connections,
                   transaction() blocks (imported only when a store names PostgreSQL)

Neither store imports the other; both import this package.
"""

from __future__ import annotations

from collab.db.connection import backup, connect, connect_existing
from collab.db.database import Database, sqlite_database
from collab.db.errors import StoreError
from collab.db.migrate import migrate_with_backup
from collab.db.url import postgres_url, search_index_path, sqlite_path

__all__ = [
    "Database",
    "StoreError",
    "backup",
    "connect",
    "connect_existing",
    "migrate_with_backup",
    "postgres_url",
    "search_index_path",
    "sqlite_database",
    "sqlite_path",
]
