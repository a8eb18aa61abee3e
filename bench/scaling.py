"""Two scaling workloads (bench/README.md): RSS against idle sockets, cold load against size.

- **sockets**: idle synced clients with presence, ``sockets_per_room`` (10) to a room, ramped
  to every total of ``socket_steps`` (up to 10,000 in 1,000 rooms) on one fresh server, the
  clients spread over ``total / sockets_per_worker`` load-generator processes; the server's RSS
  (process and children) at the end of a settle window after every step. A step is marked
  saturated when the load generator was busy through that window (relays forward every
  presence renewal and y-websocket clients echo it back: their clients are not idle).
- **docsize**: documents of ``doc_sizes_mb`` MB (10^6 one-byte characters in inserts of
  ``doc_chunk`` characters, each its own update), written by one client while a second one
  watches (fill rate), then every client closes, the server restarts cleanly on the same data
  and a fresh client times restart -> synced and restart -> full content of each document, as
  the cold workload does for many small updates. A size that does not fill within
  ``doc_timeout_s`` ends the climb: the larger ones are not tried.
"""

from __future__ import annotations

import math
import time
from typing import Any

from procs import Cores, ServerProcess, WorkerPool, fd_limit
from report import Index, cell, num, table
from workloads import PartialResult, Plan, _split, _wait_for, measurement, saturated

MB = 1 << 20  # RSS is reported in MB of 2^20 bytes (KB elsewhere are 2^10)
FD_MARGIN = 200  # descriptors a process needs besides its sockets (files, pipes, listeners)


def _check_fds(server_sockets: int, per_worker: int) -> None:
    """Fails before connecting when a process could not hold its sockets."""
    limit = fd_limit()
    need = max(server_sockets, per_worker) + FD_MARGIN
    if need > limit:
        raise RuntimeError(
            f"{need} open files needed in one process, the hard limit is {limit}: "
            "raise it (ulimit -Hn, or LimitNOFILE for a service) or lower socket_steps"
        )


