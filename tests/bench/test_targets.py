"""bench/targets.py: issue 11's targets computed from a run's medians."""

from __future__ import annotations

from typing import Any

import targets
from report import Index
from targets import Target

from tests.bench.synthetic import row, summary


def lat(point: str, server: str, p99: float, cpu: float, **kw: Any) -> list[dict[str, Any]]:
    return [
        row("latency", point, "p99_ms", server, p99, **kw),
        row("latency", point, "cpu_s_per_1k", server, cpu, **kw),
    ]


def tp(server: str, rate: float | None, bound: str) -> list[dict[str, Any]]:
    return [
        row("throughput", "room", "max_rate", server, rate),
        row("throughput", "room", "generator_bound", server, float(bound == "generator")),
        row("throughput", "room", "top_rate_held", server, float(bound == "top rate")),
    ]


def found(rows: list[dict[str, Any]], deflate: bool = False) -> dict[str, Target]:
    return {t.name: t for t in targets.targets(Index(summary(rows)), deflate)}


def test_blocking_targets_come_first_and_each_point_gets_its_rows() -> None:
    rows = (
        lat("1x2", "collab", 3.0, 1.0)
        + lat("1x2", "hocuspocus", 2.0, 1.0)
        + lat("1x2", "uvicorn-relay", 2.0, 0.5)
        + lat("20x50", "collab", 30.0, 0.05)
        + lat("20x50", "hocuspocus", 33.0, 0.02)
        + lat("20x50", "uvicorn-relay", 900.0, 0.1, saturated=True)
    )
    listed = targets.targets(Index(summary(rows)), False)
    blocking = [t.name for t in listed if t.blocking]
    assert blocking == [
        "p99 at 20x50 <= Hocuspocus",
        "CPU per delivered update at 1x2 <= Hocuspocus",
        "CPU per delivered update at 20x50 <= Hocuspocus",
    ]
    assert all(t.blocking for t in listed[: len(blocking)])
    by = {t.name: t for t in listed}
    assert by["p99 at 20x50 <= Hocuspocus"].verdict == "met"
    assert by["p99 at 20x50 <= Hocuspocus"].ratio == "0.91x"
    assert by["p99 at 20x50 <= Hocuspocus"].value == "30.0 ms"
    assert by["p99 at 20x50 <= Hocuspocus"].anchor == "hocuspocus 33.0 ms"
    assert by["CPU per delivered update at 1x2 <= Hocuspocus"].verdict == "met"  # 1.00x
    assert by["CPU per delivered update at 1x2 <= 0.8x Hocuspocus"].verdict == "missed"
    assert by["CPU per delivered update at 20x50 <= Hocuspocus"].verdict == "missed"
    assert by["CPU per delivered update at 20x50 <= Hocuspocus"].ratio == "2.50x"
    assert by["p99 at 1x2 <= 1.0x uvicorn relay"].verdict == "missed"  # 1.50x
    # The relay saturated at 20x50: no comparison, and the table says why.
    relay = by["p99 at 20x50 <= 1.0x uvicorn relay"]
    assert (relay.ratio, relay.verdict) == ("", "n/a (load generator saturated on uvicorn-relay)")


def test_a_missing_or_saturated_figure_is_not_compared() -> None:
    rows = lat("20x50", "collab", 30.0, 0.05, saturated=True) + lat("20x50", "hocuspocus", 9, 0.1)
    by = found(rows)
    assert by["p99 at 20x50 <= Hocuspocus"].verdict == "n/a (load generator saturated)"
    by = found(lat("20x50", "collab", 30.0, 0.05))
    assert by["p99 at 20x50 <= Hocuspocus"].verdict == "n/a (hocuspocus not measured)"
    by = found(lat("20x50", "hocuspocus", 30.0, 0.05))
    assert by["p99 at 20x50 <= Hocuspocus"].verdict == "n/a (collab not measured)"


def test_each_deflate_mode_is_judged_on_its_own_rows() -> None:
    rows = lat("20x50", "collab", 30.0, 0.05) + lat("20x50", "hocuspocus", 20.0, 0.05)
    rows += lat("20x50", "collab", 10.0, 0.05, deflate=True)
    rows += lat("20x50", "hocuspocus", 20.0, 0.05, deflate=True)
    assert found(rows)["p99 at 20x50 <= Hocuspocus"].verdict == "missed"
    assert found(rows, deflate=True)["p99 at 20x50 <= Hocuspocus"].verdict == "met"


THROUGHPUT = "throughput: at the generator's ceiling, or >= 0.8x uvicorn relay"


def test_throughput_is_met_at_the_generators_ceiling_or_at_0_8x_a_measurable_relay() -> None:
    # collab held all the generator could offer, like the relay: met.
    t = found(tp("collab", 3000, "generator") + tp("uvicorn-relay", 3200, "generator"))
    assert t[THROUGHPUT].verdict == "met"
    # The relay ran out by itself (measurable): 0.8x of it is the bar.
    t = found(tp("collab", 2500, "server") + tp("uvicorn-relay", 3000, "server"))
    assert (t[THROUGHPUT].ratio, t[THROUGHPUT].verdict) == ("0.83x", "met")
    t = found(tp("collab", 2000, "server") + tp("uvicorn-relay", 3000, "server"))
    assert t[THROUGHPUT].verdict == "missed"
    # The relay held all the generator offered, collab ran out first: short of the ceiling,
    # however close the ratio.
    t = found(tp("collab", 2900, "server") + tp("uvicorn-relay", 3000, "generator"))
    assert t[THROUGHPUT].verdict == "missed (below the generator's ceiling)"
    assert t[THROUGHPUT].anchor == "uvicorn-relay 3,000 edits/s (generator)"
    t = found(tp("collab", None, "server") + tp("uvicorn-relay", 3000, "server"))
    assert t[THROUGHPUT].verdict == "missed (not even the lowest rate held)"
    t = found(tp("collab", None, "generator") + tp("uvicorn-relay", 3000, "server"))
    assert t[THROUGHPUT].verdict == "n/a (the load generator saturated at every rate tried)"
    assert THROUGHPUT not in found(tp("uvicorn-relay", 3000, "server"))


