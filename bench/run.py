"""Benchmark runner: collab side by side with its anchors (bench/README.md says what and how).

    /work/main/.venv/bin/python bench/run.py [--quick] [--servers a,b] [--workloads a,b]
                                             [--deflate both|on|off] [--reps N] [--baseline REF]
                                             [--chat-paths api,ws]

Runs every repetition x workload x deflate mode x server in that (rep-major, interleaved)
order, each on a fresh server process; writes raw JSON to bench/results/raw/, a summary to
bench/results/<date>.json, the scaling plots to bench/results/plots/ and the tables into
bench/README.md between the result markers (a --quick run: all of it under the raw directory).
With --baseline REF, collab as of REF (a throwaway git worktree) runs as one more server beside
collab, and a comparison table of the two goes to the results and the terminal (not README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baseline
import chat
import compare
import plots
import report
import scaling
import targets
import throughput
import workloads
from procs import BENCH, NODE, OPTIONAL, ROOT, SERVERS, Cores, ServerProcess, ServerSpec, collab_at


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
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also run collab as of this git ref (a throwaway worktree), interleaved, and compare",
    )
    parser.add_argument(
        "--readme", action="store_true", help="rewrite bench/README.md even with --baseline"
    )
    parser.add_argument(
        "--chat-paths",
        default=None,
        help="how collab posts in the chat workload: api (HTTP), ws (type 101); default both",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="SUMMARY",
        help="measure nothing: write the tables, plots and README of one run from the summaries"
        " (bench/results/<date>.json) of its parts, each run with its own --workloads",
    )
    args = parser.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    args.workloads = [w for w in args.workloads.split(",") if w]
    for name in args.servers:
        if name not in SERVERS and name not in OPTIONAL:
            known = ", ".join([*SERVERS, *OPTIONAL])
            parser.error(f"unknown server {name!r}; known: {known}")
    for name in args.workloads:
        if name not in workloads.WORKLOADS:
            parser.error(f"unknown workload {name!r}; known: {', '.join(workloads.WORKLOADS)}")
    if args.baseline and "collab" not in args.servers:
        args.servers.insert(0, "collab")
    args.deflate = args.deflate or ("off" if args.quick else "both")
    args.reps = args.reps or (1 if args.quick else 3)
    args.plan = workloads.QUICK if args.quick else workloads.FULL
    if args.chat_paths is not None:
        chosen = tuple(p for p in args.chat_paths.split(",") if p)
        if not chosen or not set(chosen) <= {"api", "ws"}:
            parser.error("--chat-paths takes api, ws or api,ws")
        args.plan = dataclasses.replace(args.plan, chat_paths=chosen)
    return args


def deflate_modes(choice: str) -> list[bool]:
    return {"both": [False, True], "on": [True], "off": [False]}[choice]


def run_one(
    workload: str,
    spec: ServerSpec,
    deflate: bool,
    plan: workloads.Plan,
    cores: Cores,
    scratch: Path,
    raw_dir: Path,
) -> list[dict[str, Any]]:
    started: list[ServerProcess] = []

    def make_server(tag: str) -> ServerProcess:
        # Its own data directory per deflate mode too: the other mode's docs and rooms must
        # not be there (a chat room created again is a 409; a doc preloaded changes the run).
        mode = "on" if deflate else "off"
        server = ServerProcess(spec, scratch / f"{spec.name}-{tag}-{mode}", deflate, cores)
        started.append(server)
        server.start()
        return server

    try:
        if workload == "connections":
            return workloads.connections(make_server, plan, cores)
        if workload in ("cold", "docsize") and not spec.persistent:
            return []
        server = make_server(workload)
        fn = {
            "latency": workloads.latency,
            "cold": workloads.cold,
            "awareness": workloads.awareness,
            "chat": chat.chat,
            "throughput": throughput.throughput,
            "sockets": scaling.sockets,
            "docsize": scaling.docsize,
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
        # the code measured, whatever commit it is in: parts of one run (--merge) must agree
        "collab_tree": out(["git", "-C", str(ROOT), "rev-parse", "HEAD:collab"]),
        "dirty": bool(out(["git", "-C", str(ROOT), "status", "--porcelain", "--", "collab"])),
        "platform": platform.platform(),
    }


def specs_for(names: list[str], base: baseline.Baseline | None) -> dict[str, ServerSpec]:
    """The servers of the run in their order; the baseline build right after collab."""
    specs: dict[str, ServerSpec] = {}
    for name in names:
        specs[name] = SERVERS[name] if name in SERVERS else OPTIONAL[name]
        if base is not None and name == "collab":
            specs[base.name] = collab_at(base.tree, base.name)
    return specs


def rep_order(names: list[str], rep: int, base: baseline.Baseline | None) -> list[str]:
    """One repetition's server order: collab and its baseline swap places every other
    repetition, so neither is always the one that runs first."""
    order = list(names)
    if base is not None and rep % 2:
        i, j = order.index("collab"), order.index(base.name)
        order[i], order[j] = order[j], order[i]
    return order


def measure(
    args: argparse.Namespace,
    specs: dict[str, ServerSpec],
    base: baseline.Baseline | None,
    raw_dir: Path,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every repetition x workload x deflate mode x server; (measurements, failures)."""
    plan = args.plan
    cores = Cores.split(pin=not args.no_pin)
    raw: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    scratch = Path(tempfile.mkdtemp(prefix="collab-bench-"))
    try:
        for rep in range(args.reps):
            for workload in args.workloads:
                for deflate in deflate_modes(args.deflate):
                    for name in rep_order(list(specs), rep, base):
                        t0 = time.monotonic()
                        where = {
                            "rep": rep,
                            "workload": workload,
                            "server": name,
                            "deflate": deflate,
                        }
                        label = (
                            f"rep {rep + 1} {workload:<11} {name:<16} "
                            f"deflate={'on' if deflate else 'off'}"
                        )
                        try:
                            rows = run_one(
                                workload,
                                specs[name],
                                deflate,
                                plan,
                                cores,
                                scratch / f"r{rep}",
                                raw_dir,
                            )
                        except workloads.PartialResult as exc:  # keep what it measured
                            failures.append(where | {"error": repr(exc.cause)})
                            print(f"{label}  FAILED part way: {exc.cause!r}", flush=True)
                            (raw_dir / f"error-{rep}-{workload}-{name}-{deflate}.txt").write_text(
                                "".join(traceback.format_exception(exc.cause))
                            )
                            rows = exc.rows
                        except Exception as exc:  # one broken server must not end the run
                            failures.append(where | {"error": repr(exc)})
                            print(f"{label}  FAILED: {exc!r}", flush=True)
                            (raw_dir / f"error-{rep}-{workload}-{name}-{deflate}.txt").write_text(
                                traceback.format_exc()
                            )
                            continue
                        for row in rows:
                            row |= where
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
        failures.append({"error": "interrupted", "interrupted": True})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return raw, failures


