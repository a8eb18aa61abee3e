"""bench/scaling.py's pure parts, and the report's order of sections."""

from __future__ import annotations

import pytest
import report
import scaling
from report import Index

from tests.bench.synthetic import row, summary


def test_the_rss_slope_is_kb_per_socket_over_the_medians() -> None:
    points = ["0", "1000", "10000"]
    mb = [50.0, 50.0 + 1000 * 30 / 1024, 50.0 + 10_000 * 30 / 1024]  # 30 KB a socket
    rows = [row("sockets", p, "rss_mb", "collab", m) for p, m in zip(points, mb, strict=True)]
    assert scaling.slope_kb(points, list(rows)) == pytest.approx(30.0)
    assert scaling.slope_kb(points[:1], list(rows[:1])) is None
    assert scaling.slope_kb(points[:2], [rows[0], None]) is None


def test_the_sockets_table_has_a_column_per_step_and_the_slope() -> None:
    rows = [
        row("sockets", "0", "rss_mb", "collab", 50.0, reps=1),
        row("sockets", "10000", "rss_mb", "collab", 50.0 + 10_000 * 30 / 1024, reps=1),
        row("sockets", "1000", "rss_mb", "collab", 50.0 + 1000 * 30 / 1024, saturated=True, reps=1),
    ]
    lines = scaling.render_sockets(Index(summary(rows)), False, summary(rows))
    assert "| server | 0 sockets | 1,000 sockets | 10,000 sockets | KB / socket (slope) |" in lines
    assert "| collab | 50.0 | 79.3 * | 343 | 30.0 |" in lines
    assert scaling.render_sockets(Index(summary(rows)), True, summary(rows)) == []


def test_the_docsize_table_compares_the_cold_load_with_hocuspocus() -> None:
    def size(server: str, load: float) -> list[dict[str, object]]:
        return [
            row("docsize", "16MB", "fill_mb_per_s", server, 20.0, reps=1),
            row("docsize", "16MB", "load_ms", server, load, reps=1),
        ]

    rows = size("collab", 150.0) + size("hocuspocus", 300.0)
    lines = scaling.render_docsize(Index(summary(rows)), False, summary(rows))
    assert "| 16MB | collab | 20.0 | - | - | - | 150 | 0.50x | - |" in lines


def test_a_process_that_cannot_hold_its_sockets_fails_before_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scaling, "fd_limit", lambda: 4096)
    scaling._check_fds(server_sockets=3000, per_worker=1000)
    with pytest.raises(RuntimeError, match="10200 open files needed in one process"):
        scaling._check_fds(server_sockets=10_000, per_worker=2500)


def test_the_report_puts_the_plots_first_and_the_closing_sections_after_the_targets() -> None:
    rows = [row("latency", "1x2", "p99_ms", "collab", 3.0)]

    def closing(ix: Index, deflate: bool, s: dict[str, object]) -> list[str]:
        return ["", "CLOSING"]

    text = report.render(summary(rows), closing=[closing], preface="PLOTS\n")
    assert text.index("PLOTS") < text.index("### permessage-deflate off")
    assert text.index("#### collab against the targets") < text.index("CLOSING")
