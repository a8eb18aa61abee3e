"""The lock between ``collab backup`` and the collector (``collab.store.bloblock``): a backup
started while a removal pass runs waits for it before its snapshot (seen waiting in the kernel's
``/proc/locks``, not guessed from time), and no removal pass starts while a backup holds it."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from collab.db import migrate_with_backup
from collab.ops.backup import backup
from collab.store.bloblock import backup_lock, lock_file, try_removal_lock
from tests.support.waiting import poll_until


def waiting_on(path: Path) -> int:
    """How many flock requests on ``path`` the kernel has blocked (``->`` in /proc/locks)."""
    inode = f":{path.stat().st_ino}"
    with open("/proc/locks") as locks:
        return sum(
            1
            for line in locks
            if "->" in line.split() and any(field.endswith(inode) for field in line.split())
        )


def test_a_backup_waits_for_a_running_removal_pass(tmp_path: Path) -> None:
    db, files = tmp_path / "collab.db", tmp_path / "files"
    migrate_with_backup(db)
    held = try_removal_lock(files)  # a collector's removal pass, under way
    assert held is not None
    manifest: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: manifest.update(backup(db, tmp_path / "bk")))
    thread.start()
    try:
        assert poll_until(lambda: waiting_on(lock_file(files)) == 1, 10)
        assert not (tmp_path / "bk" / "collab.db").exists()  # no snapshot before the pass ends
    finally:
        os.close(held)
    thread.join(30)
    assert not thread.is_alive()
    assert manifest["files_problems"] == [] and (tmp_path / "bk" / "collab.db").is_file()


def test_no_removal_pass_while_a_backup_holds_the_files(tmp_path: Path) -> None:
    files = tmp_path / "files"
    with backup_lock(files), backup_lock(files):  # backups share it
        assert try_removal_lock(files) is None
    first = try_removal_lock(files)
    assert first is not None
    try:
        assert try_removal_lock(files) is None  # two removal passes never overlap
    finally:
        os.close(first)
    again = try_removal_lock(files)
    assert again is not None
    os.close(again)
    assert (files / "backup.lock").stat().st_mode & 0o777 == 0o600
