"""``collab serve`` whose SQLite store cannot be made where it is configured (its directory
would be below a regular file; on a real host, a directory it may not write) says so in one
``Error:`` line naming the path, exit 1; making the server's lock file (``<db>.lock``) there
ended in a ``FileExistsError`` traceback."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import collab
from tests.support.server import free_port


def test_a_store_below_a_file_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("a regular file where a directory should be")
    db = tmp_path / "afile" / "collab.db"
    result = collab(
        "serve", "--store", f"sqlite:///{db}", "--port", str(free_port()), cwd=tmp_path, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"Error: {db}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
