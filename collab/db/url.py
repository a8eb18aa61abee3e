"""Which database a store URL names: a SQLite file, or a PostgreSQL server.

URL grammar (SQLAlchemy's convention): ``sqlite:///collab.db`` and ``sqlite:///./data/x.db`` are
relative to the working directory, ``sqlite:////var/lib/collab/collab.db`` is absolute, a bare
path means SQLite too, and any other ``scheme://`` is not SQLite (``memory://`` keeps
everything in the process). One ``--store`` URL names the documents, the metadata and the data
directory that holds the secret key, so every reader of it parses it here.

``postgresql://`` and ``postgres://`` (libpq's two URI prefixes) name a PostgreSQL database;
the URL goes to libpq as it is (``postgresql://user:password@host:5432/db?sslmode=...``).
"""

from __future__ import annotations

from pathlib import Path

from collab.db.errors import StoreError

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def sqlite_path(url: str) -> Path | None:
    """The database file a store URL names, or None for a non-SQLite URL."""
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///") :]
        if not rest:
            raise StoreError("sqlite URL without a path")
        return Path(rest)
    if url.startswith("sqlite:"):
        raise StoreError(
            f"unsupported sqlite URL {url!r}: use sqlite:///relative or sqlite:////abs"
        )
    if "://" in url:
        return None
    return Path(url)


def postgres_url(url: str) -> str | None:
    """The URL itself when it names a PostgreSQL database, else None."""
    return url if url.startswith(_POSTGRES_SCHEMES) else None


def search_index_path(db: Path) -> Path:
    """The search index beside a database (``collab.db`` -> ``collab.db.search.db``): a file
    of its own, so indexing never holds the main file's one writer (``collab.search``)."""
    return db.with_name(db.name + ".search.db")
