"""bench/procs.py: what every child starts with, and the commit timings read from collab."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import procs
import workloads
from procs import SERVERS, Cores, ServerProcess


def test_children_start_with_the_soft_limit_of_open_files_raised() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 256)
    probe = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"

    def low_then_setup() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))  # as a login shell's 1,024
        procs._child_setup(None)()

    out = subprocess.run(
        [sys.executable, "-c", probe],
        preexec_fn=low_then_setup,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert int(out.stdout) == procs.fd_limit()
    assert procs.fd_limit() >= lowered


def test_collabs_commit_timings_are_read_from_its_metrics(tmp_path: Path) -> None:
    """The real collab's /metrics has the histogram the latency workload reads (a renamed
    metric would silently drop the commit times from the targets table)."""
    server = ServerProcess(SERVERS["collab"], tmp_path / "collab", False, Cores(None, None))
    server.start()
    try:
        totals = server.commit_totals()
    finally:
        server.stop()
    assert totals is not None
    seconds, count = totals
    assert seconds >= 0 and count >= 0


def test_servers_without_those_metrics_have_no_commit_timings(tmp_path: Path) -> None:
    assert SERVERS["uvicorn-relay"].metrics is None
    relay = ServerProcess(SERVERS["uvicorn-relay"], tmp_path / "relay", False, Cores(None, None))
    assert relay.commit_totals() is None  # not even started: nothing is asked


def test_the_mean_commit_time_is_taken_over_the_commits_between_two_readings() -> None:
    assert workloads.commit_mean_ms((1.0, 100.0), (1.5, 200.0)) == 5.0
    assert workloads.commit_mean_ms((1.0, 100.0), (1.0, 100.0)) is None  # no commit
    assert workloads.commit_mean_ms(None, (1.0, 100.0)) is None
