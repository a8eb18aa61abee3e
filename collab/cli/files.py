"""``collab files gc``: remove the uploaded bytes no room references any more.

A running server does the same every ``purge_interval`` seconds; this is for a server that
runs with ``purge_interval`` 0, or to reclaim space now. Safe while servers run on the same
store: a blob uploaded within ``--grace`` seconds, or referenced again meanwhile, stays; while
``collab backup`` runs on the same files, none is removed (said in the output).
"""

from __future__ import annotations

import asyncio
import time

import click

from collab.cli.options import Seconds, config_option, load_settings, store_option
from collab.db import StoreError, sqlite_path
from collab.files import GRACE, Collected
from collab.files.gc import collect
from collab.meta import open_meta_store
from collab.settings import Settings, masked
from collab.store.blobs import open_blob_store


@click.group("files")
def files_group() -> None:
    """Uploaded files (docs/files.md)."""


@files_group.command("gc")
@store_option
@config_option
@click.option(
    "--grace",
    type=Seconds(min=0),
    default=GRACE,
    show_default=True,
    help="Keep bytes uploaded within this many seconds.",
)
def gc(store: str | None, config_file: str | None, grace: float) -> None:
    """Remove the bytes of files no room references (and references of deleted rooms)."""
    settings = load_settings(config_file, store=store)
    try:
        if sqlite_path(settings.store) is None and not settings.files_dir:
            raise click.UsageError(f"{masked('store', settings.store)}: this store keeps no files")
        collected = asyncio.run(_collect(settings, grace))
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if collected.deferred:
        click.echo(
            "a backup (or another collector) holds the files: no unreferenced file removed "
            "this time; run it again once the backup ends"
        )
    click.echo(
        f"removed {collected.blobs} unreferenced files ({collected.bytes} bytes), "
        f"{collected.references} references of deleted rooms, "
        f"{collected.temps} stale temporary files"
    )


async def _collect(settings: Settings, grace: float) -> Collected:
    meta = open_meta_store(settings.store)
    blobs = open_blob_store(settings.store, settings.files_dir)
    await meta.open()
    try:
        await blobs.open()
        return await collect(meta, blobs, now=time.time(), grace=grace)
    finally:
        await blobs.close()
        await meta.close()
