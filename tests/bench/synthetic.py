"""Small synthetic run summaries, shaped as bench/run.py's ``summarize`` writes them."""

from __future__ import annotations

from typing import Any

SERVERS = ["collab", "node-relay", "uvicorn-relay", "y-websocket", "hocuspocus"]


def row(
    workload: str,
    point: str,
    metric: str,
    server: str,
    median: float | None,
    *,
    deflate: bool = False,
    saturated: bool = False,
    low: float | None = None,
    high: float | None = None,
    reps: int = 3,
) -> dict[str, Any]:
    """One summarized measurement: a median with its spread (min-max, the median by default)."""
    return {
        "workload": workload,
        "point": point,
        "metric": metric,
        "server": server,
        "deflate": deflate,
        "reps": reps,
        "values": [median] * reps,
        "saturated": saturated,
        "median": median,
        "min": median if low is None else low,
        "max": median if high is None else high,
    }


def summary(rows: list[dict[str, Any]], servers: list[str] | None = None) -> dict[str, Any]:
    return {
        "date": "2026-12-04T160000",
        "quick": False,
        "elapsed_s": 60.0,
        "reps": 3,
        "servers": servers or SERVERS,
        "plan": {"tp_clients": 10, "tp_p99_ms": 100, "sockets_per_room": 10},
        "machine": {
            "commit": "abc1234",
            "platform": "Linux",
            "python": "3.11",
            "node": "v20",
            "pinning": "not pinned",
        },
        "failures": [],
        "results": rows,
    }