# The workloads' own tables, in every deflate mode's section before the targets.
SECTIONS = [chat.render, throughput.render, scaling.render_sockets, scaling.render_docsize]


def write_plots(summary: dict[str, Any], out: Path) -> list[Path]:
    """The scaling plots (bench/plots.py); a plotting failure costs the plots, not the run."""
    try:
        figures = plots.write_all(summary, out)
    except Exception:
        traceback.print_exc()
        print("plots: FAILED (the tables and the summary are written all the same)")
        return []
    for path in figures:
        print(f"plot: {path}")
    return figures


def write_outputs(
    args: argparse.Namespace,
    summary: dict[str, Any],
    raw_dir: Path,
    base: baseline.Baseline | None,
) -> None:
    """The summary JSON, the plots, the tables, the comparison; README.md (and the plots it
    links, bench/results/plots/) only for a run meant for it."""
    name = f"{summary['date']}-quick" if args.quick else summary["date"]
    out_dir = raw_dir if args.quick else BENCH / "results"  # smoke runs are not results
    (out_dir / f"{name}.json").write_text(json.dumps(summary, indent=1, default=str))
    readme = not (
        args.quick
        or args.no_readme
        or interrupted(summary)  # fewer repetitions than asked: not a result
        or (base is not None and not args.readme)
    )
    figures = write_plots(summary, (BENCH / "results" if readme else raw_dir) / "plots")
    comparison = ""
    if base is not None:
        comparison = compare.render(summary["comparison"], "collab", base.name)
        (out_dir / f"{name}-comparison.md").write_text(comparison)

    def tables(where: Path) -> str:
        """Every table, the plots linked relative to ``where`` (the markdown's directory)."""
        links = plots.markdown(figures, where)
        return (
            report.render(summary, sections=SECTIONS, closing=[targets.render], preface=links)
            + comparison
        )

    (raw_dir / "tables.md").write_text(tables(raw_dir))
    if readme:
        report.replace_in_readme(BENCH / "README.md", tables(BENCH))
        print("tables in bench/README.md")
    else:
        print(f"tables: {raw_dir / 'tables.md'} (README untouched)")
    print(f"summary: {out_dir / f'{name}.json'}")
    for deflate in (False, True):  # the chat ratios and the targets on the terminal too
        ix = report.Index(summary)
        lines = chat.render(ix, deflate, summary) + targets.render(ix, deflate, summary)
        if lines:
            print(f"\npermessage-deflate {'accepted' if deflate else 'off'}:")
            print("\n".join(lines).strip("\n"))
    if comparison:
        print(comparison)
        print(f"comparison: {out_dir / f'{name}-comparison.md'}")


