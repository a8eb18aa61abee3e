"""Several nodes (issue 15, Done means 10): CPU-seconds per delivered update, 1 node and 3.

    /work/main/.venv/bin/python bench/nodes.py            # a measurement: run it alone
    /work/main/.venv/bin/python bench/nodes.py --quick    # a smoke run of a few seconds

The same load three times, each on a fresh database of the shared PostgreSQL (``--pg``) and, for
several nodes, a key prefix of its own on the shared Redis (``--redis``): ``--rooms`` rooms of
``--clients`` y-websocket clients (bench/load/worker.mjs, the throughput workload's writers:
every client writes and reads), each room taking ``--rate`` edits/s shared by its clients.

- ``one``: one ``collab serve`` on PostgreSQL without a fan-out, the single-node deployment;
- ``third``: the same single node carrying only the rooms one node of three carries with room
  affinity (every third room, ``rooms / 3``), from one load-generator process: the fair
  baseline for ``affinity``, free of one node's sublinear cost curve (a lightly loaded node
  costs more per edit, bench/profiles/NODES.md finding 2);
- ``lone``: three nodes on PostgreSQL without a fan-out, the rooms dealt as ``affinity`` deals
  them (no room is on two nodes, so nothing needs carrying between them): the same processes
  sharing the same core as ``affinity``, so ``affinity / lone`` is what the fan-out itself adds
  (its Redis round trips and wake-ups), apart from what three processes on one core cost;
- ``affinity``: three nodes on PostgreSQL and Redis, each room's clients all on one node and the
  rooms dealt over the nodes, as nginx's ``hash $room consistent`` routes them;
- ``split``: the same three nodes, each room's clients dealt over all three, so every update is
  committed by one node and applied and relayed by the two others from Redis (a remote update);
- ``scaled``: ``affinity`` with three times the rooms, so each node carries what ``one``
  carries: nodes added for load, as one scales out. ``scaled / one`` is then what several
  nodes cost per delivered update at the same load per node, free of one node's cost curve.

Three load-generator processes in every configuration (one per node, all on the one node for
``one``) but ``third`` (one). Over the measured window: every node's CPU-seconds (process and
children), the deliveries (an edit received by another client of its room; the same count in
every configuration but ``third``, a third of it), and from them CPU-seconds per delivered
update for all nodes together, the ratio ``affinity / one`` (target <= 1.2), the ratio
``affinity / (3 x third)`` (per delivered update: ``affinity / third``, what running several
nodes adds to the work of three single nodes each carrying a third) and the extra CPU per
remote update, ``(split - affinity) / remote updates``. Before the load, an idle window
(``--idle-ms``, clients connected and silent) measures what the nodes spend on their own
upkeep (timers, heartbeats, head polls): a fixed cost per node, reported apart and taken out in
the ``busy`` figures. The nodes are pinned to the first core, the load generators to the others
(``--no-pin``: not); PostgreSQL and Redis are the machine's, unpinned: their CPU over the
window (every ``postgres`` and ``redis-server`` process) is reported, not counted per node.

Results: bench/results/nodes-<date>.json (``--quick``: bench/results/raw/), a table on stdout.
On 2 shared cores this measures cost, not scaling: the N-node throughput run is for a bigger
machine (SCALE-OUT.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import BENCH, PYTHON, ROOT, SERVERS, Cores, ServerProcess, ServerSpec, Worker
from throughput import expected_deliveries
from workloads import percentile

sys.path.insert(0, str(ROOT))  # collab of this checkout (the migrations), as the nodes run it

CONFIGS = ("one", "third", "lone", "affinity", "split", "scaled")
NODES = 3  # nodes of the affinity and split configurations, and load-generator processes
TARGET = 1.2  # affinity / one, per delivered update (the issue's)
SINGLE = ("one", "third")  # the configurations of one node without a fan-out
UNSHARED = (*SINGLE, "lone")  # ... and all those without a fan-out


@dataclass(frozen=True)
class Share:
    """What one load-generator process holds: its node, and per room the room-wide ids."""

    node: int
    rooms: dict[str, list[int]]


def deal(config: str, rooms: list[str], clients: int) -> list[Share]:
    """Each load-generator process's clients (module docstring): ``one`` and ``affinity`` give
    each room wholly to process ``i % NODES``, as ``lone`` does; ``split`` gives every process a
    part of every room. Process k talks to node k (to node 0 for ``one``). ``third`` is process
    0 of ``affinity`` alone, on a node of its own."""
    if config == "third":
        return [Share(0, {r: list(range(clients)) for r in rooms[::NODES]})]
    shares: list[Share] = []
    for k in range(NODES):
        node = 0 if config == "one" else k
        if config == "split":
            held = {r: [i for i in range(clients) if i % NODES == k] for r in rooms}
        else:
            held = {r: list(range(clients)) for i, r in enumerate(rooms) if i % NODES == k}
        shares.append(Share(node, {r: ids for r, ids in held.items() if ids}))
    return shares


def remote_updates(config: str, shares: list[Share], counted: dict[str, int]) -> int:
    """Updates a node applied from another node: each counted edit of a room, once for every
    node hosting that room other than the one that committed it."""
    if config in UNSHARED:
        return 0
    total = 0
    for room, edits in counted.items():
        hosts = {s.node for s in shares if room in s.rooms}
        total += edits * (len(hosts) - 1)
    return total


def figures(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The answer: per delivered update, affinity / one, and the extra CPU per remote update."""
    per = {c: r["node_cpu_s"] / r["deliveries"] for c, r in runs.items() if r["deliveries"]}
    out: dict[str, Any] = {f"{c}_cpu_us_per_delivery": round(v * 1e6, 2) for c, v in per.items()}
    for c, r in runs.items():  # without the nodes' idle upkeep (timers, heartbeats, polls)
        if r["deliveries"] and "idle_cpu_s" in r:
            net = (r["node_cpu_s"] - r["idle_cpu_s"]) / r["deliveries"]
            out[f"{c}_busy_cpu_us_per_delivery"] = round(net * 1e6, 2)
    if "one" in per and "affinity" in per:
        ratio = per["affinity"] / per["one"]
        out["affinity_over_one"] = round(ratio, 3)
        out["target_met"] = ratio <= TARGET
        busy = [out.get(f"{c}_busy_cpu_us_per_delivery") for c in ("affinity", "one")]
        if busy[0] is not None and busy[1]:
            out["affinity_over_one_busy"] = round(busy[0] / busy[1], 3)
    if "one" in per and "scaled" in per:
        # Three nodes each carrying what the one node carries (three times the deliveries).
        out["scaled_over_one"] = round(per["scaled"] / per["one"], 3)
        out["scaled_target_met"] = per["scaled"] / per["one"] <= TARGET
        busy = [out.get(f"{c}_busy_cpu_us_per_delivery") for c in ("scaled", "one")]
        if busy[0] is not None and busy[1]:
            out["scaled_over_one_busy"] = round(busy[0] / busy[1], 3)
    if "third" in per and "affinity" in per:
        # Three nodes each carrying a third, against three lone nodes each carrying a third:
        # the same deliveries thrice, so per delivered update it is affinity / third.
        out["affinity_over_three_thirds"] = round(per["affinity"] / per["third"], 3)
        busy = [out.get(f"{c}_busy_cpu_us_per_delivery") for c in ("affinity", "third")]
        if busy[0] is not None and busy[1]:
            out["affinity_over_three_thirds_busy"] = round(busy[0] / busy[1], 3)
    if "lone" in per and "affinity" in per:
        # The same three processes on the same core, with and without the fan-out.
        out["affinity_over_lone"] = round(per["affinity"] / per["lone"], 3)
        busy = [out.get(f"{c}_busy_cpu_us_per_delivery") for c in ("affinity", "lone")]
        if busy[0] is not None and busy[1]:
            out["affinity_over_lone_busy"] = round(busy[0] / busy[1], 3)
    split = runs.get("split")
    if "affinity" in per and "split" in per and split and split["remote_updates"]:
        # Per delivery, so a window that delivered a little more or less is not charged for it.
        extra = (per["split"] - per["affinity"]) * split["deliveries"] / split["remote_updates"]
        out["extra_cpu_us_per_remote_update"] = round(extra * 1e6, 2)
        out["split_over_affinity"] = round(per["split"] / per["affinity"], 3)
    return out


