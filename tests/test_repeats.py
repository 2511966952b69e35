"""repeats: auto, by simulation with a known answer: the count fixed by a pilot keeps the median
interval's stated coverage, and two auto cells of one setting are called different no more often
than the test's 5%."""

from __future__ import annotations

import numpy as np
import pytest

from diffbench.rules.repeats import AutoRepeats, planned_count, stop_reason
from diffbench.stats.intervals import compare_groups, median_ci

SHAPES = ("quiet", "spread", "clocks-70-30", "clocks-50-50", "outliers", "exponential")


def _draw(shape: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds per generation in six shapes seen on real machines."""
    if shape == "quiet":
        return np.exp(0.02 * rng.standard_normal(n))
    if shape == "spread":
        return np.exp(0.2 * rng.standard_normal(n))
    if shape.startswith("clocks"):  # two clock states
        slow = 0.3 if shape.endswith("70-30") else 0.5
        return np.where(rng.random(n) < slow, 1.25, 1.0) * np.exp(0.01 * rng.standard_normal(n))
    if shape == "outliers":  # 3% of generations disturbed, 2-5x slower
        return np.where(rng.random(n) < 0.03, rng.uniform(2, 5, n), 1.0) * np.exp(0.03 * rng.standard_normal(n))
    return 1.0 + rng.exponential(0.05, n)  # shifted exponential


def _auto_cell(shape: str, rng: np.random.Generator, policy: AutoRepeats) -> np.ndarray:
    """A cell's repeats as the worker runs them; what its statistics use (the pilot left out)."""
    walls: list[float] = []
    while stop_reason(walls, policy, sum(walls)) is None:
        walls.append(float(_draw(shape, rng, 1)[0]))
    return np.array(walls[policy.pilot:])


@pytest.mark.parametrize("shape", SHAPES)
def test_auto_cells_keep_their_stated_coverage_and_false_positive_rate(shape: str) -> None:
    rng = np.random.default_rng(SHAPES.index(shape) + 100)
    policy = AutoRepeats(cell_budget_s=1e9)  # the count is set by the spread, not by the clock
    true_median = float(np.median(_draw(shape, rng, 400_000)))
    replications = 1200
    covered, stated, false_positive, counts = 0, [], 0, []
    for _ in range(replications):
        first = _auto_cell(shape, rng, policy)
        low, high, achieved = median_ci(first)
        covered += low <= true_median <= high
        stated.append(achieved)
        counts.append(first.size)
        second = _auto_cell(shape, rng, policy)
        found = compare_groups(second, first)
        false_positive += found.p_value < 0.05 and (found.ratio_low > 1 or found.ratio_high < 1)
    coverage, confidence = covered / replications, float(np.mean(stated))
    error = 2 * np.sqrt(confidence * (1 - confidence) / replications)
    assert coverage >= confidence - 0.015 - error, (shape, coverage, confidence, np.mean(counts))
    assert false_positive / replications <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / replications), shape
    assert min(counts) >= policy.min and max(counts) <= policy.max


def test_the_pilot_sets_the_count_from_its_spread() -> None:
    policy = AutoRepeats()
    assert planned_count([1.0] * 4, policy)[0] == policy.min  # no spread: the fewest that can decide
    quiet = [1.0, 1.012, 0.988, 1.0]  # about 1% spread: a dozen repeats for a 2% interval
    count, why = planned_count(quiet, policy)
    assert 6 <= count <= 16 and "varied by 1.0%" in why
    assert planned_count([1.0, 1.3, 0.8, 1.1], policy)[0] == policy.max  # noisy: capped
    slow = AutoRepeats(cell_budget_s=140)
    count, why = planned_count([10.0, 10.5, 9.5, 11.0], slow)  # the pilot spent 41 s; 10 s each: 9 more fit
    assert count == 9 and "time budget" in why
    # the cell runs the planned count after its pilot, and says why it stopped there
    walls = quiet + [1.0] * 40
    stops = [n for n in range(1, len(walls) + 1) if stop_reason(walls[:n], policy) is not None]
    assert stops and stops[0] == policy.pilot + count_for(quiet, policy)
    stop = stop_reason(walls[:stops[0]], policy)
    assert stop is not None and stop["n"] == count_for(quiet, policy) and stop["pilot"] == policy.pilot
    assert stop["reason"] == planned_count(quiet, policy)[1]


def count_for(pilot: list[float], policy: AutoRepeats) -> int:
    return planned_count(pilot, policy)[0]
