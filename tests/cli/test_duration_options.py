"""A command's own duration and count options refuse what they cannot run with, as a usage
error (exit 2) before touching the database: ``collab compact --timeout 0`` (or negative) timed
every doc's child out at once and exited 0 having compacted nothing; ``nan`` and ``inf`` died
in ``subprocess`` with a traceback; ``files gc --grace nan`` removed nothing and said so, exit
0; ``stats --top -1`` listed every doc (SQLite's LIMIT -1)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from tests.support.cli import collab


def _database_with_a_doc(tmp_path: Path) -> str:
    store = f"sqlite:///{tmp_path / 'c.db'}"
    assert collab("migrate", "--store", store, cwd=tmp_path).returncode == 0
    doc: Doc[Any] = Doc()
    doc["text"] = text = Text()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(3):
        text += f"line {i}\n"
    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute(
            "INSERT INTO docs (room, name, generation, created_at, last_seq) VALUES (?,?,?,?,?)",
            ("r", "d", uuid.uuid4().hex, time.time(), len(updates)),
        )
        conn.executemany(
            "INSERT INTO doc_updates (room, name, seq, data) VALUES (?, ?, ?, ?)",
            [("r", "d", i + 1, data) for i, data in enumerate(updates)],
        )
    conn.close()
    return store


@pytest.mark.parametrize(
    "args",
    [
        ("compact", "--timeout", "0"),
        ("compact", "--timeout", "-1"),
        ("compact", "--timeout", "nan"),
        ("compact", "--timeout", "inf"),
        ("files", "gc", "--grace", "nan"),
        ("files", "gc", "--grace", "inf"),
        ("files", "gc", "--grace", "-5"),
        ("stats", "--top", "-1"),
    ],
    ids=lambda args: " ".join(args),
)
def test_a_bad_value_is_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    store = _database_with_a_doc(tmp_path)
    result = collab(*args, "--store", store, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == "", result.stderr
    assert f"Invalid value for '{args[-2]}'" in result.stderr, result.stderr
    # Nothing was done: the doc's log is still there for a compaction with a real timeout.
    compact = collab("compact", "--store", store, "--timeout", "60", cwd=tmp_path, timeout=120)
    assert compact.returncode == 0 and "compacted 1 docs" in compact.stdout, compact.stdout
