"""``collab serve`` that cannot start for a reason an operator fixes (a files directory that
cannot be made, a PostgreSQL database with pending migrations or not answering) exits non-zero
with one log line saying why, not a Python traceback (uvicorn logged the whole chain of a
StoreError or OSError raised at startup, its message at the very end)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import collab
from tests.support.server import free_port


def _lines(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _refused(tmp_path: Path, *args: str) -> str:
    result = collab(
        "serve", "--port", str(free_port()), "--log-format", "json", *args, cwd=tmp_path, timeout=60
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line["msg"] for line in _lines(result.stderr) if line["level"] == "error"]
    assert errors[-1] == "Application startup failed. Exiting.", result.stderr
    why = [str(msg) for msg in errors if str(msg).startswith("collab cannot start: ")]
    assert len(why) == 1 and "\n" not in why[0], result.stderr
    return why[0]


def test_a_files_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    why = _refused(tmp_path, "--store", "sqlite:///c.db", "--files-dir", str(tmp_path / "afile"))
    assert "Not a directory" in why and "afile" in why


def test_a_postgresql_database_with_pending_migrations(pg_empty_url: str, tmp_path: Path) -> None:
    why = _refused(tmp_path, "--store", pg_empty_url, "--files-dir", str(tmp_path / "files"))
    assert "has pending migrations: run `collab migrate`" in why


@pytest.mark.parametrize("password", ["", ":pw-not-printed-7731"])
def test_a_postgresql_server_that_does_not_answer(password: str, tmp_path: Path) -> None:
    url = f"postgresql://collab{password}@127.0.0.1:{free_port()}/collab"
    why = _refused(tmp_path, "--store", url, "--files-dir", str(tmp_path / "files"))
    assert "Connection refused" in why and "pw-not-printed" not in why


def test_an_empty_stored_secret_key(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("")  # a disk that filled up, a bad copy
    why = _refused(tmp_path, "--store", "sqlite:///c.db")
    assert "the stored secret key is empty or too short" in why and "secret_key" in why
