"""bench/run.py's measuring loop: a workload that fails part way keeps what it measured."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import procs
import pytest
import run
import workloads


def test_a_partial_result_is_kept_and_reported_as_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_one(workload: str, spec: procs.ServerSpec, *rest: Any) -> list[dict[str, Any]]:
        rows = [workloads.measurement("1000", "rss_mb", 120.0)]
        if spec.name == "collab":
            raise workloads.PartialResult(rows, procs.WorkerError("timeout at 2500"))
        return rows

    monkeypatch.setattr(run, "run_one", run_one)
    args = argparse.Namespace(
        plan=workloads.QUICK, no_pin=True, reps=1, workloads=["sockets"], deflate="off"
    )
    specs = {name: procs.SERVERS[name] for name in ("collab", "hocuspocus")}
    raw, failures = run.measure(args, specs, None, tmp_path)
    assert [(r["server"], r["point"], r["value"]) for r in raw] == [
        ("collab", "1000", 120.0),
        ("hocuspocus", "1000", 120.0),
    ]
    assert failures == [
        {
            "rep": 0,
            "workload": "sockets",
            "server": "collab",
            "deflate": False,
            "error": "WorkerError('timeout at 2500')",
        }
    ]
    assert (tmp_path / "0-sockets-collab-False.json").exists()  # its rows are on disk too
    assert "timeout at 2500" in (tmp_path / "error-0-sockets-collab-False.txt").read_text()
