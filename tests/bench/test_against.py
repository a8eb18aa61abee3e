"""bench/against.py: collab of one run against collab of a committed run, over what both
measured."""

from __future__ import annotations

import json
from pathlib import Path

import against
import pytest

from tests.bench.synthetic import row, summary


def runs() -> tuple[dict[str, object], dict[str, object]]:
    new = summary(
        [
            row("latency", "20x10", "p99_ms", "collab", 12.0),
            row("latency", "20x10", "p99_ms", "hocuspocus", 5.0),
            row("latency", "1x2", "p99_ms", "collab", 3.0),  # the committed run has no 1x2
            row("connections", "1000", "kb_per_conn", "collab", 20.0),
        ]
    )
    new["workloads"], new["date"] = ["latency", "connections"], "2026-12-06T100000"
    old = summary(
        [
            row("latency", "20x10", "p99_ms", "collab", 10.0),
            row("latency", "20x10", "p99_ms", "collab", 10.0, deflate=True),  # new: off only
            row("connections", "1000", "kb_per_conn", "collab", 30.0),
            row("chat", "1x50", "p99_ms", "collab", 9.0),
        ]
    )
    old["workloads"], old["date"] = ["latency", "connections", "chat", "cold"], "2026-12-05T111913"
    return new, old


def test_only_what_both_runs_measured_of_collab_is_compared() -> None:
    new, old = runs()
    combined, name = against.combine(new, old)
    assert name == "collab@2026-12-05T111913"
    assert combined["workloads"] == ["latency", "connections"]
    assert sorted((r["server"], r["point"]) for r in combined["results"]) == [
        ("collab", "1000"),
        ("collab", "20x10"),
        (name, "1000"),
        (name, "20x10"),
    ]


def test_the_table_flags_a_regression_against_the_committed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    new, old = runs()
    paths = []
    for run in (new, old):
        path = tmp_path / f"{run['date']}.json"
        path.write_text(json.dumps(run))
        paths.append(str(path))
    monkeypatch.setattr(against, "RESULTS", tmp_path)
    assert against.main(paths) == 0
    written = (tmp_path / "2026-12-06T100000-against-2026-12-05T111913.md").read_text()
    assert "1 of 2 rows more than 10% worse" in written
    assert "off latency 20x10 p99 ms: 1.20x" in written
    assert "Not interleaved" in written and written in capsys.readouterr().out


def test_runs_with_nothing_in_common_are_refused(tmp_path: Path) -> None:
    new, old = runs()
    old["results"] = [row("cold", "100k", "load_ms", "collab", 4.0)]
    paths = []
    for run in (new, old):
        path = tmp_path / f"{run['date']}.json"
        path.write_text(json.dumps(run))
        paths.append(str(path))
    assert against.main(paths) == 2