# -- the processes ------------------------------------------------------------------------------


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new database on the shared PostgreSQL with collab's migrations, dropped afterwards."""
    import psycopg
    from psycopg import sql

    from collab.db.pgmigrate import migrate

    name = "collab_bench_" + secrets.token_hex(6)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            conn.execute(drop)


def delete_prefix(url: str, prefix: str) -> None:
    """Every key this run left on the shared Redis (SCAN + DEL, nobody else's)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def node_spec(store: str, fanout: str | None, prefix: str, key: str) -> ServerSpec:
    """collab as bench/procs.py starts it (lifted caps, dev token), on ``store`` and ``fanout``."""
    base = SERVERS["collab"]

    def command(port: int, data: Path, deflate: bool) -> list[str]:
        argv = [PYTHON, "-m", "collab", "serve", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--store", store, "--no-ws-per-message-deflate", "--log-level", "warning"]
        return argv + (["--fanout", fanout] if fanout else [])

    env = {**(base.env or {}), "COLLAB_SECRET_KEY": key, "COLLAB_FANOUT_PREFIX": prefix}
    return replace(base, name="collab-node", command=command, env=env)


def backend_cpu() -> float:
    """CPU-seconds so far of every PostgreSQL and Redis process of the machine."""
    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] in ("postgres", "redis-server") and proc.info["cpu_times"]:
            total += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return total


# -- one configuration --------------------------------------------------------------------------


FANOUT_COUNTERS = (
    "collab_fanout_published_total",
    "collab_fanout_received_total",
    "collab_fanout_publish_dropped_total",
    "collab_fanout_errors_total",
)


def measure(config: str, args: argparse.Namespace, cores: Cores, data: Path) -> dict[str, Any]:
    """One configuration on a fresh database (and Redis prefix): its row of the result."""
    count = args.rooms * NODES if config == "scaled" else args.rooms
    rooms = [f"nodes{i}/doc" for i in range(count)]
    shares = deal(config, rooms, args.clients)
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(args.pg))
        stack.callback(delete_prefix, args.redis, prefix)
        spec = node_spec(
            url, None if config in UNSHARED else args.redis, prefix, secrets.token_hex(32)
        )
        servers = [
            ServerProcess(spec, data / config / f"node{i}", False, cores)
            for i in range(1 if config in SINGLE else NODES)
        ]
        for server in servers:
            stack.callback(server.stop)
            server.start()
        workers = [
            Worker("y-websocket", servers[s.node].ws_base, cores, spec.params or {}) for s in shares
        ]
        for worker in workers:
            stack.callback(worker.close)
        return _window(config, args, shares, servers, workers)
    raise AssertionError("unreachable")


def _window(
    config: str,
    args: argparse.Namespace,
    shares: list[Share],
    servers: list[ServerProcess],
    workers: list[Worker],
) -> dict[str, Any]:
    for share, worker in zip(shares, workers, strict=True):
        for room, ids in share.rooms.items():
            worker.call("connect", rooms=[room], perRoom=len(ids), timeoutMs=30_000)
    time.sleep(0.5)  # every client's sync settled
    idle0 = [s.cpu_seconds() for s in servers]
    time.sleep(args.idle_ms / 1000)  # the nodes' own upkeep, clients connected and silent
    idle = [b - a for a, b in zip(idle0, [s.cpu_seconds() for s in servers], strict=True)]
    tp = {
        "rate": args.rate,
        "clients": args.clients,
        "warmupMs": args.warmup_ms,
        "measureMs": args.measure_ms,
    }
    sent = [
        w.send("tpmany", shares=[{"room": r, "ids": ids} for r, ids in s.rooms.items()], **tp)
        for s, w in zip(shares, workers, strict=True)
    ]
    time.sleep(args.warmup_ms / 1000)
    cpu0, back0 = [s.cpu_seconds() for s in servers], backend_cpu()
    time.sleep(args.measure_ms / 1000)
    cpu1, back1 = [s.cpu_seconds() for s in servers], backend_cpu()
    started = [
        w.result(i, 60 + args.measure_ms / 1000)["results"]
        for w, i in zip(workers, sent, strict=True)
    ]
    by_room: dict[str, list[list[int]]] = {}
    for results in started:
        for r in results:
            by_room.setdefault(r["room"], []).append(r["counted"])
    counted = {room: sum(map(sum, parts)) for room, parts in by_room.items()}
    expected = {room: iter(expected_deliveries(parts)) for room, parts in by_room.items()}
    drains = []
    for share, worker in zip(shares, workers, strict=True):
        wanted = [{"room": r, "expected": next(expected[r])} for r in share.rooms]
        drains += worker.call(
            "tpdrainmany", drains=wanted, drainMs=args.drain_ms, timeout=60 + args.drain_ms / 1000
        )["results"]
    want = sum(int(d["expected"]) for d in drains)
    got = sum(int(d["received"]) for d in drains)
    latencies = sorted(x for d in drains for x in d["latencies_ms"])
    node_cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    window = args.measure_ms / 1000
    scraped = [s.scrape(FANOUT_COUNTERS) for s in servers]
    return {
        "nodes": len(servers),
        "edits": sum(counted.values()),
        "edits_per_s": round(sum(counted.values()) / window, 1),
        "deliveries": got,
        "lost": want - got,
        "remote_updates": remote_updates(config, shares, counted),
        "node_cpu_s": round(sum(node_cpu), 3),
        # What the nodes spend with nobody writing, over a window as long as the measured one.
        "idle_cpu_s": round(sum(idle) * args.measure_ms / max(1, args.idle_ms), 3),
        "per_node_cpu_s": [round(c, 3) for c in node_cpu],
        "node_cores": round(sum(node_cpu) / window, 3),
        "backend_cpu_s": round(back1 - back0, 3),
        "load_cores": round(sum(r[0]["cpu"]["cores"] for r in started if r), 3),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        # The fan-out's own counters over the run, all nodes (none without a fan-out): entries
        # published, other nodes' entries applied, entries never sent, channel failures.
        "fanout": {
            name.removeprefix("collab_fanout_").removesuffix("_total"): sum(
                x.get(name, 0.0) for x in scraped
            )
            for name in FANOUT_COUNTERS
            if any(name in x for x in scraped)
        },
    }


# -- the run ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    p.add_argument("--configs", default=",".join(CONFIGS), help="which of " + ",".join(CONFIGS))
    p.add_argument("--rooms", type=int, default=6)
    p.add_argument("--clients", type=int, default=6, help="per room")
    p.add_argument("--rate", type=float, default=30.0, help="edits/s into each room")
    p.add_argument("--warmup-ms", type=int, default=3000)
    p.add_argument("--measure-ms", type=int, default=20000)
    p.add_argument("--drain-ms", type=int, default=5000)
    p.add_argument("--idle-ms", type=int, default=5000, help="the idle window before the load")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--no-pin", action="store_true", help="do not pin nodes and load generators")
    args = p.parse_args(argv)
    if args.quick:
        args.rooms, args.rate = 3, 10.0
        args.warmup_ms, args.measure_ms, args.drain_ms, args.idle_ms = 500, 2000, 2000, 1000
    args.configs = [c for c in args.configs.split(",") if c]
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        p.error(f"unknown configurations: {sorted(unknown)}")
    return args


def table(result: dict[str, Any]) -> str:
    lines = [
        "| configuration | nodes | edits/s | deliveries | lost | node CPU-s | idle CPU-s | per node"
        " | us per delivery | remote updates | PG+Redis CPU-s | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config, r in result["runs"].items():
        per = result["figures"].get(f"{config}_cpu_us_per_delivery", "-")
        lines.append(
            f"| {config} | {r['nodes']} | {r['edits_per_s']} | {r['deliveries']} | {r['lost']} |"
            f" {r['node_cpu_s']} | {r['idle_cpu_s']} | {r['per_node_cpu_s']} | {per} |"
            f" {r['remote_updates']} | {r['backend_cpu_s']} | {r['p99_ms']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    cores = Cores.split(not args.no_pin)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="collab-nodes-bench-") as tmp:
        for config in args.configs:
            runs[config] = measure(config, args, cores, Path(tmp))
            print(f"{config}: {runs[config]}", flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    result = {
        "scale": {
            k: getattr(args, k) for k in ("rooms", "clients", "rate", "warmup_ms", "measure_ms")
        },
        "runs": runs,
        "figures": figures(runs),
        "target": f"affinity / one <= {TARGET} per delivered update",
        "baseline": "affinity / (3 x third): per delivered update, affinity / third",
        "fanout": "affinity / lone: the same three processes on one core, with and without it",
        "machine": {
            "commit": commit,
            "cpus": len(Cores.split(True).load or ()) + 1,
            "pinning": cores.describe(),
            "python": platform.python_version(),
            "quick": args.quick,
        },
    }
    out_dir = BENCH / "results" / ("raw" if args.quick else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"nodes-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"figures: {result['figures']}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
