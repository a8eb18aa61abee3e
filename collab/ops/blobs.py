"""Uploaded files in backups: copied beside the database, re-hashed by verify, put back by
restore.

Which bytes belong to a backup is the backed-up database's say: every blob its ``files`` table
references (``SELECT DISTINCT sha256``), read from the consistent copy, so a backup taken under
upload load holds the bytes of every file its database knows (a blob is stored before its
reference, and the collector never removes a referenced one), and so does one taken while
references are deleted: ``backup`` holds the blob directory's backup lock meanwhile, and no
collector removes a blob then (``collab.store.bloblock``). A blob's name is its SHA-256, so
each is checked by hashing it: when copied (a corrupt source is reported, not copied), by
``verify`` (a flipped byte is reported), and by ``restore`` (a bad one is refused).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from collab.store.blobs import SHA256_RE, blob_path, private_mkdir

BACKUP_FILES = "files"  # the blob directory inside a backup directory
CHUNK = 1024 * 1024


@dataclass
class BlobReport:
    count: int = 0  # blobs copied or checked whole
    bytes: int = 0
    missing: list[str] = field(default_factory=list)  # referenced, absent
    # present, not the bytes their name says; or a record's sha256 that is none (names no file)
    corrupt: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [f"file {sha256}: missing" for sha256 in self.missing] + [
            f"file {sha256}: its bytes do not match its SHA-256"
            if SHA256_RE.fullmatch(sha256)
            else f"file {sha256!r}: not a SHA-256, names no stored file"
            for sha256 in self.corrupt
        ]

    def named(self, sha256: str) -> bool:
        """Whether a record's sha256 is one; if not, it is reported (a damaged record names
        no file, and must not stop the others being checked or copied)."""
        if SHA256_RE.fullmatch(sha256):
            return True
        self.corrupt.append(sha256)
        return False


def referenced(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """(sha256, size) of every blob the database's records reference (none before 0010)."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='files'")
    if row.fetchone() is None:
        return []
    return [
        (str(sha256), int(size))
        for sha256, size in conn.execute(
            "SELECT sha256, max(size) FROM files GROUP BY sha256 ORDER BY sha256"
        )
    ]


def _hash(path: Path, copy_to: Path | None = None) -> str:
    """The SHA-256 of the file at ``path``, copying it to ``copy_to`` (0600) on the way."""
    digest = hashlib.sha256()
    out = None
    if copy_to is not None:
        out = os.fdopen(os.open(copy_to, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
    try:
        with open(path, "rb") as source:
            while data := source.read(CHUNK):
                digest.update(data)
                if out is not None:
                    out.write(data)
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest()


def _copy(sha256: str, source: Path, target: Path, report: BlobReport, size: int) -> None:
    """Copy one blob through a temporary name, hashing it; a bad one is reported, not kept."""
    if not report.named(sha256):
        return
    src, dst = blob_path(source, sha256), blob_path(target, sha256)
    if not src.is_file():
        report.missing.append(sha256)
        return
    private_mkdir(dst.parent)
    partial = dst.with_name(dst.name + ".partial")
    if _hash(src, partial) != sha256:
        partial.unlink()
        report.corrupt.append(sha256)
        return
    os.replace(partial, dst)
    report.count += 1
    report.bytes += size


def copy_blobs(conn: sqlite3.Connection, source: Path, target: Path) -> BlobReport:
    """Copy every blob ``conn``'s records reference from ``source`` into ``target``."""
    report = BlobReport()
    for sha256, size in referenced(conn):
        _copy(sha256, source, target, report, size)
    return report


def restore_blobs(conn: sqlite3.Connection, source: Path, target: Path) -> BlobReport:
    """Put back every referenced blob ``target`` lacks (or holds corrupt)."""
    report = BlobReport()
    for sha256, size in referenced(conn):
        if not report.named(sha256):
            continue
        existing = blob_path(target, sha256)
        with contextlib.suppress(FileNotFoundError):
            if _hash(existing) == sha256:
                report.count += 1
                report.bytes += size
                continue
        _copy(sha256, source, target, report, size)
    return report


def verify_blobs(conn: sqlite3.Connection, root: Path) -> BlobReport:
    """Re-hash every referenced blob under ``root``."""
    report = BlobReport()
    for sha256, size in referenced(conn):
        if not report.named(sha256):
            continue
        path = blob_path(root, sha256)
        try:
            good = _hash(path) == sha256
        except FileNotFoundError:
            report.missing.append(sha256)
            continue
        if good:
            report.count += 1
            report.bytes += size
        else:
            report.corrupt.append(sha256)
    return report
