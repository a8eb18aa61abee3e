"""What a room and an idle synced socket cost in collab's server: RSS slopes, and where it goes.

    /work/main/.venv/bin/python bench/memory.py rss [--deflate off|on] [--servers collab,...]
                                                    [--tree PATH] [--reps N]
    /work/main/.venv/bin/python bench/memory.py trace [--rooms 300] [--per-room 1] [--deflate off]
                                                      [--tree PATH] [--top 30]

``rss`` runs the connections workload of bench/run.py (idle synced clients with a presence
``user``, ramped to 900 in 3 steps, once 10 and once 1 to a room, each on a fresh server) and
prints KB per connection and KB per room for each server, without writing any results.
``--tree`` runs collab as checked out there (a worktree of another commit) instead of this one.

``trace`` starts collab with tracemalloc on (bench/servers/collab_traced.py), connects a warm-up
of 20 rooms, snapshots, connects ``--rooms`` more rooms of ``--per-room`` clients, snapshots again
and prints the bytes Python allocated between the two per room and per client, by the innermost
collab frame of each allocation (and by the innermost frame of any file), and the live
gc-tracked objects per type that grew. Native memory (yrs's documents, SQLite's page cache, the
allocator's slack) is not seen by tracemalloc: ``rss`` says what all of it costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from procs import BENCH, PYTHON, SERVERS, Cores, ServerProcess, ServerSpec, WorkerPool, collab_at

WARMUP_ROOMS = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("rss", "trace"))
    parser.add_argument("--deflate", choices=("off", "on"), default="off")
    parser.add_argument("--servers", default="collab", help="rss: comma-separated")
    parser.add_argument("--tree", type=Path, help="collab as checked out at this path")
    parser.add_argument("--reps", type=int, default=1, help="rss: repetitions (medians)")
    parser.add_argument("--rooms", type=int, default=300, help="trace: rooms measured")
    parser.add_argument("--per-room", type=int, default=1, help="trace: clients per room")
    parser.add_argument("--top", type=int, default=30, help="trace: rows per table")
    return parser.parse_args(argv)


def spec_for(name: str, tree: Path | None) -> ServerSpec:
    return collab_at(tree, "collab") if name == "collab" and tree else SERVERS[name]


def _connections(spec: ServerSpec, deflate: bool, cores: Cores) -> dict[str, float]:
    """One run of the connections workload on fresh servers of ``spec``: metric -> value."""
    with tempfile.TemporaryDirectory(prefix="collab-memory-") as scratch:

        def make_server(tag: str) -> ServerProcess:
            server = ServerProcess(spec, Path(scratch) / f"{spec.name}-{tag}", deflate, cores)
            server.start()
            return server

        rows = workloads.connections(make_server, workloads.FULL, cores)
    return {r["metric"]: r["value"] for r in rows}


def rss(args: argparse.Namespace) -> None:
    cores = Cores.split(pin=True)
    for name in args.servers.split(","):
        spec = spec_for(name, args.tree)
        runs = [_connections(spec, args.deflate == "on", cores) for _ in range(args.reps)]
        for metric in runs[0]:
            values = sorted(r[metric] for r in runs)
            print(
                f"{name:16} deflate {args.deflate:3} {metric:28} "
                f"{values[len(values) // 2]:7.1f}  ({', '.join(f'{v:.1f}' for v in values)})"
            )


def _snapshot(server: ServerProcess, trace_dir: Path, n: int) -> tuple[Any, Counter[str]]:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGUSR1)
    done = trace_dir / f"done-{n}"
    deadline = time.monotonic() + 300
    while not done.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no snapshot from the server: {server.log()}")
        time.sleep(0.2)
    snap = tracemalloc.Snapshot.load(str(trace_dir / f"snap-{n}.pickle"))
    types: Counter[str] = Counter(json.loads((trace_dir / f"types-{n}.json").read_text()))
    return snap, types


def _connect(pool: WorkerPool, server: ServerProcess, rooms: list[str], per_room: int) -> None:
    shares = [rooms[i :: len(pool)] for i in range(len(pool))]
    wait = "connected" if server.spec.relay else "synced"
    args = [
        {"rooms": s, "perRoom": per_room, "wait": wait, "seed": True, "timeoutMs": 120_000}
        for s in shares
    ]
    pool.run("connect", args, timeout=300)


def _where(frames: Any, only_collab: bool) -> str:
    """The innermost frame of a traceback (tracemalloc lists the oldest first), or the
    innermost one in collab's package."""
    for frame in reversed(frames):
        if not only_collab or f"{os.sep}collab{os.sep}" in frame.filename:
            parts = Path(frame.filename).parts
            short = "/".join(parts[-3:])
            return f"{short}:{frame.lineno}"
    return "(outside collab)"


def trace(args: argparse.Namespace) -> None:
    cores = Cores.split(pin=True)
    base = spec_for("collab", args.tree)
    with tempfile.TemporaryDirectory(prefix="collab-memtrace-") as scratch:
        trace_dir = Path(scratch) / "trace"
        trace_dir.mkdir()

        def command(port: int, data: Path, deflate: bool) -> list[str]:
            argv = base.command(port, data, deflate)
            return [PYTHON, str(BENCH / "servers" / "collab_traced.py"), *argv[3:]]

        env = {**(base.env or {}), "COLLAB_TRACE_DIR": str(trace_dir)}
        spec = dataclasses.replace(base, command=command, env=env)
        server = ServerProcess(spec, Path(scratch) / "data", args.deflate == "on", cores)
        server.start(timeout=60)
        pool = WorkerPool(2, server, cores)
        try:
            _connect(pool, server, [f"warm-{i}/doc" for i in range(WARMUP_ROOMS)], args.per_room)
            time.sleep(2)
            before, types_before = _snapshot(server, trace_dir, 1)
            _connect(pool, server, [f"m-{i}/doc" for i in range(args.rooms)], args.per_room)
            time.sleep(2)
            after, types_after = _snapshot(server, trace_dir, 2)
            rss_mb = server.rss_bytes() / 2**20
        finally:
            pool.close()
            server.stop(graceful=False)
    report(args, before, after, types_before, types_after, rss_mb)


def report(
    args: argparse.Namespace,
    before: Any,
    after: Any,
    types_before: Counter[str],
    types_after: Counter[str],
    rss_mb: float,
) -> None:
    clients = args.rooms * args.per_room
    diffs = after.compare_to(before, "traceback")
    total = sum(d.size_diff for d in diffs)
    print(
        f"{args.rooms} rooms x {args.per_room} clients, deflate {args.deflate}: "
        f"{total / args.rooms / 1024:.2f} KB Python heap per room, "
        f"{total / clients / 1024:.2f} KB per client (server RSS {rss_mb:.0f} MB, traced)"
    )
    for only_collab, title in ((True, "innermost collab frame"), (False, "innermost frame")):
        by: Counter[str] = Counter()
        for d in diffs:
            by[_where(d.traceback, only_collab)] += d.size_diff
        print(f"\nbytes per room by {title}:")
        for where, size in by.most_common(args.top):
            print(f"  {size / args.rooms:9.0f}  {where}")
    grown = Counter({k: types_after[k] - types_before.get(k, 0) for k in types_after})
    print("\nlive objects per room that grew, by type:")
    for name, count in grown.most_common(args.top):
        if count > 0:
            print(f"  {count / args.rooms:7.2f}  {name}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "rss":
        rss(args)
    else:
        trace(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
