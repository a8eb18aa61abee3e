"""Two ``collab migrate`` runs at once on one SQLite database (an operator's and a unit's, or a
``collab serve`` starting meanwhile) apply each migration once and both succeed, as the
command's help says: the second run re-reads what is applied once it holds the write lock,
instead of running migrations the first one committed meanwhile ("table already exists")."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from collab.db.connection import connect
from collab.db.migrate import applied_versions, apply, load_migrations

RUNS = 3


def test_concurrent_migrate_runs_apply_each_migration_once(tmp_path: Path) -> None:
    db = tmp_path / "collab.db"
    known = load_migrations()
    conn = connect(db)
    assert not applied_versions(conn)  # (creates the bookkeeping table)
    apply(conn, known[:2])  # an older collab's database: the rest are pending
    # Hold the write lock: every run reads what is pending, then waits for the lock.
    conn.execute("BEGIN IMMEDIATE")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "collab", "migrate", "--store", f"sqlite:///{db}"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RUNS)
    ]
    try:
        deadline = time.monotonic() + 60
        waiting = sqlite3.connect(db)
        try:
            # The first run's backup is written before it asks for the write lock (it is a
            # reader here); the others wait for its turn to end (collab.db.migrate).
            while len(list(tmp_path.glob("collab.db.pre-*.bak"))) < 1:
                assert time.monotonic() < deadline
                assert all(run.poll() is None for run in runs)
                time.sleep(0.05)
        finally:
            waiting.close()
        time.sleep(2)  # every run waiting: the first for the write lock, the others for it
    finally:
        conn.execute("COMMIT")
        conn.close()
    outputs = [run.communicate(timeout=60) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
        assert "Traceback" not in err, err
    check = sqlite3.connect(db)
    try:
        versions = [v for (v,) in check.execute("SELECT version FROM collab_migrations")]
    finally:
        check.close()
    assert sorted(versions) == [m.version for m in known]
    applied = [out for out, _ in outputs if "applied" in out]
    assert len(applied) == 1, outputs  # one run applied them; the others found them applied
    assert sum("up to date" in out for out, _ in outputs) == RUNS - 1, outputs
