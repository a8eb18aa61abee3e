"""Backups are private from the start, and ``verify`` reads only what it should.

Issue 8 item 8: under umask 022 a backup (every doc, emails, audit IPs, the secret key) was
world-readable, and the secret key was copied before its mode was set. Item 13: ``verify``
built its ``file:`` URI from the raw path (a ``#`` dropped ``mode=ro``) and hashed any path a
crafted manifest named.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from collab.db import migrate_with_backup
from collab.ops import backup as backup_module
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer


def collab(*args: str, cwd: Path, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collab", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        umask=umask,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def write_doc(server: CollabServer, text: str) -> None:
    with anyio.fail_after(20):
        peer = await RawPeer.connect(server.ws_url("vault", "notes"))
        await peer.insert(0, text)
        await peer.request_saved(1)
        await peer.wait_for(lambda: peer.saved == 1)
        await peer.close()


def test_backup_and_restore_files_are_private_under_umask_022(
    server_factory: Callable[..., CollabServer], tmp_path: Path
) -> None:
    server = server_factory()
    anyio.run(write_doc, server, "private notes")
    dest = tmp_path / "backups" / "today"  # the parent is created too
    result = collab("backup", str(dest), "--store", server.store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = ["collab.db", "collab.db.search.db", "manifest.json", "secret_key"]
    assert sorted(p.name for p in dest.iterdir()) == files
    assert mode(dest) == 0o700 and mode(dest.parent) == 0o700
    for name in files:
        assert mode(dest / name) == 0o600, name
    # A restore keeps the database it replaces, and installs the key: both private too.
    server.stop()
    restored = collab("restore", str(dest), "--store", server.store, cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    (kept,) = tmp_path.glob("collab.db.pre-restore-*.bak")
    assert mode(kept) == 0o600 and mode(tmp_path / "secret_key") == 0o600
    assert mode(tmp_path / "collab.db.search.db") == 0o600  # the backup's index, put in place


def test_modes_come_from_creation_not_a_later_chmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The secret key (and every other file) is 0600 before its first byte: with every chmod
    turned into a no-op, the modes are still private, so none of them was fixed afterwards."""
    db = tmp_path / "data" / "collab.db"
    migrate_with_backup(db)  # collab's schema, empty
    (db.parent / "secret_key").write_text("k" * 64 + "\n")
    for name in ("chmod", "fchmod"):
        monkeypatch.setattr(os, name, lambda *args, **kw: None)
    previous = os.umask(0o022)
    try:
        backup_module.backup(db, tmp_path / "out")
    finally:
        os.umask(previous)
    out = tmp_path / "out"
    assert mode(out) == 0o700
    assert {p.name: mode(p) for p in out.iterdir()} == {
        "collab.db": 0o600,
        "manifest.json": 0o600,
        "secret_key": 0o600,
    }


def test_verify_opens_a_path_with_hash_and_question_mark_read_only(
    server_factory: Callable[..., CollabServer], tmp_path: Path
) -> None:
    """Before: ``file:/.../we#ird?dir/collab.db?mode=ro`` opened ``/.../we`` read-write (and
    created it), so the backup's own stats step and verify read an empty new database instead
    of the backup (the backup command itself failed: "no such table")."""
    server = server_factory()
    anyio.run(write_doc, server, "hash and question")
    dest = tmp_path / "we#ird?dir"
    assert collab("backup", str(dest), "--store", server.store, cwd=tmp_path).returncode == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    result = collab("verify", str(dest), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["checked"] == 1 and report["stats"]["docs"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created beside it
    assert report["search_index"]["integrity"] == "ok"
    assert sorted(p.name for p in dest.iterdir()) == [
        "collab.db",
        "collab.db.search.db",
        "manifest.json",
        "secret_key",
    ]


def test_verify_hashes_only_files_inside_the_backup(
    server_factory: Callable[..., CollabServer], tmp_path: Path
) -> None:
    """A crafted manifest names files outside the backup: absolute, through ``..``, through a
    symlink. Before, each was hashed and "matched its checksum", confirming the guess; now
    each is reported and never read (so are a FIFO and a device)."""
    server = server_factory()
    anyio.run(write_doc, server, "crafted manifest")
    dest = tmp_path / "backup"
    assert collab("backup", str(dest), "--store", server.store, cwd=tmp_path).returncode == 0
    outside = tmp_path / "outside.txt"
    outside.write_text("a secret outside the backup")
    (dest / "link").symlink_to(outside)
    os.mkfifo(dest / "fifo")
    manifest = json.loads((dest / "manifest.json").read_text())
    guess = backup_module._digest(outside)
    for name in ("/dev/zero", "../outside.txt", "link", "fifo", str(outside), ""):
        manifest["files"][name] = guess
    (dest / "manifest.json").write_text(json.dumps(manifest))
    result = collab("verify", str(dest), "--json", cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    problems = json.loads(result.stdout)["manifest_problems"]
    assert sorted(problems) == sorted(
        [
            "'/dev/zero' is not a plain name inside the backup directory: not checked",
            "'../outside.txt' is not a plain name inside the backup directory: not checked",
            f"'{outside}' is not a plain name inside the backup directory: not checked",
            "'' is not a plain name inside the backup directory: not checked",
            "'link' leads outside the backup directory: not checked",
            "'fifo' is not a regular file: not checked",
        ]
    )
    # The same manifest makes a restore refuse.
    restored = collab(
        "restore", str(dest), "--store", f"sqlite:///{tmp_path / 'r.db'}", cwd=tmp_path
    )
    assert restored.returncode == 1 and "not checked" in restored.stderr
