"""bench/nodes.py's pure parts: how clients are dealt to nodes, remote updates, the figures."""

from __future__ import annotations

import pytest
from nodes import NODES, deal, figures, parse_args, remote_updates

ROOMS = [f"r{i}" for i in range(6)]


def test_one_and_affinity_give_each_room_wholly_to_one_process() -> None:
    for config in ("one", "affinity"):
        shares = deal(config, ROOMS, 6)
        assert len(shares) == NODES
        for room in ROOMS:
            holders = [s for s in shares if room in s.rooms]
            assert len(holders) == 1 and holders[0].rooms[room] == list(range(6))
    assert {s.node for s in deal("one", ROOMS, 6)} == {0}
    affinity = deal("affinity", ROOMS, 6)
    assert [s.node for s in affinity] == [0, 1, 2]
    assert [sorted(s.rooms) for s in affinity] == [["r0", "r3"], ["r1", "r4"], ["r2", "r5"]]


def test_third_is_the_first_affinity_process_alone_on_a_node_of_its_own() -> None:
    (share,) = deal("third", ROOMS, 6)
    assert share == deal("affinity", ROOMS, 6)[0]
    assert share.node == 0 and sorted(share.rooms) == ["r0", "r3"]
    assert remote_updates("third", [share], {"r0": 10, "r3": 10}) == 0


def test_lone_deals_as_affinity_does_with_nothing_remote() -> None:
    lone = deal("lone", ROOMS, 6)
    assert lone == deal("affinity", ROOMS, 6)
    assert remote_updates("lone", lone, {r: 10 for r in ROOMS}) == 0
    # the fan-out's share: the same three processes on one core, with and without it
    out = figures({"lone": {**run(2.0, 9_000), "idle_cpu_s": 0.2}, "affinity": run(2.4, 9_000)})
    assert out["affinity_over_lone"] == pytest.approx(1.2)
    assert "affinity_over_lone_busy" not in out  # affinity has no idle figure here


def test_split_deals_every_room_over_every_node() -> None:
    shares = deal("split", ROOMS, 6)
    assert [s.node for s in shares] == [0, 1, 2]
    for room in ROOMS:
        ids = sorted(i for s in shares for i in s.rooms[room])
        assert ids == list(range(6))
        assert [len(s.rooms[room]) for s in shares] == [2, 2, 2]
    # Fewer clients than nodes: a process without a client of the room does not hold it.
    assert [sorted(s.rooms) for s in deal("split", ["r"], 2)] == [["r"], ["r"], []]


def test_remote_updates_count_each_edit_once_per_other_hosting_node() -> None:
    counted = {room: 10 for room in ROOMS}
    assert remote_updates("one", deal("one", ROOMS, 6), counted) == 0
    assert remote_updates("affinity", deal("affinity", ROOMS, 6), counted) == 0
    assert remote_updates("split", deal("split", ROOMS, 6), counted) == 6 * 10 * 2
    assert remote_updates("split", deal("split", ["r"], 2), {"r": 10}) == 10


def run(cpu: float, deliveries: int, remote: int = 0) -> dict[str, float]:
    return {"node_cpu_s": cpu, "deliveries": deliveries, "remote_updates": remote}


def test_busy_figures_leave_the_idle_upkeep_out() -> None:
    one = {**run(1.0, 10_000), "idle_cpu_s": 0.2}
    affinity = {**run(1.6, 10_000), "idle_cpu_s": 0.6}
    out = figures({"one": one, "affinity": affinity})
    assert out["one_busy_cpu_us_per_delivery"] == 80.0
    assert out["affinity_busy_cpu_us_per_delivery"] == 100.0
    assert out["affinity_over_one"] == pytest.approx(1.6)
    assert out["affinity_over_one_busy"] == pytest.approx(1.25)


def test_affinity_over_three_thirds_is_per_delivery_against_the_third_load() -> None:
    # Three nodes at a third each (3.0 s, 9,000 deliveries) against one node at a third
    # (0.8 s, 3,000 deliveries): 3 x third = 2.4 s for the same 9,000 deliveries.
    third = {**run(0.8, 3_000), "idle_cpu_s": 0.2}
    affinity = {**run(3.0, 9_000), "idle_cpu_s": 0.3}
    out = figures({"one": run(1.5, 9_000), "third": third, "affinity": affinity})
    assert out["affinity_over_three_thirds"] == pytest.approx(1.25)
    assert out["affinity_over_three_thirds_busy"] == pytest.approx(1.5)  # 300 / 200 us
    assert out["affinity_over_one"] == pytest.approx(2.0)
    assert "affinity_over_three_thirds" not in figures({"one": run(1.0, 9), "third": third})


def test_figures_per_delivery_the_ratio_and_the_extra_per_remote_update() -> None:
    out = figures(
        {"one": run(1.0, 10_000), "affinity": run(1.1, 10_000), "split": run(1.5, 10_000, 4_000)}
    )
    assert out["one_cpu_us_per_delivery"] == 100.0
    assert out["affinity_over_one"] == pytest.approx(1.1)
    assert out["target_met"] is True
    assert out["extra_cpu_us_per_remote_update"] == pytest.approx(100.0)  # 0.4 s / 4,000
    assert out["split_over_affinity"] == pytest.approx(1.364, abs=1e-3)
    assert figures({"one": run(1.0, 100), "affinity": run(1.3, 100)})["target_met"] is False
    # A configuration that delivered nothing has no figure, and nothing is divided by zero.
    assert figures({"one": run(1.0, 0), "affinity": run(1.0, 100)}) == {
        "affinity_cpu_us_per_delivery": 10000.0
    }


def test_quick_is_a_few_seconds_and_configurations_are_checked() -> None:
    args = parse_args(["--quick"])
    assert args.configs == ["one", "third", "lone", "affinity", "split", "scaled"]
    assert (args.warmup_ms + args.measure_ms) / 1000 < 5
    assert parse_args(["--configs", "one,split"]).configs == ["one", "split"]
    with pytest.raises(SystemExit):
        parse_args(["--configs", "two"])


def test_scaled_deals_three_times_the_rooms_one_node_of_rooms_to_each_node() -> None:
    rooms = [f"r{i}" for i in range(3 * len(ROOMS))]
    shares = deal("scaled", rooms, 6)
    assert [s.node for s in shares] == [0, 1, 2]
    assert [len(s.rooms) for s in shares] == [len(ROOMS)] * NODES  # each what `one` carries
    assert remote_updates("scaled", shares, {r: 10 for r in rooms}) == 0
    # three times the deliveries, each node as busy as the one node
    out = figures({"one": run(1.0, 9_000), "scaled": {**run(3.3, 27_000), "idle_cpu_s": 0.3}})
    assert out["scaled_over_one"] == pytest.approx(1.1)
    assert out["scaled_target_met"] is True
    assert "scaled_over_one_busy" not in out  # one has no idle figure here
