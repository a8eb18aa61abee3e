"""Benchmark runner: collab side by side with its anchors (bench/README.md says what and how).

    /work/main/.venv/bin/python bench/run.py [--quick] [--servers a,b] [--workloads a,b]
                                             [--deflate both|on|off] [--reps N]

Runs every repetition x workload x deflate mode x server in that (rep-major, interleaved)
order, each on a fresh server process; writes raw JSON to bench/results/raw/, a summary to
bench/results/<date>.json, and the tables into bench/README.md between the result markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
import workloads
from procs import BENCH, NODE, ROOT, SERVERS, Cores, ServerProcess


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 rep, short, few points")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    parser.add_argument(
        "--workloads", default=",".join(workloads.WORKLOADS), help="comma-separated"
    )
    parser.add_argument(
        "--deflate",
        choices=("both", "on", "off"),
        default=None,
        help="permessage-deflate accepted by the servers (default: both; off with --quick)",
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; 1 quick)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server / load cores")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite bench/README.md")
    args = parser.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    args.workloads = [w for w in args.workloads.split(",") if w]
    for name in args.servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}; known: {', '.join(SERVERS)}")
    for name in args.workloads:
        if name not in workloads.WORKLOADS:
            parser.error(f"unknown workload {name!r}; known: {', '.join(workloads.WORKLOADS)}")
    args.deflate = args.deflate or ("off" if args.quick else "both")
    args.reps = args.reps or (1 if args.quick else 3)
    return args


def deflate_modes(choice: str) -> list[bool]:
    return {"both": [False, True], "on": [True], "off": [False]}[choice]


def run_one(
    workload: str,
    name: str,
    deflate: bool,
    plan: workloads.Plan,
    cores: Cores,
    scratch: Path,
    raw_dir: Path,
) -> list[dict[str, Any]]:
    spec = SERVERS[name]
    started: list[ServerProcess] = []

    def make_server(tag: str) -> ServerProcess:
        server = ServerProcess(spec, scratch / f"{name}-{tag}", deflate, cores)
        started.append(server)
        server.start()
        return server

    try:
        if workload == "connections":
            return workloads.connections(make_server, plan, cores)
        if workload == "cold" and not spec.persistent:
            return []
        server = make_server(workload)
        fn = {
            "latency": workloads.latency,
            "cold": workloads.cold,
            "awareness": workloads.awareness,
        }[workload]
        return fn(server, plan, cores)
    except Exception:
        for server in started:  # keep the server's own account of the failure
            log = raw_dir / f"error-{server.data.name}-{'on' if deflate else 'off'}.log"
            log.write_text(server.log(tail=200_000))
        raise
    finally:
        for server in started:
            server.stop(graceful=False)


def summarize(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median and spread (min-max) over repetitions of every (workload, point, metric, ...)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in raw:
        key = (row["workload"], row["point"], row["metric"], row["server"], row["deflate"])
        groups.setdefault(key, []).append(row)
    summary = []
    for (workload, point, metric, server, deflate), rows in groups.items():
        values = [r["value"] for r in rows if r["value"] is not None]
        entry: dict[str, Any] = {
            "workload": workload,
            "point": point,
            "metric": metric,
            "server": server,
            "deflate": deflate,
            "reps": len(rows),
            "values": [r["value"] for r in rows],
            "saturated": any(r["saturated"] for r in rows),
        }
        if values:
            entry |= {"median": statistics.median(values), "min": min(values), "max": max(values)}
        else:
            entry |= {"median": None, "min": None, "max": None}
        if "ideal" in rows[0]:
            entry["ideal"] = rows[0]["ideal"]
        summary.append(entry)
    return summary


def machine(cores: Cores) -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    return {
        "cpus": len(cores.server or []) + len(cores.load or []) or None,
        "pinning": cores.describe(),
        "python": platform.python_version(),
        "node": out([NODE, "--version"]),
        "commit": out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (BENCH / "node_modules").is_dir():
        print("bench/node_modules is missing: run `npm ci --prefix bench` first", file=sys.stderr)
        return 2
    plan = workloads.QUICK if args.quick else workloads.FULL
    cores = Cores.split(pin=not args.no_pin)
    modes = deflate_modes(args.deflate)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    raw_dir = BENCH / "results" / "raw" / stamp
    raw_dir.mkdir(parents=True, exist_ok=True)
    raw: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    started = time.monotonic()
    print(
        f"bench: {len(args.servers)} servers x {len(args.workloads)} workloads x "
        f"{len(modes)} deflate modes x {args.reps} reps; {cores.describe()}"
    )
    scratch = Path(tempfile.mkdtemp(prefix="collab-bench-"))
    try:
        for rep in range(args.reps):
            for workload in args.workloads:
                for deflate in modes:
                    for name in args.servers:
                        t0 = time.monotonic()
                        mode = "on" if deflate else "off"
                        label = f"rep {rep + 1} {workload:<11} {name:<16} deflate={mode}"
                        try:
                            rows = run_one(
                                workload, name, deflate, plan, cores, scratch / f"r{rep}", raw_dir
                            )
                        except Exception as exc:  # one broken server must not end the run
                            failures.append(
                                {
                                    "rep": rep,
                                    "workload": workload,
                                    "server": name,
                                    "deflate": deflate,
                                    "error": repr(exc),
                                }
                            )
                            print(f"{label}  FAILED: {exc!r}", flush=True)
                            (raw_dir / f"error-{rep}-{workload}-{name}-{deflate}.txt").write_text(
                                traceback.format_exc()
                            )
                            continue
                        for row in rows:
                            row |= {
                                "rep": rep,
                                "workload": workload,
                                "server": name,
                                "deflate": deflate,
                            }
                        raw += rows
                        (raw_dir / f"{rep}-{workload}-{name}-{deflate}.json").write_text(
                            json.dumps(rows, default=str)
                        )
                        print(
                            f"{label}  {time.monotonic() - t0:6.1f} s  {report.one_line(rows)}",
                            flush=True,
                        )
    except KeyboardInterrupt:
        print("interrupted: summarizing what was measured", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - started
    summary = {
        "date": stamp,
        "quick": args.quick,
        "elapsed_s": round(elapsed, 1),
        "reps": args.reps,
        "servers": args.servers,
        "workloads": args.workloads,
        "deflate": args.deflate,
        "plan": plan.__dict__,
        "machine": machine(cores),
        "failures": failures,
        "results": summarize(raw),
    }
    name = f"{stamp}-quick.json" if args.quick else f"{stamp}.json"
    out_dir = raw_dir if args.quick else BENCH / "results"  # smoke runs are not results
    (out_dir / name).write_text(json.dumps(summary, indent=1, default=str))
    tables = report.render(summary)
    if args.quick or args.no_readme:
        (raw_dir / "tables.md").write_text(tables)
        print(f"tables: {raw_dir / 'tables.md'} (README untouched)")
    else:
        report.replace_in_readme(BENCH / "README.md", tables)
        print(f"summary: {out_dir / name}; tables in bench/README.md")
    print(f"done in {elapsed / 60:.1f} min; {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
