"""The chat workload (bench/README.md, "chat"): post -> seen in R rooms x C readers.

collab posts through its chat API (HTTP) and through type 101 requests on the chat socket;
readers are y-websocket clients of the room's ``chat`` doc. The anchors have no chat: they run
the chat workload of ``shared/BENCH-NOTES.md`` (every client appends a map {from, seq, ts,
text} to a Y.Array at 1 msg/s). Every server also runs its own update relay (the latency
workload) at the same point and message rate, so the post -> seen p99 has a yardstick: the
issue's target is collab's post -> seen p99 <= 1.5x its own relay p99 at the same point.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from typing import Any

from procs import Cores, ServerProcess, WorkerPool
from report import Index, cell, table
from workloads import (
    SATURATION,
    Plan,
    _split,
    _wait_for,
    latency_point,
    load_stall,
    measurement,
    percentile,
    saturated,
)

TARGET = 1.5  # post -> seen p99 / the same server's relay p99 at the same point
PATH_LABELS = {
    "api": "API post (HTTP)",
    "ws": "socket post (101)",
    "yarray": "Y.Array append",
    "relay": "update relay",
}


def paths(server: ServerProcess, plan: Plan) -> tuple[str, ...]:
    """How this server's clients post: collab through its chat, the anchors into a Y.Array."""
    return plan.chat_paths if server.spec.chat_api else ("yarray",)


