"""The search index's part of ``collab verify`` runs SQLite's full integrity check, as the main
database's does: an index b-tree that no longer matches its table is corruption
``PRAGMA quick_check`` does not look for. Here ``entries_by_room`` holds its one entry under
the wrong key, so a room's listing through it (what a rebuild's id pages read) misses it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collab.db import migrate_with_backup
from collab.search.sqlite import ensure_schema
from collab.search.verify import verify_index
from tests.support.sqlitefaults import assert_hidden_from_quick_check, misindexed, write_row


def _index_with_an_entry(index: Path, *, corrupt: bool) -> None:
    conn = sqlite3.connect(index, isolation_level=None)
    ensure_schema(conn)
    conn.close()
    fault = misindexed(index, "entries_by_room", "entries", written="id, room", declared="room, id")
    write_row(
        index,
        "INSERT INTO entries (kind, room, key, at, version, text)"
        " VALUES ('doc', 'r1', 'notes', 0, 0, 'hello')",
        fault if corrupt else None,
    )
    if corrupt:  # the room's entry is invisible through the index
        assert_hidden_from_quick_check(index, "SELECT id FROM entries WHERE room='r1' ORDER BY id")


def test_verify_reports_an_index_b_tree_that_no_longer_matches_its_table(tmp_path: Path) -> None:
    db = tmp_path / "collab.db"
    migrate_with_backup(db)
    sound, broken = tmp_path / "sound.db", tmp_path / "broken.db"
    _index_with_an_entry(sound, corrupt=False)
    _index_with_an_entry(broken, corrupt=True)

    assert verify_index(sound, db).problems == []
    report = verify_index(broken, db)
    assert report.problems, report.as_json()
    assert "entries_by_room" in report.integrity
