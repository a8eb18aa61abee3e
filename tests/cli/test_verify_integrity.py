"""``collab verify`` runs SQLite's full integrity check, as the README says, not only the
quick one: an index that no longer matches its table is corruption ``PRAGMA quick_check``
does not look for. Here ``sessions_by_user`` holds each session under its id instead of its
user: every lookup of a user's sessions finds none, so ``collab user disable`` would revoke
nothing, and verify said ``integrity: ok``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from collab.db import migrate_with_backup
from tests.support.cli import collab
from tests.support.sqlitefaults import assert_hidden_from_quick_check, misindexed, write_row


def store_with_a_session(directory: Path, *, corrupt: bool) -> Path:
    directory.mkdir()
    db = directory / "collab.db"
    migrate_with_backup(db)
    fault = misindexed(db, "sessions_by_user", "sessions", written="id", declared="user_id")
    write_row(
        db,
        "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ('s1', 'u1', 0, 1e12)",
        fault if corrupt else None,
    )
    if corrupt:  # the user's session is invisible through the index
        assert_hidden_from_quick_check(db, "SELECT id FROM sessions WHERE user_id='u1'")
    return db


def test_verify_reports_an_index_that_no_longer_matches_its_table(tmp_path: Path) -> None:
    healthy = store_with_a_session(tmp_path / "healthy", corrupt=False)
    result = collab("verify", str(healthy), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["integrity"] == "ok"
    corrupt = store_with_a_session(tmp_path / "corrupt", corrupt=True)
    result = collab("verify", str(corrupt), "--json", cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert not report["ok"] and "sessions_by_user" in report["integrity"]


def test_restore_refuses_a_database_whose_index_no_longer_matches(tmp_path: Path) -> None:
    corrupt = store_with_a_session(tmp_path / "corrupt", corrupt=True)
    target = tmp_path / "target" / "collab.db"
    result = collab("restore", str(corrupt), "--store", f"sqlite:///{target}", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "fails SQLite's integrity check" in result.stderr
    assert "sessions_by_user" in result.stderr
    assert not target.exists()


def test_a_record_naming_no_sha256_is_reported_not_a_crash(tmp_path: Path) -> None:
    """A ``files`` row whose sha256 is not one (a damaged page, a hand edit): verify reports
    it with everything else and exits 3; backup copies everything else and lists it among its
    problems. Before, both stopped at it ("not a SHA-256 hex digest", exit 1): no report, no
    backup at all."""
    live = tmp_path / "live"
    db = store_with_a_session(live, corrupt=False)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO rooms (id, title, created_by, created_at) VALUES ('r', 'R', 'u', 0)"
        )
        conn.execute(
            "INSERT INTO files VALUES ('f1', 'r', '../../etc/passwd', 4, 'text/plain', 'a', 'u', 0)"
        )
    conn.close()
    result = collab("verify", str(db), "--json", cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["integrity"] == "ok" and report["files"]["corrupt"] == ["../../etc/passwd"]
    backup = collab("backup", str(tmp_path / "bk"), "--store", str(db), cwd=tmp_path)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["files_problems"] == [
        "file '../../etc/passwd': not a SHA-256, names no stored file"
    ]
