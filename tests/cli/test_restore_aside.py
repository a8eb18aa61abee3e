"""``collab restore`` keeps the database it replaces as ``<name>.pre-restore-<time>.bak``. Two
restores within one second (a script, or an operator who restored the wrong backup and
restores the right one at once) used to write the second copy over the first: the database
that was there before either restore, the one copy of it, was lost."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from collab.db import migrate_with_backup
from collab.ops.backup import restore


def database(path: Path, room: str) -> Path:
    migrate_with_backup(path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO rooms (id, title, created_by, created_at) VALUES (?, ?, 'u', 0)",
            (room, room),
        )
    conn.close()
    return path


def rooms(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM rooms")}
    finally:
        conn.close()


def test_two_restores_in_one_second_keep_both_databases_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "strftime", lambda *_: "20260101T000000")  # one second
    (tmp_path / "live").mkdir()
    target = database(tmp_path / "live" / "collab.db", "original")
    first = restore(database(tmp_path / "a.db", "from-a"), target)
    second = restore(database(tmp_path / "b.db", "from-b"), target)
    assert rooms(target) == {"from-b"}
    assert first.previous is not None and second.previous is not None
    assert first.previous != second.previous
    assert rooms(first.previous) == {"original"}  # the one copy of the original database
    assert rooms(second.previous) == {"from-a"}
