"""bench/run.py's measuring loop: a workload that fails part way keeps what it measured."""

from __future__ import annotations

import argparse
import time
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


def _part(date: str, workloads_: list[str], tree: str = "t1") -> dict[str, Any]:
    return {
        "date": date,
        "quick": False,
        "elapsed_s": 600.0,
        "reps": 3,
        "deflate": "both",
        "plan": {"x": 1},
        "servers": ["collab", "hocuspocus"],
        "workloads": workloads_,
        "machine": {"commit": "abc", "collab_tree": tree},
        "failures": [],
        "results": [{"workload": w, "server": "collab"} for w in workloads_],
    }


def test_parts_of_one_run_merge_into_one_summary() -> None:
    merged = run.merge([_part("A", ["latency", "chat"]), _part("B", ["sockets"])])
    assert merged["workloads"] == ["latency", "chat", "sockets"]
    assert [r["workload"] for r in merged["results"]] == ["latency", "chat", "sockets"]
    assert merged["parts"] == ["A", "B"] and merged["elapsed_s"] == 1200.0
    assert merged["reps"] == 3 and merged["servers"] == ["collab", "hocuspocus"]


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (_part("B", ["latency"]), "in both"),
        (_part("B", ["sockets"], tree="t2"), "other code"),
        ({**_part("B", ["sockets"]), "reps": 1}, "'reps'"),
        ({**_part("B", ["sockets"]), "failures": [{"interrupted": True}]}, "interrupted"),
    ],
)
def test_parts_that_are_not_one_run_are_refused(second: dict[str, Any], why: str) -> None:
    with pytest.raises(run.MergeError, match=why):
        run.merge([_part("A", ["latency"]), second])


def test_an_interrupted_run_leaves_the_readme_alone() -> None:
    assert run.interrupted({"failures": [{"error": "interrupted", "interrupted": True}]})
    assert not run.interrupted({"failures": [{"error": "WorkerError('x')"}]})


def test_a_failed_latency_point_costs_that_point_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def point(
        server: Any, plan: Any, cores: Any, name: str, *rest: Any, **kw: Any
    ) -> list[dict[str, Any]]:
        if name == "1x200":
            raise procs.WorkerError("timeout: 150/200 clients open")
        return [workloads.measurement(name, "p99_ms", 1.0)]

    class Live:
        def alive(self) -> bool:
            return True

    monkeypatch.setattr(workloads, "latency_point", point)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    plan = argparse.Namespace(latency_points=[(1, 2), (1, 200), (20, 2)])
    with pytest.raises(workloads.PartialResult) as caught:
        workloads.latency(Live(), plan, None)  # type: ignore[arg-type]
    assert [r["point"] for r in caught.value.rows] == ["1x2", "20x2"]
    assert "1x200" in str(caught.value.cause)


def test_each_deflate_mode_starts_its_server_on_a_data_directory_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The off run's docs and rooms must not be there for the on run (collab's chat rooms
    created again were a 409, and the persistent anchors loaded the other mode's docs)."""
    seen: list[Path] = []

    class Recorder:
        def __init__(self, spec: procs.ServerSpec, data: Path, *rest: Any) -> None:
            seen.append(data)

        def start(self) -> None:
            pass

        def stop(self, graceful: bool) -> None:
            pass

    monkeypatch.setattr(run, "ServerProcess", Recorder)
    monkeypatch.setattr(workloads, "latency", lambda *a: [])
    cores = procs.Cores.split(pin=False)
    for deflate in (False, True):
        spec = procs.SERVERS["collab"]
        run.run_one("latency", spec, deflate, workloads.QUICK, cores, tmp_path, tmp_path)
    assert len(seen) == 2 and seen[0] != seen[1]


def test_an_interrupted_run_lists_its_failures() -> None:
    """The interruption's own entry names no step (it was a KeyError that lost the tables)."""
    from report import render

    from tests.bench.synthetic import summary

    run_summary = summary([])
    run_summary["failures"] = [
        {"rep": 0, "workload": "chat", "server": "collab", "deflate": True, "error": "boom"},
        {"error": "interrupted", "interrupted": True},
    ]
    text = render(run_summary)
    assert "- rep 1 chat collab deflate=True: `boom`" in text
    assert "- the run: `interrupted`" in text
