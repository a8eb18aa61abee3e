"""The lock that keeps the collector from removing bytes a running backup has yet to copy.

``collab backup`` snapshots the database, then copies every blob the snapshot references. A
reference deleted after the snapshot (a file, or its whole room) no longer keeps its blob from
the collector, so a collector pass between the snapshot and the copy could remove bytes the
backup still needs (reported in its ``files_problems`` as missing: a restore would lack the
file). The two coordinate through ``flock`` on ``<blob directory>/backup.lock``:

- a backup holds it **shared** from before its snapshot until its last blob is copied
  (``backup_lock``), first waiting for a removal pass that is running to end (a pass is one walk
  over the directory); several backups may hold it at once;
- the collector takes it **exclusively and without waiting**, for its removal pass only
  (``try_removal_lock``); while a backup (or another collector's pass) holds it, the pass
  removes nothing and says so (``Collected.deferred``): the next one decides again.

Uploads and downloads never touch it. A flock goes with its process (also on ``kill -9``), so a
crashed backup defers nothing; a slow one defers collection, nothing else. A backup opens the
file read-only (a shared flock needs no write access), making it if missing, with its
directory (a backup from a read-only file system, where nothing can remove a blob, goes
without). It is no blob (not named by two hex digits): neither the collector nor a backup
takes it for one. Between machines (nodes sharing ``files_dir``), it holds only where the file
system carries ``flock`` between them (NFS on Linux does, as a lock on the whole file).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from collab.db import StoreError

LOCK_FILE = "backup.lock"


def lock_file(root: Path) -> Path:
    return root / LOCK_FILE


def _open(root: Path, mode: int) -> int:
    if not root.is_dir():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(lock_file(root), mode | os.O_CREAT, 0o600)


@contextlib.contextmanager
def backup_lock(root: Path) -> Iterator[None]:
    """Held shared by a backup for its whole run: no blob of ``root`` is collected meanwhile.
    Waits while a collector's removal pass holds it (never for uploads or downloads)."""
    fd: int | None = None
    try:
        fd = _open(root, os.O_RDONLY)
    except OSError as exc:  # a path that is a file, a directory this user may not read
        if exc.errno != errno.EROFS:  # a read-only file system: nobody removes a blob there
            raise StoreError(f"cannot take the backup lock {lock_file(root)}: {exc}") from exc
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def try_removal_lock(root: Path) -> int | None:
    """The exclusive lock for one removal pass (an fd: close it to release), or None while a
    backup (or another collector's pass) holds it. Opened for writing: NFS carries an
    exclusive flock only on a file open for writing (the collector writes there anyway)."""
    fd = _open(root, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd
