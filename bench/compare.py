"""collab against an earlier build of itself: every metric's median side by side, with the ratio.

A row per (deflate mode, workload, point, metric) that either build reported. The ratio is
collab's median over the baseline's; a row is flagged when collab is more than LIMIT worse:
ratio > LIMIT where higher is worse (latency, CPU, memory, lost deliveries, frames), ratio <
1 / LIMIT where higher is better (deliveries/s, ingest rate, completeness, persistence). The
load generator's own figures (its longest loop stall) are shown, never judged.
"""

from __future__ import annotations

import math
from typing import Any

from report import Index, cell, num, table

LIMIT = 1.10
# The load generator's own figures: shown beside the server's, never judged as the server's.
GENERATOR_METRICS = frozenset({"load_stall_max_ms", "load_gc_max_ms", "load_gc_major"})
HIGHER_IS_BETTER = frozenset(
    {
        "deliveries_per_s",
        "ingest_per_s",
        "ingest_complete",
        "persisted",
        "posts_per_s",
        "posts_per_cpu_s",
        "max_rate",
        "step_sent_per_s",
        "step_deliveries_per_s",
        "connect_per_s",
        "fill_mb_per_s",
        "fill_complete",
    }
)
LABELS = {
    "p50_ms": "p50 ms",
    "p99_ms": "p99 ms",
    "lost": "lost deliveries",
    "deliveries_per_s": "deliveries/s",
    "server_cores": "server cores",
    "cpu_s_per_1k": "CPU-s per 1k deliveries",
    "kb_per_conn": "KB / connection",
    "kb_per_room": "KB / room",
    "kb_per_client_10_per_room": "KB / client (10 per room)",
    "kb_per_client_1_per_room": "KB / client (1 per room)",
    "ingest_per_s": "ingest updates/s",
    "ingest_complete": "ingest complete",
    "persisted": "persisted",
    "synced_ms": "restart -> synced ms",
    "full_ms": "restart -> full content ms",
    "frames_per_change": "frames per awareness change",
    "errors": "failed posts",
    "posts_per_s": "posts/s",
    "posts_per_cpu_s": "posts/s per core",
    "answer_p50_ms": "post -> answer p50 ms",
    "answer_p99_ms": "post -> answer p99 ms",
    "max_rate": "edits/s held in a room of 10",
    "generator_bound": "bound by the load generator",
    "top_rate_held": "held the plan's top rate",
    "p99_at_max_ms": "p99 ms at the rate held",
    "server_cores_at_max": "server cores at the rate held",
    "load_cores_at_max": "load-generator cores at the rate held",
    "load_stall_max_ms": "load-generator loop stall max ms",
    "load_gc_max_ms": "load-generator longest GC ms",
    "load_gc_major": "load-generator full GCs in the window",
    "steps": "rate steps",
    "step_p99_ms": "step p99 ms",
    "step_p50_ms": "step p50 ms",
    "step_lost": "step lost deliveries",
    "step_sent_per_s": "step edits sent/s",
    "step_deliveries_per_s": "step deliveries/s",
    "step_server_cores": "step server cores",
    "step_load_cores": "step load-generator cores",
    "step_send_lag_p99_ms": "step send lag p99 ms (generator behind schedule)",
    "rss_mb": "server RSS MB",
    "connect_per_s": "sockets opened/s",
    "fill_mb_per_s": "fill MB/s",
    "fill_complete": "fill complete",
    "load_ms": "restart -> full content ms",
    "rss_mb_loaded": "server RSS MB with the document loaded",
    "commit_mean_ms": "mean group commit ms",
}


def ratio(current: float | None, base: float | None) -> float | None:
    """current / base; None where no ratio means anything (a value missing or not positive)."""
    if current is None or base is None:
        return None
    if current == base:  # 0 and 0 (nothing lost), inf and inf (both lost deliveries)
        return 1.0
    if current < 0 or base < 0:  # a memory slope below zero is noise, not a size
        return None
    if base == 0 or math.isinf(current):
        return math.inf
    return current / base


def worse_by(metric: str, r: float | None) -> float | None:
    """How many times worse collab is (> 1: worse), whichever way the metric points."""
    if r is None:
        return None
    if metric not in HIGHER_IS_BETTER:
        return r
    return math.inf if r == 0 else 1 / r


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["reps"] < 2 or b["reps"] < 2 or None in (a["min"], a["max"], b["min"], b["max"]):
        return False
    return bool(a["min"] <= b["max"] and b["min"] <= a["max"])


