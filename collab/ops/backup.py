"""``collab backup`` and ``collab restore``: consistent copies of a live database.

A backup is a directory: ``collab.db`` (SQLite's online backup API: one consistent snapshot,
taken while the server keeps writing, turned into a single self-contained file), the search
index ``collab.db.search.db`` beside it if there is one (copied the same way, just after), the
``secret_key`` beside the database if there is one (sessions and room tokens stay valid after a
restore), ``files/`` (the bytes of every uploaded file the copy references, each re-hashed on
the way: ``collab.ops.blobs``, none collected meanwhile: ``collab.store.bloblock``) and
``manifest.json`` (versions, counts, checksums), written last: without it, an unfinished backup.

A restore copies the backup into the target database through the same API, after taking the
exclusive lock that every running ``collab serve`` prevents (``collab.ops.lock``); the previous
database is first kept beside it as ``<name>.pre-restore-<time>.bak``. ``rollback`` renews every
doc's generation, so tabs that hold newer state and present ``?gen=`` are told to reload (4409)
instead of writing the rolled-back content back. The search index is derived data: the
backup's copy replaces the target's, or, without one, the target's is deleted; either way a
server started on the restored database rebuilds whatever is not known to be complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from collab.auth.keys import KEY_FILE
from collab.db import StoreError, connect, migrate, search_index_path
from collab.ops.blobs import BACKUP_FILES, BlobReport, copy_blobs, restore_blobs
from collab.ops.inspect import Stats, integrity, open_readonly, read_stats
from collab.ops.lock import DatabaseInUse, lock_path, try_exclusive
from collab.store.bloblock import backup_lock

BACKUP_DB = "collab.db"
BACKUP_INDEX = search_index_path(Path(BACKUP_DB)).name
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


def private_dir(path: Path) -> None:
    """Create the directory ``path`` and its missing parents, each 0700 from the start.

    ``mkdir``'s mode can only lose bits to the umask, never gain any, so nothing is ever
    readable by others; the chmod puts back bits an unusual umask (0o200...) took away.
    """
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs, left as it is
        os.chmod(directory, 0o700)


def create_private(path: Path) -> int:
    """A new file, 0600 before its first byte whatever the umask, open for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_private(path: Path, data: bytes) -> None:
    """``data`` into the new file ``path`` (0600 from the start), flushed to disk."""
    with os.fdopen(create_private(path), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def copy_database(source: sqlite3.Connection, target: Path) -> None:
    """A consistent single-file copy (rollback journal, no -wal to lose) of an open database.

    ``target`` is made 0600 before SQLite writes to it (created empty if missing: SQLite
    opens an empty file as a new database and gives its journal the database's mode), so no
    copy is ever readable by others.
    """
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)
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


def backup(db: Path, dest: Path, files: Path | None = None) -> dict[str, Any]:
    """Back ``db`` (live or not) and the uploaded files its copy references (from ``files``,
    by default ``files/`` beside ``db``) up into the directory ``dest``; returns the manifest
    (``files_problems`` lists referenced files that were missing or corrupt). No collector
    removes a file from before the snapshot to the last copy (``collab.store.bloblock``)."""
    if not db.is_file():
        raise StoreError(f"{db}: no such database")
    if dest.exists() and any(dest.iterdir()):
        raise StoreError(f"{dest} exists and is not empty: choose a new backup directory")
    private_dir(dest)  # an existing empty one keeps its mode; every file in it is 0600
    source_files = files or db.parent / BACKUP_FILES
    with backup_lock(source_files):
        _copy_live(db, dest / BACKUP_DB)
        checksums = {BACKUP_DB: _digest(dest / BACKUP_DB)}
        if _copy_index(search_index_path(db), dest / BACKUP_INDEX):
            checksums[BACKUP_INDEX] = _digest(dest / BACKUP_INDEX)
        key = db.parent / KEY_FILE
        if key.is_file():
            write_private(dest / KEY_FILE, key.read_bytes())
            checksums[KEY_FILE] = _digest(dest / KEY_FILE)
        conn = open_readonly(dest / BACKUP_DB)
        try:
            stats = read_stats(conn, dest / BACKUP_DB, top=0)
            schema = schema_version(conn)
            blobs = copy_blobs(conn, source_files, dest / BACKUP_FILES)
        finally:
            conn.close()
    manifest: dict[str, Any] = _manifest(db, schema, stats, blobs, checksums)
    write_private(dest / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return manifest


def _manifest(db: Path, schema: int, stats: Stats, blobs: BlobReport, sums: dict[str, Any]) -> Any:
    return {
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
            "messages": stats.messages,
            "files": blobs.count,
            "file_bytes": blobs.bytes,
        },
        "files": sums,
        "files_problems": blobs.problems,
    }


def _copy_index(index: Path, target: Path) -> bool:
    """The search index into ``target`` (a consistent copy, like the database's), if any."""
    if not index.is_file():
        return False
    _copy_live(index, target)
    return True


