"""collab.wire.tombstones.Tombstones: merged deleted ranges per client, against a plain set."""

from __future__ import annotations

import random

from collab.wire.tombstones import Tombstones


def test_add_merges_overlapping_and_touching_ranges() -> None:
    t = Tombstones()
    t.add(1, 10, 5)  # [10, 15)
    t.add(1, 20, 5)  # [20, 25)
    assert t.range_count == 2
    t.add(1, 15, 5)  # touches both: one range [10, 25)
    assert t.range_count == 1
    assert t.covers(1, 10) and t.covers(1, 24)
    assert not t.covers(1, 9) and not t.covers(1, 25)
    t.add(1, 0, 3)  # before everything
    t.add(1, 2, 30)  # swallows all
    assert t.range_count == 1 and t.covers(1, 31) and not t.covers(1, 32)
    assert not t.covers(2, 10)  # another client


def test_random_ranges_match_a_set_of_clocks() -> None:
    rng = random.Random(8)
    ranges = [(rng.randrange(3), rng.randrange(500), rng.randint(1, 9)) for _ in range(400)]
    expected = {(c, k) for c, clock, n in ranges for k in range(clock, clock + n)}
    one_by_one = Tombstones()
    one_by_one.add_all(ranges)
    at_once = Tombstones.from_ranges(ranges)
    for c in range(3):
        for k in range(520):
            assert one_by_one.covers(c, k) == ((c, k) in expected) == at_once.covers(c, k)
    assert one_by_one.range_count == at_once.range_count


def test_a_run_of_adjacent_deletions_costs_one_range() -> None:
    t = Tombstones()
    for k in range(10_000):  # a backspace held down
        t.add(7, 10_000 - k, 1)
    assert t.range_count == 1
