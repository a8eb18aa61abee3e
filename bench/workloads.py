"""The workloads: each runs against one fresh server process and returns its measurements.

A measurement is ``{"point": str, "metric": str, "value": float | None, "saturated": bool}``
(plus free-form ``extra``); bench/run.py collects them over repetitions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from procs import Cores, ServerProcess, WorkerPool

SATURATION = 0.75  # share of one core above which a load generator measures itself


@dataclass(frozen=True)
class Plan:
    latency_points: tuple[tuple[int, int], ...]  # (rooms, clients per room)
    warmup_ms: int
    measure_ms: int
    drain_ms: int
    # a latency point's window is lengthened, up to latency_max_measure_ms, until it holds
    # latency_min_deliveries (1 x 2 delivers 10 a second: 20 in 2 s, a few ms of CPU)
    latency_min_deliveries: int
    latency_max_measure_ms: int
    conn_steps: tuple[int, ...]  # total idle clients after each ramp step
    cold_sizes: tuple[int, ...]  # updates written before the restart
    ingest_timeout_s: float
    coldsync_timeout_ms: int
    awareness_clients: tuple[int, ...]
    awareness_changes: int
    workers: int  # load-generator processes for multi-room points
    # chat (bench/chat.py): (rooms, readers per room, posts/s per reader), as the anchors'
    # chat workload has every client append 1 message/s; and collab's posting paths
    chat_points: tuple[tuple[int, int, float], ...]
    chat_paths: tuple[str, ...]  # "api" (HTTP POST), "ws" (type 101 on the chat socket)
    # throughput (bench/throughput.py): the offered edit rate of one room stepped up from
    # tp_start by tp_factor while the room holds p99 <= tp_p99_ms, then bisected tp_refine
    # times; at most tp_max_steps steps and tp_budget_s seconds per server
    tp_clients: int
    tp_start: float
    tp_factor: float
    tp_max_rate: float
    tp_refine: int
    tp_max_steps: int
    tp_budget_s: float
    tp_p99_ms: float
    tp_workers: int  # load-generator processes to start with (more if one saturates alone)
    # sockets (bench/scaling.py): idle synced sockets with presence, ramped to each step
    socket_steps: tuple[int, ...]
    sockets_per_room: int
    sockets_per_worker: int  # load-generator processes: total / this, rounded up
    # docsize (bench/scaling.py): documents of these many MB (10^6 one-byte characters)
    doc_sizes_mb: tuple[int, ...]
    doc_chunk: int  # characters per insert (each its own update message)
    doc_timeout_s: float  # for one document's fill, and for its cold load


FULL = Plan(
    latency_points=((1, 2), (1, 10), (1, 50), (1, 100), (1, 200), (20, 2), (20, 10), (20, 50)),
    warmup_ms=1000,
    measure_ms=2000,
    drain_ms=3000,
    latency_min_deliveries=1000,
    latency_max_measure_ms=10_000,
    conn_steps=(300, 600, 900),
    cold_sizes=(10_000, 100_000),
    ingest_timeout_s=150,
    coldsync_timeout_ms=10_000,
    awareness_clients=(10, 50),
    awareness_changes=5,
    workers=2,
    chat_points=((1, 50, 1.0), (20, 50, 0.1)),
    chat_paths=("api", "ws"),
    tp_clients=10,
    tp_start=500,
    tp_factor=2.0,
    tp_max_rate=16_000,
    tp_refine=2,
    tp_max_steps=9,
    tp_budget_s=120,
    tp_p99_ms=100,
    tp_workers=2,
    socket_steps=(1000, 2500, 5000, 10_000),
    sockets_per_room=10,
    sockets_per_worker=2500,
    doc_sizes_mb=(1, 4, 16, 64),
    doc_chunk=250_000,
    doc_timeout_s=120,
)

QUICK = Plan(
    latency_points=((1, 2), (1, 10), (20, 10)),
    warmup_ms=300,
    measure_ms=1000,
    drain_ms=1000,
    latency_min_deliveries=0,
    latency_max_measure_ms=1000,
    conn_steps=(40, 80),
    cold_sizes=(1000,),
    ingest_timeout_s=30,
    coldsync_timeout_ms=4000,
    awareness_clients=(10,),
    awareness_changes=3,
    workers=2,
    chat_points=((1, 10, 1.0), (20, 5, 0.2)),
    chat_paths=("api", "ws"),
    tp_clients=10,
    tp_start=200,
    tp_factor=4.0,
    tp_max_rate=3200,
    tp_refine=1,
    tp_max_steps=4,
    tp_budget_s=30,
    tp_p99_ms=100,
    tp_workers=2,
    socket_steps=(100, 200),
    sockets_per_room=10,
    sockets_per_worker=100,
    doc_sizes_mb=(1, 2),
    doc_chunk=250_000,
    doc_timeout_s=30,
)


class PartialResult(Exception):
    """A workload that failed part way: the measurements it made before ``cause``."""

    def __init__(self, rows: list[dict[str, Any]], cause: BaseException) -> None:
        super().__init__(repr(cause))
        self.rows = rows
        self.cause = cause


def measurement(
    point: str, metric: str, value: float | None, saturated: bool = False, **extra: Any
) -> dict[str, Any]:
    return {"point": point, "metric": metric, "value": value, "saturated": saturated, **extra}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.inf
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def saturated(results: list[dict[str, Any]], cores: Cores) -> tuple[bool, float, float]:
    """(saturated?, busiest worker's cores, all workers' cores) over the measured phase."""
    per_worker = [r["cpu"]["cores"] for r in results]
    busiest, total = max(per_worker), sum(per_worker)
    return busiest > SATURATION or total > SATURATION * cores.load_count, busiest, total


def _wait_for(server: ServerProcess) -> str:
    return "open" if server.spec.relay else "synced"


def _split(rooms: list[str], workers: int) -> list[list[str]]:
    shares: list[list[str]] = [[] for _ in range(min(workers, len(rooms)))]
    for i, room in enumerate(rooms):
        shares[i % len(shares)].append(room)
    return shares


def latency(server: ServerProcess, plan: Plan, cores: Cores) -> list[dict[str, Any]]:
    """Every latency point in turn. A point that fails (a raw relay cannot even connect 200
    clients to one room: every join's sync and awareness goes to every other socket) costs
    that point, not the others: the rest are measured, then the first failure is raised with
    their rows (``PartialResult``), so the run lists it and keeps what was measured."""
    out: list[dict[str, Any]] = []
    failure: BaseException | None = None
    for rooms_n, clients in plan.latency_points:
        point = f"{rooms_n}x{clients}"
        rooms = [f"lat{point}-{i}/doc" for i in range(rooms_n)]
        try:
            out += latency_point(server, plan, cores, point, rooms, clients, rate=10)
        except Exception as exc:
            if not server.alive():
                raise PartialResult(out, exc) from exc
            failure = failure or PointFailed(point, exc)
            time.sleep(2.0)  # what the failed point's clients started settles
        time.sleep(0.5)
    if failure is not None:
        raise PartialResult(out, failure) from failure.__cause__
    return out


class PointFailed(Exception):
    """One R x C point of a workload that could not be measured."""

    def __init__(self, point: str, cause: BaseException) -> None:
        super().__init__(f"{point}: {cause!r}")
        self.__cause__ = cause


def latency_window_ms(plan: Plan, rooms: int, clients: int, rate: float) -> int:
    """How long a latency point is measured: ``plan.measure_ms``, or longer (up to
    ``plan.latency_max_measure_ms``) where that would deliver fewer than
    ``plan.latency_min_deliveries`` updates. Its CPU per update is a few ms of CPU over a few
    dozen deliveries otherwise, where one awareness renewal or garbage collection weighs as
    much as the updates themselves."""
    per_second = rooms * (clients - 1) * rate
    wanted = math.ceil(plan.latency_min_deliveries / per_second * 1000) if per_second else 0
    return max(plan.measure_ms, min(wanted, plan.latency_max_measure_ms))


def latency_point(
    server: ServerProcess,
    plan: Plan,
    cores: Cores,
    point: str,
    rooms: list[str],
    clients: int,
    rate: float,
) -> list[dict[str, Any]]:
    """One writer per room at ``rate`` edits/s, the room's other clients timing each delivery."""
    shares = _split(rooms, plan.workers)
    measure_ms = latency_window_ms(plan, len(rooms), clients, rate)
    pool = WorkerPool(len(shares), server, cores)
    try:
        wait = _wait_for(server)
        pool.run("connect", [{"rooms": s, "perRoom": clients, "wait": wait} for s in shares])
        time.sleep(0.3)
        args = {
            "rate": rate,
            "warmupMs": plan.warmup_ms,
            "measureMs": measure_ms,
            "drainMs": plan.drain_ms,
        }
        # collab's commit timings over the whole point (warm-up, window, drain): read before
        # and after it, so the scrapes stay out of the measured window and its CPU.
        commits0 = server.commit_totals()
        ids = [w.send("latency", **args) for w in pool.workers]
        time.sleep(plan.warmup_ms / 1000)
        cpu0 = server.cpu_seconds()
        time.sleep(measure_ms / 1000)
        cpu1 = server.cpu_seconds()
        timeout = (plan.drain_ms + 10_000) / 1000
        results = [w.result(i, timeout) for w, i in zip(pool.workers, ids, strict=True)]
        commits1 = server.commit_totals()
        pool.run("close", [{}] * len(pool))
    finally:
        pool.close()
    expected = sum(r["expected"] for r in results)
    received = sum(r["received"] for r in results)
    values = sorted(x for r in results for x in r["latencies_ms"])
    values += [math.inf] * (expected - received)
    sat, busiest, total = saturated(results, cores)
    server_cpu = cpu1 - cpu0
    window = measure_ms / 1000
    extra = {"load_cores": round(total, 3), "load_busiest": round(busiest, 3)}
    out = [
        measurement(point, "p50_ms", percentile(values, 0.50), sat, **extra),
        measurement(point, "p99_ms", percentile(values, 0.99), sat, **extra),
        measurement(point, "lost", expected - received, sat),
        measurement(point, "deliveries_per_s", received / window, sat),
        measurement(point, "server_cores", server_cpu / window, sat),
        measurement(point, "cpu_s_per_1k", server_cpu / received * 1000 if received else None, sat),
    ]
    mean = commit_mean_ms(commits0, commits1)
    if mean is not None:  # collab: its group commits' mean time at this point (the fsync)
        out.append(measurement(point, "commit_mean_ms", mean, sat))
    return out + load_stall(point, results, sat)


def load_stall(point: str, results: list[dict[str, Any]], sat: bool) -> list[dict[str, Any]]:
    """The longest event-loop stall of any load-generator process in the measured window
    (load/clients.mjs ``loopDelay``): a delivery read after a stall waited for the generator,
    so a p99 near it measured the generator, not the server (bench/profiles/CHAT-LATENCY.md).
    Nothing when a worker did not report it."""
    loops = [r["loop"] for r in results if isinstance(r.get("loop"), dict)]
    if not loops or len(loops) != len(results):
        return []
    out = [measurement(point, "load_stall_max_ms", round(max(x["max_ms"] for x in loops), 3), sat)]
    gcs = [x["gc"] for x in loops if isinstance(x.get("gc"), dict)]
    if len(gcs) == len(loops):  # its garbage collections: the longest, and the full ones
        out.append(
            measurement(point, "load_gc_max_ms", round(max(g["max_ms"] for g in gcs), 3), sat)
        )
        out.append(measurement(point, "load_gc_major", sum(g["major"] for g in gcs), sat))
    return out


def commit_mean_ms(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """Mean time of the commits between two (seconds, count) readings, in ms."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * 1000


def _rss_slope(server: ServerProcess, plan: Plan, cores: Cores, per_room: int) -> dict[str, Any]:
    """Ramps idle synced clients (per_room in each room); least-squares RSS bytes per client."""
    pool = WorkerPool(plan.workers, server, cores)
    samples: list[tuple[int, int]] = []
    try:
        time.sleep(1.0)
        connected = 0
        for step, total in enumerate(plan.conn_steps):
            rooms = [
                f"conn{per_room}-{step}-{i}/doc" for i in range((total - connected) // per_room)
            ]
            shares = _split(rooms, len(pool))
            args = [
                {
                    "rooms": s,
                    "perRoom": per_room,
                    "wait": _wait_for(server),
                    "seed": True,
                    "timeoutMs": 60_000,
                }
                for s in shares
            ]
            pool.run("connect", args, timeout=180)
            connected += len(rooms) * per_room
            time.sleep(1.0)
            samples.append((connected, server.rss_bytes()))
        pool.run("close", [{}] * len(pool))
    finally:
        pool.close()
    n = len(samples)
    mean_x = sum(x for x, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in samples)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in samples)
    # Connecting is a burst that keeps the load generator busy, but RSS is read after a settle
    # pause with every client idle: the load generator's CPU cannot distort it, so no marking.
    return {"slope": sxy / sxx if sxx else math.nan, "samples": samples, "saturated": False}


def connections(make_server: Any, plan: Plan, cores: Cores) -> list[dict[str, Any]]:
    """KB per idle connection and per room from two fresh servers (10 and 1 clients per room)."""
    slopes: dict[int, dict[str, Any]] = {}
    for per_room in (10, 1):
        server = make_server(f"conn{per_room}")
        try:
            slopes[per_room] = _rss_slope(server, plan, cores, per_room)
        finally:
            server.stop(graceful=False)
    k10, k1 = slopes[10]["slope"], slopes[1]["slope"]
    room = (k1 - k10) / 0.9  # k10 = c + r/10, k1 = c + r
    conn = k10 - room / 10
    sat = slopes[10]["saturated"] or slopes[1]["saturated"]
    samples = {str(k): v["samples"] for k, v in slopes.items()}
    return [
        measurement("idle", "kb_per_conn", conn / 1024, sat, samples=samples),
        measurement("idle", "kb_per_room", room / 1024, sat),
        measurement("idle", "kb_per_client_10_per_room", k10 / 1024, sat),
        measurement("idle", "kb_per_client_1_per_room", k1 / 1024, sat),
    ]


def cold(server: ServerProcess, plan: Plan, cores: Cores) -> list[dict[str, Any]]:
    """Ingest N single-character updates, restart the server cleanly, time a fresh client."""
    out: list[dict[str, Any]] = []
    pool = WorkerPool(1, server, cores)
    try:
        for n in plan.cold_sizes:
            room = f"cold{n}/doc"
            pool.run("connect", [{"rooms": [room], "perRoom": 2}])
            [res] = pool.run(
                "ingest",
                [{"room": room, "n": n, "timeoutMs": plan.ingest_timeout_s * 1000}],
                timeout=plan.ingest_timeout_s + 30,
            )
            sat, _, _ = saturated([res], cores)
            point = f"{n // 1000}k"
            out += [
                measurement(point, "ingest_per_s", res["updates_per_s"], sat),
                measurement(point, "ingest_complete", 1.0 if res["complete"] else 0.0, sat),
            ]
            pool.run("close", [{}])
    finally:
        pool.close()
    time.sleep(0.5)
    server.restart()
    pool = WorkerPool(1, server, cores)
    try:
        for n in plan.cold_sizes:
            [res] = pool.run(
                "coldsync",
                [{"room": f"cold{n}/doc", "n": n, "timeoutMs": plan.coldsync_timeout_ms}],
                timeout=plan.coldsync_timeout_ms / 1000 + 30,
            )
            point = f"{n // 1000}k"
            out += [
                measurement(point, "synced_ms", res["synced_ms"]),
                measurement(point, "full_ms", res["full_ms"]),
                measurement(point, "persisted", res["persisted"]),
            ]
    finally:
        pool.close()
    return out


def awareness(server: ServerProcess, plan: Plan, cores: Cores) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for clients in plan.awareness_clients:
        pool = WorkerPool(1, server, cores)
        try:
            room = f"aw{clients}/doc"
            pool.run("connect", [{"rooms": [room], "perRoom": clients, "wait": _wait_for(server)}])
            args = {"changes": plan.awareness_changes, "gapMs": 200, "settleMs": 500}
            [res] = pool.run("awareness", [args], timeout=60)
            pool.run("close", [{}])
        finally:
            pool.close()
        frames = [c["frames"] for c in res["changes"]]
        sat, _, _ = saturated([res], cores)
        out.append(
            measurement(
                f"1x{clients}",
                "frames_per_change",
                sum(frames) / len(frames),
                sat,
                ideal=clients - 1,
            )
        )
        time.sleep(0.3)
    return out


WORKLOADS = (
    "latency",
    "connections",
    "cold",
    "awareness",
    "chat",
    "throughput",
    "sockets",
    "docsize",
)
