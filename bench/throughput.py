"""The throughput workload (bench/README.md, "throughput"): the highest edit rate one room holds.

A room of ``tp_clients`` (10) clients, every one of them writing and reading, spread over
several load-generator processes (load/throughput.mjs). The offered rate (edits/s into the
room, shared evenly by its clients) steps up from ``tp_start`` by ``tp_factor`` while the room
*holds* it: p99 of the deliveries <= ``tp_p99_ms`` and none lost. Past the first rate it does
not hold, the rate is bisected ``tp_refine`` times between the highest held and the lowest not
held. Every step is a fresh room on the same server, bounded in count (``tp_max_steps``) and
time (``tp_budget_s`` per server).

A step's load generator is *saturated* when one of its processes used more than SATURATION of a
core, all of them together more than SATURATION of the load cores, its edits went out late (p99
of their send lag past LAG_MS: the offered rate was not achieved on time) or fell short of it by
more than SHORTFALL: such a step measured the generator, not the server. When one process
saturated alone while the load cores had room, the step runs again with twice the processes (up
to one per client): as many processes as it takes. The result is the highest rate held and what
stopped the climb above it: the server (p99 or losses with the generator unsaturated), the
generator (a lower bound: the server held all the generator could offer), or the plan's top
rate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from procs import Cores, ServerProcess, WorkerPool
from report import Index, cell, num, table
from workloads import Plan, _wait_for, measurement, percentile

SATURATION = 0.90  # share of a core (one process) or of the load cores (all) that saturates
SHORTFALL = 0.05  # edits sent this far below the offered rate: the generator could not keep up
LAG_MS = 20.0  # p99 of edits' send lag (sent - due) past which the generator fell behind
POINT = "room"  # the point name of the result rows ("room of 10")

Verdict = Literal["held", "server", "generator"]
Bound = Literal["server", "generator", "top rate", "none"]


@dataclass(frozen=True)
class Step:
    """One offered rate, measured."""

    rate: float  # offered edits/s into the room
    p99_ms: float
    lost: int
    saturated: bool  # the load generator was the limit (see ``generator_saturated``)

    def verdict(self, p99_limit_ms: float) -> Verdict:
        if self.saturated:
            return "generator"
        if self.lost == 0 and self.p99_ms <= p99_limit_ms:
            return "held"
        return "server"


def generator_saturated(
    busiest: float,
    total: float,
    load_cores: int,
    sent_rate: float,
    offered: float,
    lag_p99_ms: float = 0.0,
) -> bool:
    """Whether the load generator, not the server, was the limit of a step."""
    short = sent_rate < offered * (1 - SHORTFALL)
    late = lag_p99_ms > LAG_MS
    return busiest > SATURATION or total > SATURATION * load_cores or short or late


def one_process_saturated(busiest: float, total: float, load_cores: int) -> bool:
    """One process ran out while the load cores had room: more processes would help."""
    return busiest > SATURATION and total <= SATURATION * load_cores


def next_rate(steps: list[Step], plan: Plan) -> float | None:
    """The next rate to offer after ``steps`` (in the order measured), or None: done.

    Up by ``tp_factor`` from ``tp_start`` while every step held (not past ``tp_max_rate``);
    then the geometric middle of the highest held and the lowest not held, ``tp_refine`` times
    (or, when not even the first rate held, down by ``tp_factor``, as many times).
    """
    if not steps:
        return float(plan.tp_start)
    if len(steps) >= plan.tp_max_steps:
        return None
    limit = plan.tp_p99_ms
    held = [s.rate for s in steps if s.verdict(limit) == "held"]
    failed = [s.rate for s in steps if s.verdict(limit) != "held"]
    if not failed:
        up = steps[-1].rate * plan.tp_factor
        return up if up <= plan.tp_max_rate * (1 + 1e-9) else None
    first_failure = next(i for i, s in enumerate(steps) if s.verdict(limit) != "held")
    if len(steps) - first_failure - 1 >= plan.tp_refine:
        return None
    best = max(held, default=None)
    above = [r for r in failed if best is None or r > best]
    if not above:  # every failure is below a held rate: noise; the climb is over
        return None
    lowest_failed = min(above)
    if best is None:
        return lowest_failed / plan.tp_factor
    middle = math.sqrt(best * lowest_failed)
    if any(math.isclose(middle, s.rate, rel_tol=0.01) for s in steps):
        return None
    return middle


@dataclass(frozen=True)
class Outcome:
    held: float | None  # the highest rate held (None: not even the lowest tried)
    bound: Bound  # what stopped the climb just above it


def outcome(steps: list[Step], p99_limit_ms: float) -> Outcome:
    held = max((s.rate for s in steps if s.verdict(p99_limit_ms) == "held"), default=None)
    above = [s for s in steps if s.verdict(p99_limit_ms) != "held"]
    if held is not None:
        above = [s for s in above if s.rate > held]
    if not steps:
        return Outcome(None, "none")
    if not above:
        return Outcome(held, "top rate")
    lowest = min(above, key=lambda s: s.rate)
    verdict = lowest.verdict(p99_limit_ms)
    return Outcome(held, "generator" if verdict == "generator" else "server")


def shares(clients: int, workers: int) -> list[list[int]]:
    """The room-wide client indices each process holds, dealt round-robin."""
    out: list[list[int]] = [[] for _ in range(min(workers, clients))]
    for i in range(clients):
        out[i % len(out)].append(i)
    return out


def expected_deliveries(counted: list[list[int]]) -> list[int]:
    """Per process, the deliveries its clients should get: every client receives every counted
    edit of every other client of the room. counted[k][j]: edits counted by client j of
    process k."""
    total = sum(sum(c) for c in counted)
    return [len(c) * total - sum(c) for c in counted]


def throughput(server: ServerProcess, plan: Plan, cores: Cores) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    steps: list[Step] = []
    workers = max(1, min(plan.tp_workers, plan.tp_clients))
    deadline = time.monotonic() + plan.tp_budget_s
    rate = next_rate(steps, plan)
    index = 0
    while rate is not None and time.monotonic() < deadline:
        rows, step, alone = _step(server, plan, cores, rate, index, workers)
        index += 1
        if alone and workers < plan.tp_clients and len(steps) + 1 < plan.tp_max_steps:
            workers = min(plan.tp_clients, workers * 2)  # the same rate again, more processes
            # Kept apart (point "<rate>/s superseded"), so the rerun's medians are its own.
            out += [dict(r, point=f"{r['point']} superseded") for r in rows]
            continue
        out += rows
        steps.append(step)
        rate = next_rate(steps, plan)
        time.sleep(0.5)
    return out + _result_rows(steps, out, plan)


def _step(
    server: ServerProcess, plan: Plan, cores: Cores, rate: float, index: int, workers: int
) -> tuple[list[dict[str, Any]], Step, bool]:
    """One offered rate on a fresh room: (rows, step, one process saturated alone)."""
    room = f"tp{index}/doc"
    dealt = shares(plan.tp_clients, workers)
    pool = WorkerPool(len(dealt), server, cores)
    try:
        wait = _wait_for(server)
        pool.run("connect", [{"rooms": [room], "perRoom": len(ids), "wait": wait} for ids in dealt])
        time.sleep(0.3)
        args = {
            "room": room,
            "rate": rate,
            "clients": plan.tp_clients,
            "warmupMs": plan.warmup_ms,
            "measureMs": plan.measure_ms,
        }
        sent = [
            w.send("tpstart", ids=ids, **args) for w, ids in zip(pool.workers, dealt, strict=True)
        ]
        time.sleep(plan.warmup_ms / 1000)
        cpu0 = server.cpu_seconds()
        time.sleep(plan.measure_ms / 1000)
        cpu1 = server.cpu_seconds()
        started = [
            w.result(i, 30 + plan.measure_ms / 1000)
            for w, i in zip(pool.workers, sent, strict=True)
        ]
        expected = expected_deliveries([r["counted"] for r in started])
        drains = pool.run(
            "tpdrain",
            [{"room": room, "expected": e, "drainMs": plan.drain_ms} for e in expected],
            timeout=plan.drain_ms / 1000 + 30,
        )
        pool.run("close", [{}] * len(pool))
    finally:
        pool.close()
    window = plan.measure_ms / 1000
    want = sum(expected)
    got = sum(int(d["received"]) for d in drains)
    values = sorted(x for d in drains for x in d["latencies_ms"])
    values += [math.inf] * (want - got)
    p99 = percentile(values, 0.99)
    per_process = [r["cpu"]["cores"] for r in started]
    busiest, total = max(per_process), sum(per_process)
    sent_rate = sum(int(r["counted_total"]) for r in started) / window
    lag = max(float(r["lag_p99_ms"]) for r in started)
    sat = generator_saturated(busiest, total, cores.load_count, sent_rate, rate, lag)
    step = Step(rate, p99, want - got, sat)
    point = f"{rate:.0f}/s"
    extra = {
        "offered": rate,
        "sent_per_s": round(sent_rate, 1),
        "send_lag_p99_ms": round(lag, 3),
        "load_cores": round(total, 3),
        "load_busiest": round(busiest, 3),
        "processes": len(dealt),
        "verdict": step.verdict(plan.tp_p99_ms),
    }
    server_cores = (cpu1 - cpu0) / window
    rows = [
        measurement(point, "step_p99_ms", p99, sat, **extra),
        measurement(point, "step_p50_ms", percentile(values, 0.50), sat),
        measurement(point, "step_lost", want - got, sat),
        measurement(point, "step_sent_per_s", sent_rate, sat),
        measurement(point, "step_deliveries_per_s", got / window, sat),
        measurement(point, "step_server_cores", server_cores, sat),
        measurement(point, "step_load_cores", total, sat),
        measurement(point, "step_send_lag_p99_ms", lag, sat),
    ]
    return rows, step, one_process_saturated(busiest, total, cores.load_count)


def _result_rows(steps: list[Step], rows: list[dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    """The run's answer: highest rate held, what bound it, and the held step's figures."""
    result = outcome(steps, plan.tp_p99_ms)
    unproven = result.bound != "server"  # a lower bound: the server was never the limit
    at_best = {
        r["metric"]: r["value"]
        for r in rows
        if result.held is not None and r["point"] == f"{result.held:.0f}/s"
    }
    return [
        measurement(POINT, "max_rate", result.held, unproven, bound=result.bound, steps=len(steps)),
        measurement(POINT, "generator_bound", 1.0 if result.bound == "generator" else 0.0),
        measurement(POINT, "top_rate_held", 1.0 if result.bound == "top rate" else 0.0),
        measurement(POINT, "p99_at_max_ms", at_best.get("step_p99_ms")),
        measurement(POINT, "server_cores_at_max", at_best.get("step_server_cores")),
        measurement(POINT, "load_cores_at_max", at_best.get("step_load_cores")),
        measurement(POINT, "steps", float(len(steps))),
    ]


# -- the table (report.render calls ``render`` in every deflate mode's section) ---------------


def bound_of(ix: Index, server: str, deflate: bool) -> str:
    """What held the median run back: "generator" or "top rate" (a lower bound) or "server"."""
    for metric, name in (("generator_bound", "generator"), ("top_rate_held", "top rate")):
        row = ix.get("throughput", POINT, metric, server, deflate)
        if row is not None and row["median"] is not None and row["median"] >= 0.5:
            return name
    return "server"


def rate_cell(ix: Index, server: str, deflate: bool) -> str:
    row = ix.get("throughput", POINT, "max_rate", server, deflate)
    if row is None or row["median"] is None:
        return "-"
    text = num(row["median"])
    if row["reps"] > 1 and row["min"] is not None:
        text += f" ({num(row['min'])}-{num(row['max'])})"
    return (">= " + text) if bound_of(ix, server, deflate) != "server" else text


def render(ix: Index, deflate: bool, summary: dict[str, Any]) -> list[str]:
    body = []
    uv = ix.get("throughput", POINT, "max_rate", "uvicorn-relay", deflate)
    for server in ix.servers:
        best = ix.get("throughput", POINT, "max_rate", server, deflate)
        if best is None:
            continue
        bound = bound_of(ix, server, deflate)
        ratio = ""
        if uv is not None and uv["median"] and best["median"] is not None:
            ratio = f"{best['median'] / uv['median']:.2f}x"
            if bound_of(ix, "uvicorn-relay", deflate) != "server":
                ratio += " (relay: a lower bound)"

        def get(metric: str, who: str = server) -> dict[str, Any] | None:
            return ix.get("throughput", POINT, metric, who, deflate)

        body.append(
            [server, rate_cell(ix, server, deflate), bound, ratio]
            + [cell(get(m)) for m in ("p99_at_max_ms", "server_cores_at_max", "load_cores_at_max")]
        )
    if not body:
        return []
    plan = summary.get("plan", {})
    clients, limit = plan.get("tp_clients", 10), plan.get("tp_p99_ms", 100)
    header = [
        "server",
        "edits/s held",
        "bound",
        "/uv",
        "p99 ms there",
        "server cores there",
        "load-generator cores there",
    ]
    return [
        "",
        f"#### Throughput: the highest edit rate a room of {clients} holds at p99 <= {limit:g} ms",
        "",
        "`>=` and bound `generator`: the load generator ran out first (a lower bound); `top "
        "rate`: the plan's highest rate held.",
        "",
        *table(header, body),
    ]
