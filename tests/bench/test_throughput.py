"""bench/throughput.py's pure parts: the rate stepping, the saturation flag, the result."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import throughput
import workloads
from report import Index
from throughput import Step, expected_deliveries, next_rate, outcome, shares

from tests.bench.synthetic import row, summary

PLAN = dataclasses.replace(
    workloads.FULL,
    tp_start=500,
    tp_factor=2.0,
    tp_max_rate=16_000,
    tp_refine=2,
    tp_max_steps=9,
    tp_p99_ms=100,
)


def held(rate: float) -> Step:
    return Step(rate, p99_ms=20.0, lost=0, saturated=False)


def slow(rate: float) -> Step:
    return Step(rate, p99_ms=400.0, lost=0, saturated=False)


def test_a_step_holds_only_within_the_bound_with_nothing_lost_and_the_generator_unsaturated() -> (
    None
):
    assert Step(1000, 100.0, 0, False).verdict(100) == "held"
    assert Step(1000, 100.1, 0, False).verdict(100) == "server"
    assert Step(1000, 5.0, 1, False).verdict(100) == "server"  # one lost delivery
    assert Step(1000, math.inf, 3, False).verdict(100) == "server"
    # A saturated generator measured itself: neither held nor the server's failure.
    assert Step(1000, 5.0, 0, True).verdict(100) == "generator"
    assert Step(1000, 900.0, 7, True).verdict(100) == "generator"


def test_the_generator_is_saturated_by_a_busy_process_by_all_of_them_or_by_a_shortfall() -> None:
    def saturated(
        busiest: float = 0.5,
        total: float = 0.8,
        load_cores: int = 1,
        sent: float = 1000.0,
        lag: float = 2.0,
    ) -> bool:
        return throughput.generator_saturated(busiest, total, load_cores, sent, 1000.0, lag)

    assert not saturated()
    assert saturated(busiest=0.95)
    assert saturated(total=0.95)  # one load core, all busy
    assert not saturated(total=1.5, load_cores=2)
    assert not saturated(sent=951.0)
    assert saturated(sent=940.0)  # 6% short
    assert not saturated(lag=20.0)
    assert saturated(lag=20.5)  # edits went out late: the offered rate was not kept


def test_more_processes_help_only_when_one_ran_out_and_the_cores_had_room() -> None:
    assert throughput.one_process_saturated(busiest=0.97, total=1.1, load_cores=3)
    assert not throughput.one_process_saturated(busiest=0.97, total=0.97, load_cores=1)
    assert not throughput.one_process_saturated(busiest=0.6, total=1.1, load_cores=3)


def test_the_rate_climbs_by_the_factor_while_every_step_holds_and_stops_at_the_top() -> None:
    assert next_rate([], PLAN) == 500
    assert next_rate([held(500)], PLAN) == 1000
    assert next_rate([held(500), held(1000), held(2000)], PLAN) == 4000
    climbed = [held(500 * 2**k) for k in range(6)]  # 500 ... 16,000: the plan's top
    assert next_rate(climbed, PLAN) is None


def test_past_the_first_failure_the_rate_is_bisected_between_held_and_not_held() -> None:
    steps = [held(500), held(1000), slow(2000)]
    middle = next_rate(steps, PLAN)
    assert middle == pytest.approx(math.sqrt(1000 * 2000))
    assert middle is not None
    steps.append(held(middle))
    second = next_rate(steps, PLAN)
    assert second == pytest.approx(math.sqrt(middle * 2000))
    assert second is not None
    steps.append(slow(second))
    assert next_rate(steps, PLAN) is None  # tp_refine = 2 refinements done


def test_when_not_even_the_first_rate_holds_the_rate_steps_down() -> None:
    assert next_rate([slow(500)], PLAN) == 250
    assert next_rate([slow(500), held(250)], PLAN) == pytest.approx(math.sqrt(250 * 500))


def test_the_number_of_steps_is_bounded() -> None:
    plan = dataclasses.replace(PLAN, tp_max_steps=3)
    assert next_rate([held(500), held(1000), held(2000)], plan) is None


@pytest.mark.parametrize("capacity", [120.0, 700.0, 1_200.0, 3_000.0, 9_000.0, 40_000.0])
@pytest.mark.parametrize("generator", [2_500.0, math.inf])
def test_a_whole_climb_finds_the_server_or_the_generator_limit_within_its_bounds(
    capacity: float, generator: float
) -> None:
    """Against a model server that holds up to ``capacity`` edits/s, measured by a generator
    that can offer ``generator`` edits/s: the climb ends, within tp_max_steps, with a held rate
    no higher than either limit and no lower than the refinement can pin it down."""

    def measure(rate: float) -> Step:
        if rate > generator:
            return Step(rate, 300.0, 0, saturated=True)
        return held(rate) if rate <= capacity else slow(rate)

    steps: list[Step] = []
    for _ in range(50):
        rate = next_rate(steps, PLAN)
        if rate is None:
            break
        steps.append(measure(rate))
    else:
        pytest.fail("the climb did not end")
    assert len(steps) <= PLAN.tp_max_steps
    result = outcome(steps, PLAN.tp_p99_ms)
    limit = min(capacity, generator)
    if limit >= PLAN.tp_max_rate:
        assert result == throughput.Outcome(PLAN.tp_max_rate, "top rate")
        return
    assert result.bound == ("generator" if generator < capacity else "server")
    if limit < PLAN.tp_start / PLAN.tp_factor**PLAN.tp_refine:
        assert result.held is None  # below what two steps down can reach
        return
    assert result.held is not None
    assert result.held <= limit
    # Two refinements of a factor of 2: within 2 ** (1/4) of the limit.
    assert result.held >= limit / PLAN.tp_factor ** (1 / 2**PLAN.tp_refine) - 1e-6


def test_the_outcome_names_what_stopped_the_climb_just_above_the_rate_held() -> None:
    assert outcome([], 100) == throughput.Outcome(None, "none")
    assert outcome([held(500), held(1000)], 100) == throughput.Outcome(1000, "top rate")
    gen = Step(2000, 50.0, 0, True)
    assert outcome([held(500), held(1000), gen], 100) == throughput.Outcome(1000, "generator")
    # The lowest failure above the held rate decides, not the last one measured.
    steps = [held(500), held(1000), gen, slow(1414)]
    assert outcome(steps, 100) == throughput.Outcome(1000, "server")
    # A failure below a held rate (noise) does not count against it.
    assert outcome([slow(400), held(500), gen], 100) == throughput.Outcome(500, "generator")
    assert outcome([slow(500), slow(250)], 100) == throughput.Outcome(None, "server")


def test_clients_are_dealt_over_the_processes_and_never_to_an_empty_one() -> None:
    assert shares(10, 3) == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert shares(10, 1) == [list(range(10))]
    assert shares(2, 5) == [[0], [1]]


def test_expected_deliveries_count_every_other_clients_counted_edits() -> None:
    counted = [[3, 5], [4], [0, 2, 1]]

    def brute(k: int) -> int:
        everyone = [(p, j, c) for p, cs in enumerate(counted) for j, c in enumerate(cs)]
        return sum(
            c
            for (p, j, c), (q, i, _) in itertools.product(everyone, everyone)
            if q == k and (p, j) != (q, i)
        )

    assert expected_deliveries(counted) == [brute(k) for k in range(len(counted))]
    assert expected_deliveries([[7]]) == [0]  # alone in the room: nobody to deliver to


def _throughput_rows(server: str, rate: float | None, bound: str) -> list[dict[str, object]]:
    def at(metric: str, value: float | None) -> dict[str, object]:
        return row("throughput", throughput.POINT, metric, server, value, reps=1)

    return [
        at("max_rate", rate),
        at("generator_bound", 1.0 if bound == "generator" else 0.0),
        at("top_rate_held", 1.0 if bound == "top rate" else 0.0),
        at("p99_at_max_ms", 40.0),
    ]


def test_the_table_marks_a_rate_bound_by_the_generator_as_a_lower_bound() -> None:
    rows = _throughput_rows("collab", 1200.0, "server")
    rows += _throughput_rows("uvicorn-relay", 3000.0, "generator")
    lines = throughput.render(Index(summary(rows)), False, summary(rows))
    text = "\n".join(lines)
    collab_line = next(line for line in lines if line.startswith("| collab |"))
    relay_line = next(line for line in lines if line.startswith("| uvicorn-relay |"))
    assert "| 1,200 | server | 0.40x (relay: a lower bound) |" in collab_line
    assert "| >= 3,000 | generator | 1.00x (relay: a lower bound) |" in relay_line
    assert "room of 10 holds at p99 <= 100 ms" in text
    assert throughput.render(Index(summary([])), False, summary([])) == []
