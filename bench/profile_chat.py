"""A py-spy profile of a collab server under the chat workload (issue 9, item 8).

The chat twin of bench/profile.py: starts collab as bench/run.py does (or the code of
``--tree``), makes R rooms, connects C readers per room to each room's ``chat`` doc with the
bench's own load generator, posts through the API (``--path api``) or type 101 requests
(``--path ws``) at C x rate posts/s per room (load/chat.mjs), and records the server process
with ``py-spy record`` for the measured window. Prints what the window delivered, its p99 and
the server's CPU per post: a sanity check of the load, not a result (py-spy samples the
server while it runs, and the machine may be shared).

    python bench/profile_chat.py --out bench/profiles/chat-1x50-api.txt --format raw
                                 [--path api|ws] [--rooms 1 --clients 50 --rate 1]
                                 [--seconds 20] [--tree PATH]

Needs py-spy (collab's ``bench`` extra) and node with ``npm ci --prefix bench``. The load is
bounded: at most 60 s measured, on loopback only.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat import create_rooms
from procs import SERVERS, Cores, ServerProcess, WorkerPool, collab_at
from workloads import percentile

MAX_SECONDS = 60
# py-spy from the same environment (its wheel installs the binary beside the interpreter)
_BESIDE = Path(sys.executable).parent / "py-spy"
PY_SPY = str(_BESIDE) if _BESIDE.exists() else "py-spy"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="the profile to write")
    parser.add_argument("--path", default="api", choices=["api", "ws"], help="how to post")
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--clients", type=int, default=50, help="readers per room")
    parser.add_argument("--rate", type=float, default=1.0, help="posts/s per reader")
    parser.add_argument("--seconds", type=float, default=20.0, help=f"at most {MAX_SECONDS}")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--tree", type=Path, help="profile the collab checked out here")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames)")
    parser.add_argument(
        "--gil", action="store_true", help="py-spy --gil: only the thread holding the GIL"
    )
    parser.add_argument("--rate-hz", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--format", default="raw", choices=["flamegraph", "raw", "speedscope"])
    parser.add_argument("--no-pin", action="store_true", help="do not pin server / load cores")
    args = parser.parse_args()
    if not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS}]")
    return args


def _spy(args: argparse.Namespace, pid: int) -> list[str]:
    spy = [PY_SPY, "record", "--pid", str(pid), "--duration", str(math.ceil(args.seconds))]
    spy += ["--rate", str(args.rate_hz), "--format", args.format, "--output", str(args.out)]
    spy.append("--nonblocking")
    if args.native:
        spy.append("--native")
    if args.gil:
        spy.append("--gil")
    return spy


def _load(args: argparse.Namespace, server: ServerProcess, cores: Cores) -> dict[str, Any]:
    rooms = [f"profchat-{args.path}-{i}" for i in range(args.rooms)]
    create_rooms(server, rooms)
    docs = [f"{room}/chat" for room in rooms]
    shares = [docs[i :: args.workers] for i in range(min(args.workers, len(docs)))]
    pool = WorkerPool(len(shares), server, cores)
    try:
        params = {"collab": "1"} if args.path == "ws" else {}
        connect = [
            {"rooms": s, "perRoom": args.clients, "wait": "synced", "params": params}
            for s in shares
        ]
        pool.run("connect", connect, timeout=180)
        time.sleep(0.3)
        load = {
            "mode": args.path,
            "rate": args.rate,
            "warmupMs": 1000,
            "measureMs": int(args.seconds * 1000) + 1000,
            "drainMs": 3000,
            "api": server.api_base,
            "token": (server.spec.params or {}).get("token"),
        }
        ids = [w.send("chat", **load) for w in pool.workers]
        time.sleep(1.5)
        assert server.proc is not None
        cpu0 = server.cpu_seconds()
        subprocess.run(_spy(args, server.proc.pid), check=True, capture_output=True)
        cpu1 = server.cpu_seconds()
        results = [w.result(i, 30.0) for w, i in zip(pool.workers, ids, strict=True)]
        pool.run("close", [{}] * len(pool))
    finally:
        pool.close()
    return {"results": results, "cpu": cpu1 - cpu0}


def main() -> int:
    args = _arguments()
    spec = collab_at(args.tree.resolve(), "collab") if args.tree else SERVERS["collab"]
    cores = Cores.split(pin=not args.no_pin)
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(spec, Path(tmp) / "collab", False, cores)
        server.start()
        try:
            got = _load(args, server, cores)
        except Exception:
            print(server.log()[-3000:], file=sys.stderr)
            raise
        finally:
            server.stop()
    results = got["results"]
    posted = sum(r["answered"] for r in results)
    window = args.seconds + 1.0  # the measured window the load reports over
    values = sorted(x for r in results for x in r["latencies_ms"])
    values += [math.inf] * sum(r["expected"] - r["received"] for r in results)
    load_cores = [round(r["cpu"]["cores"], 2) for r in results]
    print(
        f"{args.rooms}x{args.clients} {args.path}: {posted / window:,.0f} posts/s, "
        f"errors {sum(r['errors'] for r in results)}, "
        f"post->seen p50 {percentile(values, 0.5):.1f} p99 {percentile(values, 0.99):.1f} ms "
        f"(under py-spy), server {got['cpu'] / (posted / window * args.seconds) * 1000:.2f} "
        f"CPU-ms per post; load cores {load_cores}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