def _copy_live(source: Path, target: Path) -> None:
    """A consistent copy of a database in use into ``target`` (through ``.partial``: a copy
    cut short is never taken for one)."""
    partial = target.with_name(target.name + ".partial")
    src = sqlite3.connect(source, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        copy_database(src, partial)
    finally:
        src.close()
    partial.rename(target)


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
    files = manifest.get("files")
    if not isinstance(files, dict):
        return [f"{manifest_path}: 'files' is not an object"]
    problems = []
    for name, expected in files.items():
        file, problem = _member(path, name)
        if problem:
            problems.append(f"{name!r} {problem}: not checked")
        elif not file.is_file():
            problems.append(f"{name} is missing")
        elif _digest(file) != expected:
            problems.append(f"{name} does not match its checksum in the manifest")
    return problems


def _member(backup_dir: Path, name: str) -> tuple[Path, str | None]:
    """The file a manifest names, and why it must not be read, if so.

    A manifest is input: a crafted one could name ``/etc/shadow``, ``../../etc/shadow`` or a
    symlink to it, and "matches its checksum" would confirm a guess of its content to whoever
    reads the report (and make verify or restore read any file, of any size). Only a relative
    name without ``..`` that resolves inside the backup directory to a regular file is hashed.
    """
    file = backup_dir / name
    if not name or "\x00" in name or os.path.isabs(name) or ".." in Path(name).parts:
        return file, "is not a plain name inside the backup directory"
    if not file.exists():
        return file, None  # reported as missing
    root = backup_dir.resolve()
    if not file.resolve().is_relative_to(root):
        return file, "leads outside the backup directory"
    if not stat.S_ISREG(file.stat().st_mode):
        return file, "is not a regular file"
    return file, None


@dataclass
class RestoreResult:
    target: Path
    previous: Path | None  # the database that was there, kept aside
    renewed_generations: int
    secret_key: bool
    files: BlobReport  # the uploaded files put back (or found whole already)


def restore(
    source: Path,
    target: Path,
    *,
    force: bool = False,
    rollback: bool = False,
    files: Path | None = None,
) -> RestoreResult:
    """Copy a backup (directory or .db file) into ``target``, and its uploaded files into
    ``files`` (by default ``files/`` beside ``target``).

    Refuses while a server holds ``target`` (its lock) unless ``force``; refuses a backup
    whose checksums fail or whose schema is newer than this collab.
    """
    src_db = backup_database_path(source)
    problems = check_manifest(source)
    if problems:
        raise StoreError(f"{source}: " + "; ".join(problems))
    src = open_readonly(src_db)
    try:
        _check_source(src, src_db)
        held = try_exclusive(target)
        if held is None and not force:
            raise DatabaseInUse(
                f"{target} is in use by a running collab server (lock {lock_path(target)}): "
                "stop it first, or pass --force to restore under it"
            )
        try:
            previous = _keep_aside(target)
            dst = connect(target)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=WAL")
                renewed = renew_generations(dst) if rollback else 0
            finally:
                dst.close()
            _restore_index(source if source.is_dir() else None, search_index_path(target))
            key = src_db.parent / KEY_FILE if source.is_dir() else None
            restored_key = key is not None and key.is_file()
            if key is not None and restored_key:
                _install_key(key, target.parent / KEY_FILE)
            blobs = BlobReport()
            if source.is_dir():
                blobs = restore_blobs(
                    src, source / BACKUP_FILES, files or target.parent / BACKUP_FILES
                )
        finally:
            if held is not None:
                held.close()
    finally:
        src.close()
    return RestoreResult(target, previous, renewed, restored_key, blobs)


def _check_source(src: sqlite3.Connection, src_db: Path) -> None:
    """StoreError unless ``src`` is a sound collab database this collab can run."""
    try:
        checked = integrity(src)
        version = schema_version(src)
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise StoreError(f"{src_db}: not a collab database ({exc})") from exc
    if checked != "ok":
        raise StoreError(f"{src_db} fails SQLite's integrity check: {checked}")
    if version == 0:  # an empty file (SQLite's empty database), another program's file
        raise StoreError(f"{src_db}: not a collab database (no migration was ever applied)")
    known = max((m.version for m in migrate.load_migrations()), default=0)
    if version > known:
        raise StoreError(
            f"{src_db} has schema version {version}, newer than this "
            f"collab's ({known}); restore with a newer collab"
        )


def _keep_aside(target: Path) -> Path | None:
    """A copy of the database a restore is about to replace, if there is one."""
    if not (target.is_file() and target.stat().st_size > 0):
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in itertools.count(1):
        # Never over an earlier copy (two restores within one second): reserved by O_EXCL.
        suffix = "" if n == 1 else f"-{n}"
        previous = target.with_name(f"{target.name}.pre-restore-{stamp}{suffix}.bak")
        try:
            os.close(create_private(previous))
        except FileExistsError:
            continue
        break
    live = connect(target)
    try:
        copy_database(live, previous)
    finally:
        live.close()
    return previous


def _restore_index(backup_dir: Path | None, target: Path) -> None:
    """The backup's search index in place of the target's, or none (the server rebuilds)."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            target.with_name(target.name + suffix).unlink()
    index = backup_dir / BACKUP_INDEX if backup_dir is not None else None
    if index is None or not index.is_file():
        return
    src = sqlite3.connect(index.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        copy_database(src, target)
    finally:
        src.close()


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
    write_private(tmp, source.read_bytes())
    os.replace(tmp, target)
