"""Issue 11's targets, each checked against the run's medians (one table per deflate mode).

A target compares collab's median with an anchor's (or with a fixed limit): the ratio collab /
anchor, met when it is on the right side of the target's factor. A comparison is "n/a" with
its reason where it means nothing: a figure not measured, or measured with the load generator
saturated (the generator measured itself), or an anchor value of zero. The blocking targets
(the issue is not resolved without them) come first and are marked.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from report import Index, num, table
from throughput import POINT as TP_POINT
from throughput import bound_of

RSS_LIMIT_MB = 400.0  # 10,000 idle synced sockets with presence in 1,000 rooms
RSS_SOCKETS = "10000"


@dataclass(frozen=True)
class Target:
    name: str
    blocking: bool
    value: str  # collab's median, with its unit
    anchor: str  # who and what it is compared with
    ratio: str  # collab / anchor ("" when none)
    verdict: str  # "met", "missed" or "n/a (why)"


def _median(row: dict[str, Any] | None) -> float | None:
    return None if row is None else row["median"]


def compare(
    name: str,
    blocking: bool,
    row: dict[str, Any] | None,
    base: dict[str, Any] | None,
    anchor_name: str,
    factor: float,
    higher_is_better: bool = False,
    unit: str = "",
) -> Target:
    """collab's ``row`` against the anchor's ``base``: met when row <= factor x base (or >=,
    where higher is better)."""
    a, b = _median(row), _median(base)
    value = "-" if a is None else num(a) + unit
    anchor = f"{anchor_name} " + ("-" if b is None else num(b) + unit)
    if a is None:
        return Target(name, blocking, value, anchor, "", "n/a (collab not measured)")
    if b is None:
        return Target(name, blocking, value, anchor, "", f"n/a ({anchor_name} not measured)")
    if row is not None and row["saturated"]:
        return Target(name, blocking, value, anchor, "", "n/a (load generator saturated)")
    if base is not None and base["saturated"]:
        why = f"n/a (load generator saturated on {anchor_name})"
        return Target(name, blocking, value, anchor, "", why)
    if b <= 0 or math.isinf(b):
        return Target(name, blocking, value, anchor, "", f"n/a ({anchor_name} at {num(b)})")
    ratio = a / b
    met = ratio >= factor if higher_is_better else ratio <= factor
    shown = "inf" if math.isinf(ratio) else f"{ratio:.2f}x"
    return Target(name, blocking, value, anchor, shown, "met" if met else "missed")


def targets(ix: Index, deflate: bool) -> list[Target]:
    """Every target of issue 11 measurable from this run's workloads, blocking ones first."""
    return [t for t in _all(ix, deflate) if t.blocking] + [
        t for t in _all(ix, deflate) if not t.blocking
    ]


def _all(ix: Index, deflate: bool) -> Iterator[Target]:
    def get(workload: str, point: str, metric: str, server: str) -> dict[str, Any] | None:
        return ix.get(workload, point, metric, server, deflate)

    def ran(workload: str) -> bool:
        """Whether the run has this workload in this mode (no rows about workloads not run)."""
        return any(k[0] == workload and k[4] == deflate for k in ix.rows)

    points = ix.points("latency", "p99_ms", deflate)
    # Blocking: at 20x50, p99 <= Hocuspocus's; CPU per delivered update <= Hocuspocus's at
    # every point.
    if "20x50" in points:
        yield compare(
            "p99 at 20x50 <= Hocuspocus",
            True,
            get("latency", "20x50", "p99_ms", "collab"),
            get("latency", "20x50", "p99_ms", "hocuspocus"),
            "hocuspocus",
            1.0,
            unit=" ms",
        )
    for point in points:
        yield compare(
            f"CPU per delivered update at {point} <= Hocuspocus",
            True,
            get("latency", point, "cpu_s_per_1k", "collab"),
            get("latency", point, "cpu_s_per_1k", "hocuspocus"),
            "hocuspocus",
            1.0,
            unit=" CPU-s/1k",
        )
    # p99 <= 1.0x the uvicorn relay where the relay is not saturated, with collab's commit
    # (fsync) time beside it: the relay persists nothing.
    for point in points:
        p99 = get("latency", point, "p99_ms", "collab")
        relay = get("latency", point, "p99_ms", "uvicorn-relay")
        target = compare(
            f"p99 at {point} <= 1.0x uvicorn relay",
            False,
            p99,
            relay,
            "uvicorn-relay",
            1.0,
            unit=" ms",
        )
        yield with_commit(target, p99, relay, get("latency", point, "commit_mean_ms", "collab"))
    for point in points:
        yield compare(
            f"CPU per delivered update at {point} <= 0.8x Hocuspocus",
            False,
            get("latency", point, "cpu_s_per_1k", "collab"),
            get("latency", point, "cpu_s_per_1k", "hocuspocus"),
            "hocuspocus",
            0.8,
            unit=" CPU-s/1k",
        )
    yield from _throughput(ix, deflate)
    if ran("connections"):
        yield from _memory(get)
    if ran("sockets"):
        yield _rss(ix, deflate)
    for point in ix.points("cold", "full_ms", deflate):
        if point != "100k":
            continue
        full = compare(
            "restart -> full content of 100k updates <= Hocuspocus, every update persisted",
            False,
            get("cold", point, "full_ms", "collab"),
            get("cold", point, "full_ms", "hocuspocus"),
            "hocuspocus",
            1.0,
            unit=" ms",
        )
        persisted = get("cold", point, "persisted", "collab")
        if full.verdict == "met" and (
            persisted is None or persisted["min"] is None or persisted["min"] < 1.0
        ):
            full = dataclasses.replace(full, verdict="missed (not every update persisted)")
        yield full
        yield compare(
            "ingest of 100k updates >= 0.8x y-websocket",
            False,
            get("cold", point, "ingest_per_s", "collab"),
            get("cold", point, "ingest_per_s", "y-websocket"),
            "y-websocket",
            0.8,
            higher_is_better=True,
            unit=" updates/s",
        )


