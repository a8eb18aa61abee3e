"""bench/procs.py: what every child starts with, and the commit timings read from collab."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import procs
import psutil
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


def test_a_processes_cpu_time_counts_its_exited_threads_finer_than_a_clock_tick() -> None:
    """The latency workload's CPU per update at its low-rate points is a few tens of ms: read
    in 10 ms ticks (psutil) it was mostly rounding, and a per-thread sum would lose the
    threads that exited (collab's SQLite commits run in worker threads)."""
    burn = (
        "import threading, time, sys\n"
        "def spin():\n"
        "    end = time.thread_time() + 0.3\n"
        "    while time.thread_time() < end: pass\n"
        "t = threading.Thread(target=spin); t.start(); t.join()\n"
        "print('done', flush=True); sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "done\n"
        ps = psutil.Process(child.pid)
        seconds = procs.process_cpu_seconds(ps)
        ticks = ps.cpu_times().user + ps.cpu_times().system
    finally:
        child.communicate("", timeout=30)
    assert seconds >= 0.3  # the exited thread's 0.3 s are in
    assert abs(seconds - ticks) < 0.05
    if sys.platform == "linux":  # the process CPU clock: nanoseconds, not 10 ms ticks
        hundredths = seconds * 100
        assert abs(hundredths - round(hundredths)) > 1e-6


def test_low_rate_latency_points_are_measured_longer() -> None:
    """1 x 2 and 1 x 10 deliver 10 and 90 updates a second: 2 s of them is a few ms of CPU."""
    full = workloads.FULL
    window = {(r, c): workloads.latency_window_ms(full, r, c, 10) for r, c in full.latency_points}
    assert window[(1, 2)] == window[(1, 10)] == full.latency_max_measure_ms
    assert window[(20, 2)] == 5000  # 200 deliveries/s: 1,000 of them
    assert window[(20, 50)] == window[(1, 200)] == full.measure_ms  # already plenty
    for (r, c), ms in window.items():
        assert r * (c - 1) * 10 * ms / 1000 >= full.latency_min_deliveries or ms == 10_000
    assert workloads.latency_window_ms(workloads.QUICK, 1, 2, 10) == workloads.QUICK.measure_ms