def sockets(server: ServerProcess, plan: Plan, cores: Cores) -> list[dict[str, Any]]:
    per_room = plan.sockets_per_room
    top = max(plan.socket_steps)
    count = max(1, math.ceil(top / plan.sockets_per_worker))
    _check_fds(top, math.ceil(top / count))
    out: list[dict[str, Any]] = []
    pool = WorkerPool(count, server, cores)
    try:
        time.sleep(1.0)
        out.append(measurement("0", "rss_mb", server.rss_bytes() / MB))
        connected = 0
        for step, total in enumerate(plan.socket_steps):
            rooms = [f"idle{step}-{i}/doc" for i in range((total - connected) // per_room)]
            args = [
                {
                    "rooms": share,
                    "perRoom": per_room,
                    "wait": _wait_for(server),
                    "seed": True,  # a short text in every room, a presence for every client
                    "timeoutMs": 120_000,
                }
                for share in _split(rooms, len(pool))
            ]
            t0 = time.monotonic()
            try:
                pool.run("connect", args, timeout=900)
            except Exception as exc:  # the steps before it stand
                raise PartialResult(out, exc) from exc
            connect_s = time.monotonic() - t0
            added = len(rooms) * per_room
            connected += added
            # The settle window: every process idles (reporting its CPU) while the server
            # settles; RSS is read at its end.
            idle = pool.run("idle", [{"ms": 2000}] * len(pool), timeout=60)
            rss = server.rss_bytes()
            sat, busiest, load = saturated(idle, cores)
            point = str(connected)
            out += [
                measurement(
                    point,
                    "rss_mb",
                    rss / MB,
                    sat,
                    load_cores=round(load, 3),
                    load_busiest=round(busiest, 3),
                    rooms=connected // per_room,
                    processes=len(pool),
                ),
                measurement(point, "connect_per_s", added / connect_s if connect_s else None),
            ]
        pool.run("close", [{}] * len(pool), timeout=300)
    finally:
        pool.close()
    return out


def docsize(server: ServerProcess, plan: Plan, cores: Cores) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    filled: list[int] = []
    pool = WorkerPool(1, server, cores)
    try:
        for mb in plan.doc_sizes_mb:
            room = f"size{mb}/doc"
            pool.run("connect", [{"rooms": [room], "perRoom": 2}])
            fill = {
                "room": room,
                "bytes": mb * 10**6,
                "chunk": plan.doc_chunk,
                "timeoutMs": plan.doc_timeout_s * 1000,
            }
            [res] = pool.run("fill", [fill], timeout=plan.doc_timeout_s + 60)
            pool.run("close", [{}])
            sat, _, _ = saturated([res], cores)
            point = f"{mb}MB"
            out += [
                measurement(point, "fill_mb_per_s", res["mb_per_s"], sat),
                measurement(point, "fill_complete", 1.0 if res["complete"] else 0.0, sat),
            ]
            if not res["complete"]:
                break  # a larger document would take longer still
            filled.append(mb)
    finally:
        pool.close()
    time.sleep(0.5)
    server.restart()
    pool = WorkerPool(1, server, cores)
    try:
        for mb in filled:
            load = {
                "room": f"size{mb}/doc",
                "n": mb * 10**6,
                "timeoutMs": plan.doc_timeout_s * 1000,
            }
            [res] = pool.run("coldsync", [load], timeout=plan.doc_timeout_s + 60)
            rss = server.rss_bytes()
            pool.run("close", [{}])
            point = f"{mb}MB"
            out += [
                measurement(point, "synced_ms", res["synced_ms"]),
                measurement(point, "load_ms", res["full_ms"]),
                measurement(point, "persisted", res["persisted"]),
                measurement(point, "rss_mb_loaded", rss / MB),
            ]
    finally:
        pool.close()
    return out


# -- the tables (report.render calls these in every deflate mode's section) -------------------


def render_sockets(ix: Index, deflate: bool, summary: dict[str, Any]) -> list[str]:
    points = sorted(ix.points("sockets", "rss_mb", deflate), key=int)
    body = []
    for server in ix.servers:
        rows = [ix.get("sockets", p, "rss_mb", server, deflate) for p in points]
        if not any(rows):
            continue
        body.append([server, *(cell(r) for r in rows), _slope_cell(points, rows)])
    if not body:
        return []
    header = ["server", *(f"{int(p):,} sockets" for p in points), "KB / socket (slope)"]
    return [
        "",
        "#### RSS (MB) of idle synced sockets with presence, "
        f"{summary.get('plan', {}).get('sockets_per_room', 10)} per room",
        "",
        *table(header, body),
    ]


def slope_kb(points: list[str], rows: list[dict[str, Any] | None]) -> float | None:
    """Least-squares KB per socket over the medians (None with fewer than two)."""
    xy = [
        (int(p), r["median"] * MB / 1024)
        for p, r in zip(points, rows, strict=True)
        if r is not None and r["median"] is not None
    ]
    if len(xy) < 2:
        return None
    mean_x = sum(x for x, _ in xy) / len(xy)
    mean_y = sum(y for _, y in xy) / len(xy)
    sxx = sum((x - mean_x) ** 2 for x, _ in xy)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in xy)
    return sxy / sxx if sxx else None


def _slope_cell(points: list[str], rows: list[dict[str, Any] | None]) -> str:
    return num(slope_kb(points, rows))


def render_docsize(ix: Index, deflate: bool, summary: dict[str, Any]) -> list[str]:
    body = []
    for point in ix.points("docsize", "fill_mb_per_s", deflate):
        hp = ix.get("docsize", point, "load_ms", "hocuspocus", deflate)
        for server in ix.servers:
            fill = ix.get("docsize", point, "fill_mb_per_s", server, deflate)
            if fill is None:
                continue

            def get(metric: str, who: str = server, at: str = point) -> dict[str, Any] | None:
                return ix.get("docsize", at, metric, who, deflate)

            load = get("load_ms")
            ratio = ""
            if load is not None and hp is not None and load["median"] and hp["median"]:
                ratio = f"{load['median'] / hp['median']:.2f}x"
            body.append(
                [
                    point,
                    server,
                    cell(fill),
                    cell(get("fill_complete"), 100),
                    cell(get("persisted"), 100),
                    cell(get("synced_ms")),
                    cell(load),
                    ratio,
                    cell(get("rss_mb_loaded")),
                ]
            )
    if not body:
        return []
    header = [
        "document",
        "server",
        "fill MB/s",
        "fill complete %",
        "persisted %",
        "restart -> synced ms",
        "restart -> full content ms",
        "full /hp",
        "server RSS loaded MB",
    ]
    return [
        "",
        "#### Documents by size: fill, then cold load after a clean restart",
        "",
        *table(header, body),
    ]