Getter = Callable[[str, str, str, str], dict[str, Any] | None]  # (workload, point, metric, server)


def _memory(get: Getter) -> Iterator[Target]:
    yield compare(
        "KB per idle synced socket <= 1.2x uvicorn relay",
        False,
        get("connections", "idle", "kb_per_conn", "collab"),
        get("connections", "idle", "kb_per_conn", "uvicorn-relay"),
        "uvicorn-relay",
        1.2,
        unit=" KB",
    )
    yield compare(
        "KB per loaded room <= 0.5x Hocuspocus",
        False,
        get("connections", "idle", "kb_per_room", "collab"),
        get("connections", "idle", "kb_per_room", "hocuspocus"),
        "hocuspocus",
        0.5,
        unit=" KB",
    )


def with_commit(
    target: Target,
    p99: dict[str, Any] | None,
    relay: dict[str, Any] | None,
    commit: dict[str, Any] | None,
) -> Target:
    """The p99 target with collab's mean commit time beside its p99; a miss whose p99 less
    that commit time is within the relay's p99 says that the gap is the commit alone."""
    c = _median(commit)
    if c is None:
        return target
    target = dataclasses.replace(target, value=f"{target.value} (commit mean {num(c)} ms)")
    a, b = _median(p99), _median(relay)
    if target.verdict == "missed" and a is not None and b is not None and a - c <= b:
        why = f"missed (p99 - commit = {num(a - c)} ms <= the relay's: the gap is the commit)"
        target = dataclasses.replace(target, verdict=why)
    return target


def _throughput(ix: Index, deflate: bool) -> Iterator[Target]:
    """At the generator's ceiling like every anchor, or >= 0.8x the uvicorn relay's rate where
    that can be measured (the relay bound by itself, not by the generator)."""
    name = "throughput: at the generator's ceiling, or >= 0.8x uvicorn relay"
    row = ix.get("throughput", TP_POINT, "max_rate", "collab", deflate)
    base = ix.get("throughput", TP_POINT, "max_rate", "uvicorn-relay", deflate)
    a, b = _median(row), _median(base)
    if row is None:
        return
    value = "-" if a is None else num(a) + " edits/s"
    collab_bound = bound_of(ix, "collab", deflate)
    relay_bound = bound_of(ix, "uvicorn-relay", deflate) if base is not None else None
    anchor = "uvicorn-relay " + ("-" if b is None else num(b) + " edits/s")
    if relay_bound not in (None, "server"):
        anchor += f" ({relay_bound})"
    ratio = f"{a / b:.2f}x" if a is not None and b else ""
    if a is None and collab_bound == "generator":
        why = "n/a (the load generator saturated at every rate tried)"
        yield Target(name, False, value, anchor, ratio, why)
    elif a is None:
        yield Target(name, False, value, anchor, ratio, "missed (not even the lowest rate held)")
    elif collab_bound != "server":
        yield Target(name, False, value + f" ({collab_bound})", anchor, ratio, "met")
    elif b is None or relay_bound is None:
        yield Target(name, False, value, anchor, ratio, "missed (the server was the limit)")
    elif relay_bound == "server":
        yield Target(name, False, value, anchor, ratio, "met" if a >= 0.8 * b else "missed")
    else:
        # The relay held all the generator offered, collab did not: short of the ceiling.
        yield Target(name, False, value, anchor, ratio, "missed (below the generator's ceiling)")


def _rss(ix: Index, deflate: bool) -> Target:
    name = "10,000 idle synced sockets with presence in 1,000 rooms < 400 MB RSS"
    row = ix.get("sockets", RSS_SOCKETS, "rss_mb", "collab", deflate)
    hp = ix.get("sockets", RSS_SOCKETS, "rss_mb", "hocuspocus", deflate)
    value = "-" if _median(row) is None else num(_median(row)) + " MB"
    anchor = f"limit {RSS_LIMIT_MB:g} MB; hocuspocus " + (
        "-" if _median(hp) is None else num(_median(hp)) + " MB"
    )
    a = _median(row)
    if a is None:
        return Target(name, False, value, anchor, "", "n/a (collab not measured at 10,000)")
    ratio = f"{a / RSS_LIMIT_MB:.2f}x"
    return Target(name, False, value, anchor, ratio, "met" if a < RSS_LIMIT_MB else "missed")


def render(ix: Index, deflate: bool, summary: dict[str, Any]) -> list[str]:
    found = targets(ix, deflate)
    if not found:
        return []
    counts = {
        kind: sum(1 for t in found if t.blocking and t.verdict.startswith(kind))
        for kind in ("met", "missed", "n/a")
    }
    body = [
        [t.name, "**yes**" if t.blocking else "", t.value, t.anchor, t.ratio, t.verdict]
        for t in found
    ]
    header = ["target", "blocking", "collab", "anchor", "ratio", "verdict"]
    return [
        "",
        "#### collab against issue 11's targets (medians of this run)",
        "",
        f"Blocking targets: {counts['met']} met, {counts['missed']} missed, "
        f"{counts['n/a']} not measurable here. Ratio: collab / anchor (for the RSS target: "
        "/ the limit).",
        "",
        *table(header, body),
    ]
