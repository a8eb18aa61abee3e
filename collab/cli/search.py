"""``collab search reindex``: rebuild the search index from the messages table and the docs.

Safe while a server runs: every write of a rebuild is versioned (``collab.search.index``), so
it and the server's live indexing cannot undo each other. ``--fresh`` deletes the index file
first (a corrupt index, or to reclaim space), which only works with no server running. On
PostgreSQL the index is the store's own tables (``collab.search.postgres``); ``--fresh``
empties them, refused while any node has the index open.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from collab.cli.options import config_option, load_settings, store_option
from collab.db import StoreError, postgres_url, search_index_path, sqlite_path
from collab.settings import Settings, masked

if TYPE_CHECKING:
    from collab.search.index import SearchIndex


@click.group("search")
def search_group() -> None:
    """The search index over chat and documents."""


def _database(settings: Settings) -> Path:
    try:
        path = sqlite_path(settings.store)
    except StoreError as exc:
        raise click.UsageError(str(exc)) from exc
    if path is None:
        raise click.UsageError(
            f"{masked('store', settings.store)}: "
            "only a SQLite or PostgreSQL store has a search index"
        )
    if not path.is_file():
        raise click.ClickException(f"{path}: no such database")
    return path


async def _rebuild(settings: Settings, index: SearchIndex, where: str, *, fresh: bool) -> str:
    from collab.meta import open_meta_store
    from collab.search import Indexer, RebuildReport, rebuild
    from collab.search.postgres import PostgresIndex
    from collab.store import open_store
    from collab.wire import limits_from

    store = open_store(settings.store, synchronous=settings.sqlite_synchronous)
    meta = open_meta_store(settings.store, synchronous=settings.sqlite_synchronous)
    await store.open()
    await meta.open()
    await index.open()
    if fresh and isinstance(index, PostgresIndex):
        others = await index.live_writers() - 1
        if others:
            await index.close()
            await meta.close()
            await store.close()
            raise click.ClickException(
                f"{where}: the search index is open in {others} running collab process(es): "
                "stop them for --fresh, or reindex without it"
            )
        await index.clear()
    indexer = Indexer(index, store, limits_from(settings), delay=0.0)
    indexer.start()

    def progress(report: RebuildReport) -> None:
        if report.rooms % 100 == 0:
            click.echo(f"... {report.rooms} rooms", err=True)

    try:
        report = await rebuild(indexer, meta, store, progress=progress)
    finally:
        await indexer.close()
        await index.close()
        await meta.close()
        await store.close()
    return (
        f"{where}: {report.rooms} rooms, {report.messages} messages, {report.docs} docs"
        f" indexed, {report.dropped_rooms} deleted rooms dropped, in {report.seconds:.1f}s"
    )


@search_group.command("reindex")
@store_option
@config_option
@click.option(
    "--fresh", is_flag=True, help="Start from an empty index (no server running on the store)."
)
def reindex(store: str | None, config_file: str | None, fresh: bool) -> None:
    """Rebuild the search index (<database>.search.db, or a PostgreSQL store's search tables)
    from the messages and the stored docs."""
    from collab.ops.lock import lock_path, try_exclusive

    settings = load_settings(config_file, store=store)
    url = postgres_url(settings.store)
    if url is not None:
        from collab.search.postgres import PostgresIndex

        where = str(masked("store", url))
        try:
            click.echo(asyncio.run(_rebuild(settings, PostgresIndex(url), where, fresh=fresh)))
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    db = _database(settings)
    index_path = search_index_path(db)
    held = try_exclusive(db)
    try:
        if fresh:
            if held is None:
                raise click.ClickException(
                    f"{db} is in use by a running collab server (lock {lock_path(db)}): "
                    "stop it for --fresh, or reindex without it"
                )
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    index_path.with_name(index_path.name + suffix).unlink()
        try:
            # Without a server, this process owns the index's clean flag and leaves it clean.
            from collab.search.sqlite import SQLiteIndex

            index = SQLiteIndex(index_path, claim=held is not None)
            click.echo(asyncio.run(_rebuild(settings, index, str(index_path), fresh=False)))
        except (StoreError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
    finally:
        if held is not None:
            held.close()
