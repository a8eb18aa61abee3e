"""A py-spy flame graph of a collab server under the latency workload's load (issue 11).

Starts collab exactly as bench/run.py does (``procs.SERVERS["collab"]``, or the code of
``--tree``: another checkout), connects R rooms x C clients with the bench's own load generator
(load/worker.mjs: the real y-websocket client), starts the latency workload (one writer per
room at 10 edits/s, every other client timing each delivery), and records the server process
with ``py-spy record`` for the measured window. Writes the SVG and prints what the window
delivered, its p99 and the server's CPU per 1,000 deliveries: a sanity check of the load,
not a result (py-spy samples the server while it runs, and the machine may be shared).

    python bench/profile.py --out bench/profiles/20x50-before.svg
                            [--rooms 20 --clients 50 --seconds 30] [--tree PATH] [--native] [--gil]

Needs py-spy (collab's ``bench`` extra) and node with ``npm ci --prefix bench``. The load is
bounded: at most 60 s measured, on loopback only. Read the graph for proportions, not seconds.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import SERVERS, Cores, ServerProcess, WorkerPool, collab_at
from workloads import percentile

MAX_SECONDS = 60
# py-spy from the same environment (its wheel installs the binary beside the interpreter)
_BESIDE = Path(sys.executable).parent / "py-spy"
PY_SPY = str(_BESIDE) if _BESIDE.exists() else "py-spy"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="the SVG to write")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50, help="clients per room")
    parser.add_argument("--seconds", type=float, default=30.0, help=f"at most {MAX_SECONDS}")
    parser.add_argument("--tree", type=Path, help="profile the collab checked out here")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames)")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument(
        "--format",
        default="flamegraph",
        choices=["flamegraph", "raw", "speedscope"],
        help="py-spy's output format (raw: collapsed stacks, for scripts)",
    )
    parser.add_argument(
        "--gil", action="store_true", help="py-spy --gil: only threads holding the GIL (CPU)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server / load cores")
    args = parser.parse_args()
    if not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS}]")
    spec = collab_at(args.tree.resolve(), "collab") if args.tree else SERVERS["collab"]
    cores = Cores.split(pin=not args.no_pin)
    rooms = [f"prof-{i}/doc" for i in range(args.rooms)]
    shares = [rooms[i::2] for i in range(min(2, len(rooms)))]
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(spec, Path(tmp) / "collab", False, cores)
        server.start()
        try:
            pool = WorkerPool(len(shares), server, cores)
            try:
                pool.run(
                    "connect",
                    [{"rooms": s, "perRoom": args.clients, "wait": "synced"} for s in shares],
                )
                time.sleep(0.3)
                window_ms = int(args.seconds * 1000)
                load = {"rate": 10, "warmupMs": 1000, "measureMs": window_ms, "drainMs": 3000}
                ids = [w.send("latency", **load) for w in pool.workers]
                time.sleep(1.0)
                assert server.proc is not None
                spy = [
                    PY_SPY,
                    "record",
                    "--pid",
                    str(server.proc.pid),
                    "--duration",
                    str(math.ceil(args.seconds)),
                    "--rate",
                    str(args.rate),
                    "--format",
                    args.format,
                    "--output",
                    str(args.out),
                    "--nonblocking",
                ]
                if args.native:
                    spy.append("--native")
                if args.gil:  # idle threads (the loop in epoll, a commit's fsync) left out
                    spy.append("--gil")
                cpu0 = server.cpu_seconds()
                subprocess.run(spy, check=True, capture_output=True)
                cpu1 = server.cpu_seconds()
                results = [w.result(i, 20.0) for w, i in zip(pool.workers, ids, strict=True)]
                pool.run("close", [{}] * len(pool))
            finally:
                pool.close()
        except Exception:
            print(server.log()[-3000:], file=sys.stderr)
            raise
        finally:
            server.stop()
    expected = sum(r["expected"] for r in results)
    received = sum(r["received"] for r in results)
    values = sorted(x for r in results for x in r["latencies_ms"])
    values += [math.inf] * (expected - received)
    print(
        f"{args.rooms}x{args.clients}: {received / args.seconds:,.0f} deliveries/s, "
        f"lost {expected - received}, p99 {percentile(values, 0.99):.1f} ms (under py-spy), "
        f"server {(cpu1 - cpu0) / received * 1000:.3f} CPU-s per 1k deliveries; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
