"""Operations commands on a stored database: ``collab backup``, ``restore``, ``verify``,
``compact``, ``stats``. Each reads its settings like ``serve`` does (``--config`` /
``COLLAB_CONFIG``, then ``COLLAB_*``, then its own options) and never serialises a stored doc
with ``str()``/``to_py()`` (collab.ops).

Exit codes: 0 success; 1 an error (message on stderr); 2 bad usage or config; 3 ``verify``
found a bad document, a failed integrity check or a manifest mismatch.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from collab.cli.options import Seconds, config_option, load_settings, store_option
from collab.db import StoreError, postgres_url, search_index_path, sqlite_path
from collab.settings import Settings, masked

if TYPE_CHECKING:
    from collab.ops.inspect import VerifyReport

EXIT_BAD_DATA = 3


def _database(settings: Settings) -> Path:
    try:
        path = sqlite_path(settings.store)
    except StoreError as exc:
        raise click.UsageError(str(exc)) from exc
    if path is None:
        where = masked("store", settings.store)
        if postgres_url(settings.store) is not None:
            raise click.UsageError(
                f"{where}: a PostgreSQL store is backed up and restored with pg_dump and "
                "pg_restore, and checked with `collab verify --store` (docs/postgresql.md)"
            )
        raise click.UsageError(f"{where}: only a SQLite store has a database file")
    return path


def _files(settings: Settings, db: Path) -> Path:
    """Where the uploaded files of the store's database live (the ``files_dir`` setting)."""
    from collab.store.blobs import files_root

    return files_root(settings.store, settings.files_dir) or db.parent / "files"


def _limits(settings: Settings) -> Any:
    from collab.wire import limits_from

    return limits_from(settings)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@click.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@store_option
@config_option
def backup(path: Path, store: str | None, config_file: str | None) -> None:
    """Back the database up into the new directory PATH, also while a server runs.

    PATH gets collab.db (a consistent copy: SQLite's online backup), the search index and the
    secret_key beside the database, files/ (every uploaded file the copy references, re-hashed
    on the way) and manifest.json (versions, counts, checksums; written last).
    """
    from collab.ops.backup import BACKUP_INDEX
    from collab.ops.backup import backup as run_backup

    settings = load_settings(config_file, store=store)
    db = _database(settings)
    try:
        manifest = run_backup(db, path, _files(settings, db))
    except (StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise click.ClickException(f"{db}: {exc}") from exc
    counts = manifest["counts"]
    click.echo(
        f"{db} -> {path}: {counts['rooms']} rooms, {counts['docs']} docs, "
        f"{counts['log_rows']} log rows, {_human(counts['bytes'])} of documents, "
        f"{counts['files']} files ({_human(counts['file_bytes'])})"
        + (", search index" if BACKUP_INDEX in manifest["files"] else "")
        + (", secret key" if "secret_key" in manifest["files"] else "")
    )
    for problem in manifest["files_problems"]:
        click.echo(f"warning: {problem}", err=True)


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@store_option
@config_option
@click.option("--force", is_flag=True, help="Restore even while a server holds the database.")
@click.option(
    "--rollback",
    is_flag=True,
    help="Renew every doc's generation: tabs presenting ?gen= with newer state must reload.",
)
def restore(
    path: Path, store: str | None, config_file: str | None, force: bool, rollback: bool
) -> None:
    """Restore the backup PATH (a backup directory or a .db file) into the store's database.

    The database that was there is kept beside it (<name>.pre-restore-<time>.bak).
    """
    from collab.ops.backup import restore as run_restore

    settings = load_settings(config_file, store=store)
    db = _database(settings)
    try:
        result = run_restore(path, db, force=force, rollback=rollback, files=_files(settings, db))
    except (StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path} -> {db}: restored, with {result.files.count} files")
    for problem in result.files.problems:
        click.echo(f"warning: {problem}", err=True)
    if result.previous is not None:
        click.echo(f"the previous database is kept as {result.previous}")
    if result.secret_key:
        click.echo(f"secret key restored into {db.parent / 'secret_key'}")
    if rollback:
        click.echo(f"renewed the generation of {result.renewed_generations} docs")


@click.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@store_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON report on stdout.")
def verify(path: Path | None, store: str | None, config_file: str | None, as_json: bool) -> None:
    """Check the backup PATH (directory or .db file) read-only: checksums, SQLite integrity,
    every doc walked by the bounded scanner with the server's caps, every uploaded file
    re-hashed (a backup's files/, or the store's for a .db file), and the search index beside
    the database (its integrity, its counts against the database). Exit 3 if anything is bad;
    everything is checked either way. Without PATH, --store names a PostgreSQL database:
    every doc of it is walked the same way, in one consistent read.
    """
    from collab.ops.backup import backup_database_path, check_manifest
    from collab.ops.inspect import verify_db
    from collab.search.verify import verify_index

    settings = load_settings(config_file, store=store)
    limits = _limits(settings)
    if path is None:
        _verify_postgres(settings, limits, as_json)
        return
    manifest_problems = check_manifest(path)
    db = backup_database_path(path)
    files = path / "files" if path.is_dir() else Path(settings.files_dir or db.parent / "files")
    try:
        report = verify_db(db, limits, files)
        index = verify_index(search_index_path(db), db)
    except (StoreError, OSError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:  # sqlite3.DatabaseError: not a database, corrupt header
        raise click.ClickException(f"{path}: {exc}") from exc
    ok = report.ok and not manifest_problems and not index.problems
    if as_json:
        click.echo(
            json.dumps(
                {**_verify_json(report, manifest_problems, ok), "search_index": index.as_json()}
            )
        )
    else:
        _verify_text(report, manifest_problems)
        _echo_index(index)
    if not ok:
        sys.exit(EXIT_BAD_DATA)


def _verify_postgres(settings: Settings, limits: Any, as_json: bool) -> None:
    from collab.ops.pgverify import verify_postgres

    if postgres_url(settings.store) is None:
        raise click.UsageError("give PATH (a backup), or a postgresql:// --store to verify")
    try:
        report = verify_postgres(settings.store, limits)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.as_json()))
    else:
        click.echo(
            f"{masked('store', settings.store)}: {report.docs} docs, {report.log_rows} log "
            f"rows, {_human(report.snapshot_bytes + report.log_bytes)} of documents"
        )
        click.echo(f"checked {report.checked} docs: {len(report.bad_docs)} bad")
        click.echo(
            f"search index: {report.search_chat} messages, {report.search_docs} docs, "
            f"{report.search_tombstones} tombstones"
        )
        for room, doc, problem in report.bad_docs:
            click.echo(f"BAD {room}/{doc}: {problem}")
        for warning in report.warnings:
            click.echo(f"warning: {warning}")
    if not report.ok:
        sys.exit(EXIT_BAD_DATA)


