"""bench/compare.py: collab against an earlier build, and which flagged rows are beyond noise."""

from __future__ import annotations

import compare

from tests.bench.synthetic import row, summary

BASE = "collab@abc1234"


def compared(*rows: dict[str, object]) -> list[dict[str, object]]:
    run = summary(list(rows), ["collab", BASE])
    run["workloads"] = ["latency"]
    return compare.rows(run, "collab", BASE)


def test_a_point_worse_by_more_than_the_limit_is_flagged_and_a_better_one_is_not() -> None:
    out = compared(
        row("latency", "20x10", "p99_ms", "collab", 12.0),
        row("latency", "20x10", "p99_ms", BASE, 10.0),
        row("latency", "20x10", "deliveries_per_s", "collab", 1000.0),
        row("latency", "20x10", "deliveries_per_s", BASE, 800.0),
    )
    assert [(r["metric"], r["worse"]) for r in out] == [
        ("p99_ms", True),
        ("deliveries_per_s", False),
    ]


def test_only_rows_apart_from_the_noise_are_listed_as_worse_beyond_it() -> None:
    text = compare.render(
        compared(
            # worse, ranges apart, not saturated: beyond the noise
            row("latency", "20x10", "p99_ms", "collab", 12.0, low=11.5, high=12.5),
            row("latency", "20x10", "p99_ms", BASE, 10.0, low=9.5, high=10.5),
            # worse, but the ranges overlap
            row("latency", "1x50", "p99_ms", "collab", 16.8, low=12.4, high=17.4),
            row("latency", "1x50", "p99_ms", BASE, 10.7, low=10.5, high=17.6),
            # worse, ranges apart, but the load generator saturated
            row("latency", "20x50", "p50_ms", "collab", 236.0, low=220, high=314, saturated=True),
            row("latency", "20x50", "p50_ms", BASE, 30.1, low=23.9, high=131, saturated=True),
        ),
        "collab",
        BASE,
    )
    assert "3 of 3 rows more than 10% worse" in text
    assert "Of those, 1 worse beyond the noise" in text
    beyond = text.split("beyond the noise", 1)[1].split("|", 1)[0]
    assert "20x10 p99 ms" in beyond
    assert "1x50" not in beyond and "20x50" not in beyond


def test_no_row_worse_says_so() -> None:
    text = compare.render(
        compared(
            row("latency", "20x10", "p99_ms", "collab", 10.0),
            row("latency", "20x10", "p99_ms", BASE, 10.0),
        ),
        "collab",
        BASE,
    )
    assert "No row more than 10% worse." in text
    assert "beyond the noise" not in text


def test_the_load_generators_own_figures_are_shown_but_not_judged() -> None:
    out = compared(
        row("latency", "20x10", "load_stall_max_ms", "collab", 20.0),
        row("latency", "20x10", "load_stall_max_ms", BASE, 10.0),
    )
    assert [r["worse"] for r in out] == [False]
    assert "not judged" in compare.render(out, "collab", BASE)
