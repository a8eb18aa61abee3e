"""``collab backup`` and ``collab restore``: consistent copies of a live database.

A backup is a directory: ``collab.db`` (SQLite's online backup API: one consistent snapshot,
taken while the server keeps writing, turned into a single self-contained file), the
``secret_key`` beside the database if there is one (sessions and room tokens stay valid after a
restore), and ``manifest.json`` (versions, counts, checksums), written last, so a directory
without it is an unfinished backup.

A restore copies the backup into the target database through the same API, after taking the
exclusive lock that every running ``collab serve`` prevents (``collab.ops.lock``); the previous
database is first kept beside it as ``<name>.pre-restore-<time>.bak``. ``rollback`` renews every
doc's generation, so tabs that hold newer state and present ``?gen=`` are told to reload (4409)
instead of writing the rolled-back content back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from collab.auth.keys import KEY_FILE
from collab.db import StoreError, connect, migrate
from collab.ops.inspect import open_readonly, read_stats
from collab.ops.lock import DatabaseInUse, lock_path, try_exclusive

BACKUP_DB = "collab.db"
MANIFEST = "manifest.json"
FORMAT = "collab-backup/1"


def _collab_version() -> str:
    try:
        return version("collab")
    except PackageNotFoundError:
        return "unknown"


def _digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": h.hexdigest()}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_database(source: sqlite3.Connection, target: Path) -> None:
    """A consistent single-file copy (rollback journal, no -wal to lose) of an open database."""
    dst = sqlite3.connect(target)
    try:
        source.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
    _fsync(target)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='collab_migrations'"
    ).fetchone()
    if row is None:
        return 0
    (v,) = conn.execute("SELECT COALESCE(max(version), 0) FROM collab_migrations").fetchone()
    return int(v)


def backup(db: Path, dest: Path) -> dict[str, Any]:
    """Back ``db`` (live or not) up into the directory ``dest``; returns the manifest."""
    if not db.is_file():
        raise StoreError(f"{db}: no such database")
    if dest.exists() and any(dest.iterdir()):
        raise StoreError(f"{dest} exists and is not empty: choose a new backup directory")
    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / (BACKUP_DB + ".partial")
    src = sqlite3.connect(db, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        copy_database(src, partial)
    finally:
        src.close()
    partial.rename(dest / BACKUP_DB)
    files = {BACKUP_DB: _digest(dest / BACKUP_DB)}
    key = db.parent / KEY_FILE
    if key.is_file():
        shutil.copyfile(key, dest / KEY_FILE)
        os.chmod(dest / KEY_FILE, 0o600)
        files[KEY_FILE] = _digest(dest / KEY_FILE)
    conn = open_readonly(dest / BACKUP_DB)
    try:
        stats = read_stats(conn, dest / BACKUP_DB, top=0)
        schema = schema_version(conn)
    finally:
        conn.close()
    manifest = {
        "format": FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": str(db.resolve()),
        "collab_version": _collab_version(),
        "schema_version": schema,
        "sqlite_version": sqlite3.sqlite_version,
        "counts": {
            "rooms": stats.rooms,
            "docs": stats.docs,
            "log_rows": stats.log_rows,
            "bytes": stats.snapshot_bytes + stats.log_bytes,
        },
        "files": files,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    _fsync(dest / MANIFEST)
    return manifest


def backup_database_path(path: Path) -> Path:
    """The database inside a backup directory, or ``path`` itself when it is a file."""
    return path / BACKUP_DB if path.is_dir() else path


def check_manifest(path: Path) -> list[str]:
    """Problems with a backup directory's manifest (missing, other format, checksums)."""
    if not path.is_dir():
        return []
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing: an unfinished backup?"]
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except ValueError as exc:
        return [f"{manifest_path}: {exc}"]
    if manifest.get("format") != FORMAT:
        return [f"{manifest_path}: unknown format {manifest.get('format')!r}"]
    problems = []
    for name, expected in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif _digest(file) != expected:
            problems.append(f"{name} does not match its checksum in the manifest")
    return problems


@dataclass
class RestoreResult:
    target: Path
    previous: Path | None  # the database that was there, kept aside
    renewed_generations: int
    secret_key: bool


def restore(
    source: Path, target: Path, *, force: bool = False, rollback: bool = False
) -> RestoreResult:
    """Copy a backup (directory or .db file) into ``target``.

    Refuses while a server holds ``target`` (its lock) unless ``force``; refuses a backup
    whose checksums fail or whose schema is newer than this collab.
    """
    src_db = backup_database_path(source)
    problems = check_manifest(source)
    if problems:
        raise StoreError(f"{source}: " + "; ".join(problems))
    src = open_readonly(src_db)
    try:
        (integrity,) = src.execute("PRAGMA quick_check").fetchone()
        if integrity != "ok":
            raise StoreError(f"{src_db} fails SQLite's integrity check: {integrity}")
        known = max((m.version for m in migrate.load_migrations()), default=0)
        if schema_version(src) > known:
            raise StoreError(
                f"{src_db} has schema version {schema_version(src)}, newer than this "
                f"collab's ({known}); restore with a newer collab"
            )
        held = try_exclusive(target)
        if held is None and not force:
            raise DatabaseInUse(
                f"{target} is in use by a running collab server (lock {lock_path(target)}): "
                "stop it first, or pass --force to restore under it"
            )
        try:
            previous = None
            if target.is_file() and target.stat().st_size > 0:
                stamp = time.strftime("%Y%m%dT%H%M%S")
                previous = target.with_name(f"{target.name}.pre-restore-{stamp}.bak")
                live = connect(target)
                try:
                    copy_database(live, previous)
                finally:
                    live.close()
            dst = connect(target)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=WAL")
                renewed = renew_generations(dst) if rollback else 0
            finally:
                dst.close()
            key = src_db.parent / KEY_FILE if source.is_dir() else None
            restored_key = key is not None and key.is_file()
            if key is not None and restored_key:
                _install_key(key, target.parent / KEY_FILE)
        finally:
            if held is not None:
                held.close()
    finally:
        src.close()
    return RestoreResult(target, previous, renewed, restored_key)


def renew_generations(conn: sqlite3.Connection) -> int:
    """Give every doc a new generation (a restore rolled its content back)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = conn.execute("UPDATE docs SET generation = lower(hex(randomblob(16)))")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return int(cursor.rowcount)


def _install_key(source: Path, target: Path) -> None:
    tmp = target.with_name(target.name + ".restoring")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(source.read_bytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