def _echo_index(index: Any) -> None:
    if index.counts is not None:
        c = index.counts
        click.echo(
            f"search index: integrity {index.integrity}, {c.chat} messages, {c.docs} docs, "
            f"{c.tombstones} tombstones"
        )
    elif index.present:
        click.echo(f"search index: integrity {index.integrity}")
    for problem in index.problems:
        click.echo(f"BAD search index: {problem}")
    for warning in index.warnings:
        click.echo(f"warning: search index: {warning}")


def _verify_json(report: VerifyReport, manifest_problems: list[str], ok: bool) -> dict[str, Any]:
    return {
        "ok": ok,
        "integrity": report.integrity,
        "manifest_problems": manifest_problems,
        "checked": report.checked,
        "bad_docs": [{"room": r, "doc": d, "problem": p} for r, d, p in report.bad_docs],
        "warnings": report.warnings,
        "files": {
            "checked": report.files.count,
            "bytes": report.files.bytes,
            "missing": report.files.missing,
            "corrupt": report.files.corrupt,
        },
        "stats": report.stats.as_json(),
    }


def _verify_text(report: VerifyReport, manifest_problems: list[str]) -> None:
    s = report.stats
    for problem in manifest_problems:
        click.echo(f"manifest: {problem}")
    click.echo(f"integrity: {report.integrity}")
    click.echo(
        f"{s.rooms} rooms, {s.docs} docs, {s.log_rows} log rows, "
        f"{_human(s.snapshot_bytes + s.log_bytes)} of documents"
    )
    click.echo(f"{s.messages} chat messages ({s.archived_messages} archived)")
    click.echo(f"checked {report.checked} docs: {len(report.bad_docs)} bad")
    for room, doc, problem in report.bad_docs:
        click.echo(f"BAD {room}/{doc}: {problem}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    click.echo(
        f"checked {report.files.count} files ({_human(report.files.bytes)}): "
        f"{len(report.files.problems)} bad"
    )
    for problem in report.files.problems:
        click.echo(f"BAD {problem}")


@click.command()
@store_option
@config_option
@click.option(
    "--timeout",
    type=Seconds(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds per doc.",
)
def compact(store: str | None, config_file: str | None, timeout: float) -> None:
    """Fold every doc's log into its snapshot; safe while a server runs.

    Each doc is first checked by the bounded scanner (bad ones are skipped and reported),
    then compacted in a child process.
    """
    from collab.ops.compact import compact_db

    settings = load_settings(config_file, store=store)
    db = _database(settings)
    try:
        report = compact_db(db, _limits(settings), timeout=timeout)
    except (StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    saved = sum(b for *_, b in report.compacted)
    click.echo(
        f"{db}: compacted {len(report.compacted)} docs ({_human(max(saved, 0))} saved), "
        f"{report.untouched} already compact, {len(report.skipped)} skipped"
    )
    for room, doc, why in report.skipped:
        click.echo(f"skipped {room}/{doc}: {why}")


@click.command()
@store_option
@config_option
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many of the largest docs.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def stats(store: str | None, config_file: str | None, top: int, as_json: bool) -> None:
    """Rooms, docs, log rows, bytes and the largest docs (from SQL; no doc is loaded)."""
    from collab.ops.inspect import open_readonly, read_stats

    db = _database(load_settings(config_file, store=store))
    try:
        conn = open_readonly(db)
        try:
            s = read_stats(conn, db, top=top)
        finally:
            conn.close()
    except (StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise click.ClickException(f"{db}: {exc}") from exc
    if as_json:
        click.echo(json.dumps(s.as_json()))
        return
    click.echo(f"database: {db} ({_human(s.file_bytes)} on disk)")
    click.echo(f"rooms: {s.rooms} ({s.doc_rooms} with documents)")
    click.echo(f"docs: {s.docs}")
    click.echo(f"log rows: {s.log_rows} ({_human(s.log_bytes)})")
    click.echo(f"snapshots: {_human(s.snapshot_bytes)}")
    click.echo(
        f"files: {s.uploads} uploads ({_human(s.upload_bytes)}), "
        f"{s.stored_files} stored ({_human(s.stored_file_bytes)})"
    )
    if s.largest:
        click.echo("largest docs:")
        for d in s.largest:
            click.echo(
                f"  {d.room}/{d.name}: {_human(d.size)} "
                f"(snapshot {_human(d.snapshot_bytes)}, {d.log_rows} log rows)"
            )
