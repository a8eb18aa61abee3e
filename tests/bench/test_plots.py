"""bench/plots.py: the series read from a summary, and the PNG files written from them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import plots
from plots import Point

from tests.bench.synthetic import row, summary

PNG = b"\x89PNG\r\n\x1a\n"


def scaling_rows(deflate: bool = False) -> list[dict[str, Any]]:
    """A little of every workload a plot reads, for collab and two anchors."""
    rows: list[dict[str, Any]] = []
    for server, k in (("collab", 3.0), ("uvicorn-relay", 1.0), ("hocuspocus", 2.0)):
        for clients in (2, 10, 50):
            for rooms in (1, 20):
                p = f"{rooms}x{clients}"
                rows.append(row("latency", p, "p99_ms", server, k * clients, deflate=deflate))
                rows.append(row("latency", p, "cpu_s_per_1k", server, k / clients, deflate=deflate))
        for sockets in (0, 1000, 10_000):
            rss = 50 + k * sockets / 100
            rows.append(row("sockets", str(sockets), "rss_mb", server, rss, deflate=deflate))
        for rate in (500, 1000, 2000):
            p99 = k * rate / 100
            rows.append(row("throughput", f"{rate}/s", "step_p99_ms", server, p99, deflate=deflate))
        if server != "uvicorn-relay":  # a relay stores nothing: no docsize rows
            for mb in (1, 4, 16):
                p = f"{mb}MB"
                rows.append(row("docsize", p, "load_ms", server, k * mb * 10, deflate=deflate))
                rows.append(row("docsize", p, "fill_mb_per_s", server, 40 / k, deflate=deflate))
    return rows


def test_a_series_holds_the_finite_medians_by_x_with_spread_and_saturation() -> None:
    rows = [
        row("latency", "1x50", "p99_ms", "collab", 14.0, low=12.0, high=16.0),
        row("latency", "1x10", "p99_ms", "collab", 5.0, saturated=True),
        row("latency", "1x200", "p99_ms", "collab", math.inf),  # lost deliveries
        row("latency", "20x10", "p99_ms", "collab", 9.0),  # 20 rooms: another curve
        row("latency", "1x10", "p99_ms", "collab", 7.0, deflate=True),
        row("latency", "1x10", "p50_ms", "collab", 2.0),
        row("latency", "1x10", "p99_ms", "hocuspocus", 6.0),
    ]
    got = plots.series(summary(rows), "latency", "p99_ms", False, plots.clients_of(1))
    assert list(got) == ["collab", "hocuspocus"]
    assert got["collab"] == [Point(10, 5.0, 5.0, 5.0, True), Point(50, 14.0, 12.0, 16.0, False)]
    assert got["hocuspocus"] == [Point(10, 6.0, 6.0, 6.0, False)]


def test_points_are_read_back_to_their_x() -> None:
    assert plots.clients_of(20)("20x50") == 50
    assert plots.clients_of(20)("1x50") is None
    assert plots.number("10000") == 10_000
    assert plots.megabytes("64MB") == 64
    assert plots.offered_rate("1414/s") == 1414
    assert plots.offered_rate("1414/s superseded") is None
    assert plots.offered_rate("room") is None


def test_every_plot_is_written_as_a_png_for_each_mode_with_data(tmp_path: Path) -> None:
    latency_on = [r for r in scaling_rows(deflate=True) if r["workload"] == "latency"]
    data = summary(scaling_rows(deflate=False) + latency_on)
    written = plots.write_all(data, tmp_path / "plots")
    names = sorted(p.name for p in written)
    # Deflate on has only latency rows: its clients figure, no other.
    assert names == [
        "clients-off.png",
        "clients-on.png",
        "docsize-off.png",
        "sockets-off.png",
        "throughput-off.png",
    ]
    for path in written:
        head = path.read_bytes()[:8]
        assert head == PNG, path
        assert path.stat().st_size > 5_000, path  # axes, lines and labels, not a blank
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == names


def test_nothing_is_written_without_data(tmp_path: Path) -> None:
    assert plots.write_all(summary([]), tmp_path) == []
    # One client count per room count is a point, not a curve: no clients figure.
    one = [row("latency", "1x10", "p99_ms", "collab", 5.0)]
    assert plots.write_all(summary(one), tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_the_markdown_links_the_plots_relative_to_the_page(tmp_path: Path) -> None:
    files = [tmp_path / "results" / "plots" / "clients-off.png"]
    text = plots.markdown(files, tmp_path)
    assert "![clients-off](results/plots/clients-off.png)" in text
    other = tmp_path / "results" / "raw" / "2026"
    assert "](../../plots/clients-off.png)" in plots.markdown(files, other)
    assert plots.markdown([], tmp_path) == ""