def run(
    args: argparse.Namespace,
    specs: dict[str, ServerSpec],
    base: baseline.Baseline | None,
    code: dict[str, str],
) -> int:
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    raw_dir = BENCH / "results" / "raw" / stamp
    raw_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cores = Cores.split(pin=not args.no_pin)
    print(
        f"bench: {len(specs)} servers x {len(args.workloads)} workloads x "
        f"{len(deflate_modes(args.deflate))} deflate modes x {args.reps} reps; {cores.describe()}"
    )
    for name, where in code.items():
        print(f"  {name} imports collab from {where}")
    host = machine(cores)  # before measuring: the commit and tree state the run started from
    raw, failures = measure(args, specs, base, raw_dir)
    elapsed = time.monotonic() - started
    summary = {
        "date": stamp,
        "quick": args.quick,
        "elapsed_s": round(elapsed, 1),
        "reps": args.reps,
        "servers": list(specs),
        "workloads": args.workloads,
        "deflate": args.deflate,
        "plan": args.plan.__dict__,
        "machine": host,
        "code": code,
        "failures": failures,
        "results": summarize(raw),
    }
    if base is not None:
        summary["baseline"] = {
            "name": base.name,
            "ref": base.ref,
            "commit": base.commit,
            "tree": str(base.tree),
        }
        summary["comparison"] = compare.rows(summary, "collab", base.name)
    write_outputs(args, summary, raw_dir, base)
    print(f"done in {elapsed / 60:.1f} min; {len(failures)} failures")
    return 1 if failures else 0


def interrupted(summary: dict[str, Any]) -> bool:
    return any(f.get("interrupted") for f in summary["failures"])


class MergeError(Exception):
    """Summaries that are not parts of one run."""


MUST_AGREE = ("quick", "reps", "deflate", "plan")


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's summary from parts run apart (``--workloads`` splits a full run that does not
    fit in one sitting): the same code of collab (``machine.collab_tree``), repetitions,
    deflate modes and plan; each workload of the run measured in exactly one part; none of
    them interrupted. The parts' servers and workloads are the run's, in order."""
    if len(parts) < 2:
        raise MergeError("merge takes two or more summaries")
    first = parts[0]
    for part in parts:
        if interrupted(part):
            raise MergeError(f"{part['date']} was interrupted: measure that part again")
        for key in MUST_AGREE:
            if part.get(key) != first.get(key):
                raise MergeError(f"{part['date']} differs from {first['date']} in {key!r}")
        tree = part["machine"].get("collab_tree")
        if not tree or tree != first["machine"].get("collab_tree"):
            raise MergeError(f"{part['date']} measured other code of collab than {first['date']}")
    seen: dict[str, str] = {}
    for part in parts:
        for workload in part["workloads"]:
            if workload in seen:
                raise MergeError(f"{workload!r} is in both {seen[workload]} and {part['date']}")
            seen[workload] = part["date"]
    servers = list(dict.fromkeys(s for part in parts for s in part["servers"]))
    return {
        **first,
        "date": dt.datetime.now().strftime("%Y-%m-%dT%H%M%S"),
        "elapsed_s": round(sum(part["elapsed_s"] for part in parts), 1),
        "servers": servers,
        "workloads": [w for part in parts for w in part["workloads"]],
        "parts": [part["date"] for part in parts],
        "failures": [f for part in parts for f in part["failures"]],
        "results": [r for part in parts for r in part["results"]],
    }


def merge_main(args: argparse.Namespace) -> int:
    parts = [json.loads(Path(path).read_text()) for path in args.merge]
    try:
        summary = merge(parts)
    except MergeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    raw_dir = BENCH / "results" / "raw" / summary["date"]
    raw_dir.mkdir(parents=True, exist_ok=True)
    write_outputs(args, summary, raw_dir, None)
    print(f"merged {len(parts)} parts: {', '.join(summary['parts'])}")
    return 1 if summary["failures"] else 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge_main(args)
    if not (BENCH / "node_modules").is_dir():
        print("bench/node_modules is missing: run `npm ci --prefix bench` first", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # a kill unwinds like Ctrl-C: nothing left behind
    try:
        with contextlib.ExitStack() as stack:
            base = stack.enter_context(baseline.checkout(args.baseline)) if args.baseline else None
            specs = specs_for(args.servers, base)
            trees = {"collab": ROOT} if "collab" in specs else {}
            if base is not None:
                trees[base.name] = base.tree
            return run(args, specs, base, baseline.check_code(specs, trees))
    except baseline.BaselineError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