def create_rooms(server: ServerProcess, names: list[str]) -> None:
    """Rooms for chat must exist (the chat doc is reserved): POST /rooms as the dev user."""
    token = (server.spec.params or {})["token"]
    for name in names:
        request = urllib.request.Request(
            f"{server.api_base}/rooms",
            data=json.dumps({"id": name, "title": name}).encode(),
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 201:
                raise RuntimeError(f"POST /rooms {name}: {response.status}")


def chat(server: ServerProcess, plan: Plan, cores: Cores) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rooms_n, clients, rate in plan.chat_points:
        point = f"{rooms_n}x{clients}"
        per_room = clients * rate  # posts/s of one room
        relay_rooms = [f"chatrelay{point}-{i}/doc" for i in range(rooms_n)]
        out += latency_point(
            server, plan, cores, f"{point} relay", relay_rooms, clients, rate=per_room
        )
        time.sleep(0.5)
        for path in paths(server, plan):
            if path == "ws" and any(r["metric"] == "unsupported" for r in out):
                continue
            out += chat_point(server, plan, cores, point, path, rooms_n, clients, rate)
            time.sleep(0.5)
    return out


def chat_point(
    server: ServerProcess,
    plan: Plan,
    cores: Cores,
    point: str,
    path: str,
    rooms_n: int,
    clients: int,
    rate: float,
) -> list[dict[str, Any]]:
    """One (point, path), on ``plan.workers`` load-generator processes; when one of them
    saturated alone while the load cores had room, again in fresh rooms with twice as many
    (up to one per room): a saturated row then means the load cores ran out, not one process."""
    workers, attempt = plan.workers, 0
    while True:
        rows, alone = _chat_point(
            server, plan, cores, point, path, rooms_n, clients, rate, workers, attempt
        )
        if not alone or workers >= rooms_n:
            return rows
        workers, attempt = min(rooms_n, workers * 2), attempt + 1
        print(f"  {point} {path}: one load process saturated alone: again on {workers}")
        time.sleep(0.5)


def _chat_point(
    server: ServerProcess,
    plan: Plan,
    cores: Cores,
    point: str,
    path: str,
    rooms_n: int,
    clients: int,
    rate: float,
    workers: int,
    attempt: int,
) -> tuple[list[dict[str, Any]], bool]:
    """C readers in each of R fresh rooms, posts at C x rate per room: (rows, whether one
    load process saturated alone)."""
    again = f"r{attempt}" if attempt else ""
    rooms = [f"chat{point}-{path}{again}-{i}" for i in range(rooms_n)]
    if server.spec.chat_api:
        create_rooms(server, rooms)
    shares = _split([f"{room}/chat" for room in rooms], workers)
    pool = WorkerPool(len(shares), server, cores)
    try:
        params = {"collab": "1"} if path == "ws" else {}
        wait = _wait_for(server)
        connect = [
            {"rooms": s, "perRoom": clients, "wait": wait, "params": params, "timeoutMs": 60_000}
            for s in shares
        ]
        pool.run("connect", connect, timeout=180)
        time.sleep(0.3)
        if path == "ws" and not pool.workers[0].call("chatprobe", timeout=30)["answered"]:
            # A build without type 101 (an earlier commit): no 101 row, a note under the table.
            print(f"  {server.spec.name}: no answer to type 101: the 101 path is left out")
            return [measurement(f"{point} ws", "unsupported", 1.0)], False
        token = (server.spec.params or {}).get("token")
        args = {
            "mode": path,
            "rate": rate,
            "warmupMs": plan.warmup_ms,
            "measureMs": plan.measure_ms,
            "drainMs": plan.drain_ms,
            "api": server.api_base,
            "token": token,
        }
        ids = [w.send("chat", **args) for w in pool.workers]
        time.sleep(plan.warmup_ms / 1000)
        cpu0 = server.cpu_seconds()
        time.sleep(plan.measure_ms / 1000)
        cpu1 = server.cpu_seconds()
        timeout = (plan.drain_ms + 10_000) / 1000
        results = [w.result(i, timeout) for w, i in zip(pool.workers, ids, strict=True)]
        pool.run("close", [{}] * len(pool))
    finally:
        pool.close()
    rows = _measurements(f"{point} {path}", results, cpu1 - cpu0, plan, cores, rate)
    return rows, one_saturated_alone(results, cores)


def one_saturated_alone(results: list[dict[str, Any]], cores: Cores) -> bool:
    """One load process used more than SATURATION of its core while all of them together
    left the load cores room: more processes would help."""
    _, busiest, total = saturated(results, cores)
    return busiest > SATURATION and total <= SATURATION * cores.load_count


def _measurements(
    point: str,
    results: list[dict[str, Any]],
    server_cpu: float,
    plan: Plan,
    cores: Cores,
    rate: float,
) -> list[dict[str, Any]]:
    def total(key: str) -> int:
        return sum(int(r[key]) for r in results)

    expected, received, posted = total("expected"), total("received"), total("posted")
    answered, errors = total("answered"), total("errors")
    seen = sorted(x for r in results for x in r["latencies_ms"])
    seen += [math.inf] * (expected - received)
    answers = sorted(x for r in results for x in r["answers_ms"])
    answers += [math.inf] * (posted - answered)
    sat, busiest, total_cores = saturated(results, cores)
    window = plan.measure_ms / 1000
    first_error = next((r["first_error"] for r in results if r["first_error"]), None)
    extra = {
        "load_cores": round(total_cores, 3),
        "load_busiest": round(busiest, 3),
        "rate_per_reader": rate,
        "first_error": first_error,
    }
    rows = [
        measurement(point, "p50_ms", percentile(seen, 0.50), sat, **extra),
        measurement(point, "p99_ms", percentile(seen, 0.99), sat, **extra),
        measurement(point, "lost", expected - received, sat),
        measurement(point, "errors", errors, sat),
        measurement(point, "posts_per_s", answered / window, sat),
        measurement(point, "deliveries_per_s", received / window, sat),
        measurement(point, "server_cores", server_cpu / window, sat),
        measurement(point, "posts_per_cpu_s", answered / server_cpu if server_cpu else None, sat),
    ]
    if not point.endswith("yarray"):  # an append has no answer to time
        rows += [
            measurement(point, "answer_p50_ms", percentile(answers, 0.50), sat),
            measurement(point, "answer_p99_ms", percentile(answers, 0.99), sat),
        ]
    return rows + load_stall(point, results, sat)


# -- the tables (report.render calls ``render`` in every deflate mode's section) ---------------


def _points(ix: Index, deflate: bool) -> dict[str, list[str]]:
    """R x C -> the posting paths measured there, in order (the relay is not one)."""
    found: dict[str, list[str]] = {}
    for point in ix.points("chat", "p99_ms", deflate):
        where, _, path = point.partition(" ")
        paths = found.setdefault(where, [])
        if path != "relay" and path not in paths:
            paths.append(path)
    return found


def ratio(row: dict[str, Any] | None, relay: dict[str, Any] | None) -> str:
    """post -> seen p99 over the relay p99; blank when either is missing or saturated."""
    if row is None or relay is None or row["saturated"] or relay["saturated"]:
        return ""
    a, b = row["median"], relay["median"]
    if a is None or b is None or b == 0 or math.isinf(b):
        return ""
    return "inf" if math.isinf(a) else f"{a / b:.2f}x"


def _rates(summary: dict[str, Any]) -> dict[str, float]:
    """R x C -> messages/s per reader, from the run's plan."""
    return {f"{r}x{c}": rate for r, c, rate in summary["plan"].get("chat_points", [])}


def render(ix: Index, deflate: bool, summary: dict[str, Any]) -> list[str]:
    """The chat table and collab against the chat target, or nothing without chat rows."""
    rates = _rates(summary)
    body, verdicts = [], []
    for where, measured in _points(ix, deflate).items():
        label = f"{where} @{rates[where]:g}/s" if where in rates else where
        for server in ix.servers:
            relay = ix.get("chat", f"{where} relay", "p99_ms", server, deflate)
            relay_stall = ix.get("chat", f"{where} relay", "load_stall_max_ms", server, deflate)
            for path in measured:

                def get(metric: str, point: str = f"{where} {path}", who: str = server) -> Any:
                    return ix.get("chat", point, metric, who, deflate)

                p99 = get("p99_ms")
                if p99 is None:
                    continue
                body.append(
                    [label, server, PATH_LABELS.get(path, path), cell(get("posts_per_s"))]
                    + [cell(get("p50_ms")), cell(p99), cell(relay), ratio(p99, relay)]
                    + [cell(get(m)) for m in ("lost", "errors", "answer_p99_ms")]
                    + [cell(get(m)) for m in ("server_cores", "posts_per_cpu_s")]
                    + [cell(get("load_stall_max_ms")), cell(relay_stall)]
                )
                if server == "collab":
                    verdicts.append(
                        [f"{where} {PATH_LABELS.get(path, path)}", _verdict(p99, relay)]
                    )
    if not body:
        return []
    unsupported = sorted(
        {s for (w, _, m, s, d) in ix.rows if (w, m, d) == ("chat", "unsupported", deflate)}
    )
    header = [
        "rooms x readers @ msgs/s per reader",
        "server",
        "posting",
        "posts/s",
        "post -> seen p50 ms",
        "p99 ms",
        "relay p99 ms",
        "p99 / relay",
        "lost",
        "errors",
        "post -> answer p99 ms",
        "server cores",
        "posts/s per core",
        "generator stall max ms",
        "... at the relay",
    ]
    out = ["", "#### Chat: post -> seen (bench/README.md, chat)", "", *table(header, body)]
    if unsupported:
        out += ["", f"Not measured: socket post (101) on {', '.join(unsupported)} (no type 101)."]
    if verdicts:
        target = f"collab's post -> seen p99 <= {TARGET}x its own relay p99 at the same point"
        out += ["", f"#### collab against the chat target ({target})", ""]
        out += table(["point, posting", "verdict"], verdicts)
    return out


def _verdict(p99: dict[str, Any], relay: dict[str, Any] | None) -> str:
    r = ratio(p99, relay)
    if not r:
        return "n/a"
    if r == "inf":
        return "missed (inf)"
    return ("met" if float(r[:-1]) <= TARGET else "missed") + f" ({r})"
