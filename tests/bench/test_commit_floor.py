"""bench/commit_floor.py and the opt-in collab-memory server: what prices issue 11's commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import commit_floor
import pytest
import run
import uvloop
from procs import OPTIONAL, SERVERS


@pytest.mark.parametrize("kind", commit_floor.KINDS)
def test_each_kind_of_operation_is_measured(kind: str, tmp_path: Path) -> None:
    us = uvloop.run(commit_floor._measure(kind, 0.001, 5, tmp_path))
    assert us > 0


def test_the_store_kind_commits_through_collabs_own_store(tmp_path: Path) -> None:
    uvloop.run(commit_floor._measure("store", 0.0, 3, tmp_path))
    conn = sqlite3.connect(tmp_path / "collab.db")
    try:
        rows = conn.execute("SELECT count(*) FROM doc_updates").fetchone()[0]
    finally:
        conn.close()
    assert rows == commit_floor.DOCS + 5 + 3  # first rows, the warm-up, the measured ones


def test_collab_memory_runs_only_when_named_and_on_memory(tmp_path: Path) -> None:
    assert "collab-memory" not in run.parse_args([]).servers
    assert run.parse_args(["--servers", "collab,collab-memory"]).servers == [
        "collab",
        "collab-memory",
    ]
    argv = OPTIONAL["collab-memory"].command(8000, tmp_path, False)
    assert argv[argv.index("--store") + 1] == "memory://"
    durable = SERVERS["collab"].command(8000, tmp_path, False)
    assert durable[durable.index("--store") + 1].startswith("sqlite:///")
