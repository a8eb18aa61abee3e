"""bench/chat.py's table and bench/workloads.py's load-generator stall (profiles/CHAT-LATENCY.md):
a post -> seen p99 shown beside the longest stall of the generator that measured it."""

from __future__ import annotations

from typing import Any

import chat
from report import Index
from workloads import load_stall

from tests.bench.synthetic import row, summary


def _worker(max_ms: float | None) -> dict[str, Any]:
    return {"loop": {"p99_ms": 1.0, "max_ms": max_ms}} if max_ms is not None else {}


def test_the_stall_is_the_longest_of_any_load_process() -> None:
    rows = load_stall("20x50 ws", [_worker(12.5), _worker(37.9)], False)
    assert [(r["point"], r["metric"], r["value"]) for r in rows] == [
        ("20x50 ws", "load_stall_max_ms", 37.9)
    ]


def test_the_generators_collections_are_reported_beside_its_stall() -> None:
    def gc(max_ms: float, major: int) -> dict[str, Any]:
        return {"count": 9, "total_ms": 30.0, "max_ms": max_ms, "major": major, "major_max_ms": 0}

    workers = [_worker(12.5), _worker(37.9)]
    workers[0]["loop"]["gc"] = gc(4.5, 0)
    workers[1]["loop"]["gc"] = gc(29.3, 2)
    rows = load_stall("20x50 ws", workers, False)
    assert [(r["metric"], r["value"]) for r in rows] == [
        ("load_stall_max_ms", 37.9),
        ("load_gc_max_ms", 29.3),
        ("load_gc_major", 2),
    ]
    del workers[1]["loop"]["gc"]  # an older generator: the stall alone
    assert [r["metric"] for r in load_stall("20x50 ws", workers, False)] == ["load_stall_max_ms"]


def test_no_stall_is_reported_when_a_process_did_not_time_its_loop() -> None:
    assert load_stall("1x50 api", [_worker(12.5), _worker(None)], False) == []
    assert load_stall("1x50 api", [], False) == []


def test_the_chat_table_shows_the_stalls_of_the_row_and_of_its_relay() -> None:
    def at(point: str, metric: str, value: float) -> dict[str, Any]:
        return row("chat", point, metric, "collab", value)

    rows = [
        at("20x50 relay", "p99_ms", 4.0),
        at("20x50 relay", "load_stall_max_ms", 8.4),
        at("20x50 ws", "p99_ms", 50.0),
        at("20x50 ws", "load_stall_max_ms", 37.9),
    ]
    run = summary(rows, ["collab"])
    run["plan"]["chat_points"] = [[20, 50, 0.1]]
    lines = chat.render(Index(run), False, run)
    header = next(line for line in lines if line.startswith("| rooms x readers"))
    assert header.endswith("| generator stall max ms | ... at the relay |")
    line = next(line for line in lines if "socket post (101)" in line and "collab" in line)
    assert line.endswith("| 37.9 (37.9-37.9) | 8.40 (8.40-8.40) |")