def rows(summary: dict[str, Any], current: str, baseline: str) -> list[dict[str, Any]]:
    """The comparison, JSON-ready: one dict per (deflate, workload, point, metric)."""
    ix = Index(summary)
    keys: list[tuple[bool, str, str, str]] = []
    for workload, point, metric, server, deflate in ix.rows:
        key = (deflate, workload, point, metric)
        if server in (current, baseline) and key not in keys:
            keys.append(key)
    keys.sort(key=lambda k: (k[0], summary["workloads"].index(k[1])))  # stable: points in order
    out = []
    for deflate, workload, point, metric in keys:
        a = ix.get(workload, point, metric, current, deflate)
        b = ix.get(workload, point, metric, baseline, deflate)
        r = ratio(a["median"] if a else None, b["median"] if b else None)
        by = worse_by(metric, r)
        out.append(
            {
                "deflate": deflate,
                "workload": workload,
                "point": point,
                "metric": metric,
                "higher_is_better": metric in HIGHER_IS_BETTER,
                current: a,
                baseline: b,
                "ratio": r,
                "worse": by is not None and by > LIMIT and metric not in GENERATOR_METRICS,
                "saturated": bool((a and a["saturated"]) or (b and b["saturated"])),
                "spreads_overlap": a is not None and b is not None and _overlap(a, b),
            }
        )
    return out


def _verdict(row: dict[str, Any]) -> str:
    if row["ratio"] is None:
        return "-"
    by = worse_by(row["metric"], row["ratio"])
    assert by is not None
    if row["metric"] in GENERATOR_METRICS:
        return "the load generator's, not judged"
    text = f"**WORSE** (+{num((by - 1) * 100)}%)" if row["worse"] else "ok"
    notes = [n for n in ("saturated", "spreads overlap") if row[n.replace(" ", "_")]]
    return text + (f"; {', '.join(notes)}" if notes else "")


def _label(row: dict[str, Any]) -> str:
    label = LABELS.get(row["metric"], str(row["metric"]))
    return label + " (higher is better)" if row["higher_is_better"] else label


def render(compared: list[dict[str, Any]], current: str, baseline: str) -> str:
    """The comparison table (markdown), with a one-line verdict above it."""
    worse = [r for r in compared if r["worse"]]
    limit = f"{(LIMIT - 1) * 100:.0f}%"
    head = [
        "",
        f"### {current} against {baseline}",
        "",
        f"Medians of the repetitions (min-max). Ratio = {current} / {baseline}; **WORSE** = "
        f"{current} more than {limit} worse (ratio above {LIMIT:.2f}, or below "
        f"{1 / LIMIT:.2f} where higher is better: deliveries/s, ingest, persisted, posts/s). "
        '`*` = the load generator saturated (the point measured the load generator); "spreads '
        'overlap" = the min-max ranges of the two builds overlap.',
        "",
    ]
    if worse:
        head.append(f"{len(worse)} of {len(compared)} rows more than {limit} worse:")
        head.append("")
        head += [
            f"- {'on' if r['deflate'] else 'off'} {r['workload']} {r['point']} "
            f"{_label(r)}: {num(r['ratio'])}x"
            for r in worse
        ]
        clear = [r for r in worse if not r["saturated"] and not r["spreads_overlap"]]
        head += [
            "",
            f"Of those, {len(clear)} worse beyond the noise: the load generator not saturated "
            "and the two builds' min-max ranges apart" + (":" if clear else "."),
        ]
        if clear:
            head += [""] + [
                f"- {'on' if r['deflate'] else 'off'} {r['workload']} {r['point']} {_label(r)}"
                for r in clear
            ]
    else:
        head.append(f"No row more than {limit} worse.")
    blank = sum(r["ratio"] is None for r in compared)
    if blank:
        head += [
            "",
            f"{blank} of {len(compared)} rows have no ratio (`-`): a build has no value there "
            "(failed, or not measured), or a value below zero.",
        ]
    body = [
        [
            "on" if r["deflate"] else "off",
            r["workload"],
            r["point"],
            _label(r),
            cell(r[current]),
            cell(r[baseline]),
            "-" if r["ratio"] is None else f"{num(r['ratio'])}x",
            _verdict(r),
        ]
        for r in compared
    ]
    header = ["deflate", "workload", "point", "metric", current, baseline, "ratio", "verdict"]
    return "\n".join([*head, "", *table(header, body)]) + "\n"