def test_memory_targets() -> None:
    def conn(server: str, per_conn: float, per_room: float) -> list[dict[str, Any]]:
        return [
            row("connections", "idle", "kb_per_conn", server, per_conn),
            row("connections", "idle", "kb_per_room", server, per_room),
        ]

    rows = conn("collab", 24.0, 4.0) + conn("uvicorn-relay", 21.0, -1.0)
    rows += conn("hocuspocus", 49.0, 8.7)
    rows.append(row("sockets", "10000", "rss_mb", "collab", 380.0))
    rows.append(row("sockets", "10000", "rss_mb", "hocuspocus", 700.0))
    by = found(rows)
    assert by["KB per idle synced socket <= 1.2x uvicorn relay"].verdict == "met"  # 1.14x
    assert by["KB per loaded room <= 0.5x Hocuspocus"].verdict == "met"  # 0.46x
    rss = by["10,000 idle synced sockets with presence in 1,000 rooms < 400 MB RSS"]
    assert (rss.value, rss.ratio, rss.verdict) == ("380 MB", "0.95x", "met")
    assert rss.anchor == "limit 400 MB; hocuspocus 700 MB"
    rows[-2] = row("sockets", "10000", "rss_mb", "collab", 400.0)
    rss = found(rows)["10,000 idle synced sockets with presence in 1,000 rooms < 400 MB RSS"]
    assert rss.verdict == "missed"  # under 400, not at it
    rows[-2] = row("sockets", "5000", "rss_mb", "collab", 200.0)
    rss = found(rows)["10,000 idle synced sockets with presence in 1,000 rooms < 400 MB RSS"]
    assert rss.verdict == "n/a (collab not measured at 10,000)"


def test_cold_targets_need_every_update_persisted() -> None:
    def cold(server: str, full: float, ingest: float, persisted: float) -> list[dict[str, Any]]:
        return [
            row("cold", "100k", "full_ms", server, full),
            row("cold", "100k", "ingest_per_s", server, ingest),
            row("cold", "100k", "persisted", server, persisted, low=persisted),
        ]

    rows = cold("collab", 5.0, 17_000, 1.0) + cold("hocuspocus", 6.0, 1500, 1.0)
    rows += cold("y-websocket", 200.0, 20_000, 0.9)
    by = found(rows)
    full = "restart -> full content of 100k updates <= Hocuspocus, every update persisted"
    assert by[full].verdict == "met"
    assert by["ingest of 100k updates >= 0.8x y-websocket"].verdict == "met"  # 0.85x
    rows = cold("collab", 5.0, 15_000, 0.99) + cold("hocuspocus", 6.0, 1500, 1.0)
    rows += cold("y-websocket", 200.0, 20_000, 0.9)
    by = found(rows)
    assert by[full].verdict == "missed (not every update persisted)"
    assert by["ingest of 100k updates >= 0.8x y-websocket"].verdict == "missed"  # 0.75x


def test_the_table_counts_the_blocking_verdicts() -> None:
    rows = lat("20x50", "collab", 30.0, 0.05) + lat("20x50", "hocuspocus", 20.0, 0.05)
    lines = targets.render(Index(summary(rows)), False, summary(rows))
    text = "\n".join(lines)
    assert "#### collab against issue 11's targets" in text
    assert "Blocking targets: 1 met, 1 missed, 0 not measurable here." in text
    assert "| p99 at 20x50 <= Hocuspocus | **yes** | 30.0 ms | hocuspocus 20.0 ms | 1.50x |" in text


def test_the_p99_target_shows_the_commit_time_and_names_a_gap_that_is_the_commit_alone() -> None:
    rows = lat("1x10", "collab", 5.0, 0.2) + lat("1x10", "uvicorn-relay", 2.5, 0.06)
    rows.append(row("latency", "1x10", "commit_mean_ms", "collab", 2.0))
    t = found(rows)["p99 at 1x10 <= 1.0x uvicorn relay"]
    assert t.value == "5.00 ms (commit mean 2.00 ms)"
    assert t.verdict == "missed"  # 5.0 - 2.0 = 3.0 > 2.5: more than the commit
    rows[-1] = row("latency", "1x10", "commit_mean_ms", "collab", 3.0)
    t = found(rows)["p99 at 1x10 <= 1.0x uvicorn relay"]
    assert t.verdict == "missed (p99 - commit = 2.00 ms <= the relay's: the gap is the commit)"
    assert found(rows[:-1])["p99 at 1x10 <= 1.0x uvicorn relay"].value == "5.00 ms"


def test_targets_of_workloads_the_run_left_out_are_not_listed() -> None:
    names = set(found(lat("20x50", "collab", 30.0, 0.05)))
    assert names == {
        "p99 at 20x50 <= Hocuspocus",
        "CPU per delivered update at 20x50 <= Hocuspocus",
        "p99 at 20x50 <= 1.0x uvicorn relay",
        "CPU per delivered update at 20x50 <= 0.8x Hocuspocus",
    }
    assert targets.render(Index(summary([])), False, summary([])) == []
