"""Every command that opens the store's SQLite database, pointed at one that does not exist
(a typo in the path, a directory not mounted): one ``Error:`` line naming the path and saying
what creates it, exit 1, no traceback, and no empty database file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import collab

COMMANDS = [
    ("user", "list"),
    ("user", "disable", "someone"),
    ("user", "create-bot", "bot"),
    ("token", "create", "--user", "someone"),
    ("audit",),
    ("purge",),
    ("compact",),
    ("files", "gc"),
]


@pytest.mark.parametrize("missing_dir", [True, False], ids=["no-directory", "no-file"])
@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_a_missing_database_is_a_clear_error(
    tmp_path: Path, command: tuple[str, ...], missing_dir: bool
) -> None:
    db = tmp_path / ("typo" if missing_dir else "") / "collab.db"
    result = collab(*command, "--store", f"sqlite:///{db}", cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    assert str(db) in result.stderr and "no such database" in result.stderr, result.stderr
    assert "collab migrate" in result.stderr, result.stderr
    assert not db.exists() and not db.parent.joinpath("collab.db-wal").exists()
