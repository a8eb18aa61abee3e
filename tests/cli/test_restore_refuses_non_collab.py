"""``collab restore`` refuses a file that is not a collab database, before touching the live
one: an empty file (SQLite opens it as an empty database) or another program's SQLite file
was "restored", exit 0, leaving a database with no tables (the next ``collab serve`` starts a
blank workspace on it), and a file that is not SQLite at all ended in a traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import collab


@pytest.mark.parametrize("kind", ["empty", "other-sqlite", "not-sqlite"])
def test_restore_refuses_what_is_not_a_collab_database(tmp_path: Path, kind: str) -> None:
    store = f"sqlite:///{tmp_path / 'collab.db'}"
    assert collab("migrate", "--store", store, cwd=tmp_path).returncode == 0
    bot = collab("user", "create-bot", "keeper", "--store", store, cwd=tmp_path)
    assert bot.returncode == 0, bot.stderr
    source = tmp_path / "source.db"
    if kind == "empty":
        source.write_bytes(b"")
    elif kind == "other-sqlite":
        with sqlite3.connect(source) as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
        conn.close()
    else:
        source.write_text("not a database at all, but long enough to have a header\n" * 4)
    result = collab("restore", str(source), "--store", store, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"Error: {source}"), result.stderr
    assert "not a collab database" in result.stderr, result.stderr
    # The live database is as it was, and nothing was set aside.
    assert not list(tmp_path.glob("collab.db.pre-restore-*"))
    listed = collab("user", "list", "--store", store, cwd=tmp_path)
    assert bot.stdout.strip() in listed.stdout, listed.stdout + listed.stderr
