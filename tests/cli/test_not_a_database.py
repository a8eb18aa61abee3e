"""Every command pointed at a store file that is not a SQLite database (a wrong path that
names some other file, a truncated or overwritten database): one ``Error:`` line naming the
file and SQLite's words, exit 1, and the file left as it was. They ended in sqlite3's
``DatabaseError: file is not a database`` traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import collab

JUNK = b"this is not a SQLite database, whatever its name says\n" * 8

COMMANDS = [
    ("migrate",),
    ("stats",),
    ("user", "list"),
    ("token", "create", "--user", "someone"),
    ("audit",),
    ("purge",),
    ("compact",),
    ("files", "gc"),
    ("search", "reindex"),
    ("backup", "{tmp}/backup"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] + " " + c[-1] for c in COMMANDS])
def test_a_file_that_is_not_a_database_is_a_clear_error(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    db = tmp_path / "collab.db"
    db.write_bytes(JUNK)
    args = [arg.format(tmp=tmp_path) for arg in command]
    result = collab(*args, "--store", f"sqlite:///{db}", cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    assert str(db) in result.stderr and "not a database" in result.stderr, result.stderr
    assert db.read_bytes() == JUNK


def test_migrate_refuses_a_newer_database_in_one_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'collab.db'}"
    assert collab("migrate", "--store", store, cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "collab.db") as conn:
        conn.execute("INSERT INTO collab_migrations VALUES (9999, 'from_the_future', 0)")
    conn.close()
    result = collab("migrate", "--store", store, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: database schema version 9999 is newer"), result.stderr
