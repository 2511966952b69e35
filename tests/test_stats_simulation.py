"""Statistical claims tested like code: simulated timings with known answers, many times over.

Timings are drawn log-normal (right-skewed, as latencies are), so a speed-up is a shift in
log time; each check states the rate it expects and a tolerance for the simulation's own noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from diffbench.stats import intervals as stats

TRIALS = 1500


def _timings(rng: np.random.Generator, n: int, median: float, spread: float = 0.05) -> np.ndarray:
    return median * np.exp(rng.normal(0.0, spread, size=n))


@pytest.mark.parametrize("n", [5, 10, 20])
def test_the_median_interval_covers_as_often_as_it_says(n: int) -> None:
    rng = np.random.default_rng(n)
    covered, stated = 0, None
    for _ in range(TRIALS):
        low, high, achieved = stats.median_ci(_timings(rng, n, 2.0))
        covered += low <= 2.0 <= high
        stated = achieved
    assert stated is not None
    assert covered / TRIALS >= stated - 0.02  # never less than it claims (binomial noise of 1500 trials)
    if n >= 10:
        assert stated >= 0.95


@pytest.mark.parametrize("n", [5, 10, 20])
def test_the_ratio_interval_covers_the_true_ratio_as_often_as_it_says(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    covered, claimed = 0, []
    for _ in range(TRIALS):
        low, high, achieved = stats.ratio_ci(_timings(rng, n, 1.3), _timings(rng, n, 1.0))
        covered += low <= 1.3 <= high
        claimed.append(achieved)
    assert covered / TRIALS >= min(claimed) - 0.02
    assert min(claimed) >= 0.95


@pytest.mark.parametrize("n", [5, 10, 20])
def test_equal_settings_are_called_different_at_most_5_percent_of_the_time(n: int) -> None:
    rng = np.random.default_rng(200 + n)
    called = sum(stats.compare_groups(_timings(rng, n, 1.0), _timings(rng, n, 1.0), min_effect=0.0).significant
                 for _ in range(TRIALS))
    assert called / TRIALS <= 0.05 + 0.015


@pytest.mark.parametrize("n", [5, 10])
def test_a_clear_difference_is_found_almost_always(n: int) -> None:
    rng = np.random.default_rng(300 + n)
    verdicts = [stats.compare_groups(_timings(rng, n, 1.5), _timings(rng, n, 1.0)).verdict for _ in range(300)]
    assert verdicts.count("higher") / len(verdicts) >= 0.97


def test_three_repeats_say_too_few_to_tell_never_no_difference() -> None:
    rng = np.random.default_rng(7)
    for ratio in (1.0, 1.5, 9.6):
        result = stats.compare_groups(_timings(rng, 3, ratio), _timings(rng, 3, 1.0))
        assert result.verdict == "too few to tell" and result.more_needed == 1
        assert result.p_value != result.p_value  # no p-value is invented for it


def test_constant_but_different_groups_get_the_exact_p_value_not_zero() -> None:
    """5 vs 5, each constant: of the 252 splits of the ten values, only the observed one and its
    mirror lie as far from no difference, so p = 2/252 exactly (the normal approximation said 0.004)."""
    a, b = [2.0] * 5, [1.0] * 5
    result = stats.compare_groups(a, b)
    assert result.p_value == pytest.approx(2 / 252) and result.p_value > 0
    assert stats.format_p(0.0004) == "p<0.001" and stats.format_p(0.0123) == "p=0.0123"


def _two_clock_states(rng: np.random.Generator, n: int, median: float) -> np.ndarray:
    """A GPU that runs each generation at one of two clocks, half the time each (1.0x and 1.25x),
    with a little noise: the shape where a ratio of medians and a pairwise estimate part ways."""
    slow = rng.random(n) < 0.5
    return median * np.where(slow, 1.25, 1.0) * np.exp(rng.normal(0.0, 0.02, size=n))


def _with_outliers(rng: np.random.Generator, n: int, median: float) -> np.ndarray:
    data = _timings(rng, n, median, spread=0.2)
    hit = rng.random(n) < 0.03
    return np.where(hit, data * rng.uniform(2, 5, size=n), data)


@pytest.mark.parametrize("shape", [_two_clock_states, _with_outliers])
@pytest.mark.parametrize("n", [5, 10, 30])
def test_the_ratio_lies_in_its_interval_and_a_verdict_points_where_the_interval_does(shape, n: int) -> None:
    """Issue #25: with two clock states a true 5% slowdown at n = 30 was called faster in 12% of
    comparisons, and the printed ratio fell outside its printed interval in 55-59%. One estimator
    for point, interval and test makes both impossible; checked on every simulated comparison."""
    rng = np.random.default_rng(400 + n)
    called_faster = 0
    for _ in range(600):
        c = stats.compare_groups(shape(rng, n, 1.05), shape(rng, n, 1.0), min_effect=0.0)
        assert c.ratio_low <= c.ratio <= c.ratio_high
        if c.verdict == "higher":
            assert c.ratio_low > 1 and c.ratio > 1
        if c.verdict == "lower":
            assert c.ratio_high < 1 and c.ratio < 1
            called_faster += 1
    # a true slowdown is called a speed-up only when the test errs, which it does at most alpha/2
    # of the time (0.025; binomial noise of 600 trials)
    assert called_faster / 600 <= 0.025 + 0.02


def test_the_point_is_the_median_of_the_pairwise_ratios() -> None:
    """Hand count: candidate {2, 4}, baseline {1, 2}: pairwise ratios 1, 2, 2, 4 -> median 2."""
    c = stats.compare_groups([2.0, 4.0], [1.0, 2.0])
    assert c.ratio == pytest.approx(2.0)
    c = stats.compare_groups([3.0, 6.0, 9.0], [1.0])  # ratios 3, 6, 9 -> 6 (not 6/1 by luck: medians agree here)
    assert c.ratio == pytest.approx(6.0)
    c = stats.compare_groups([1.0, 1.0, 10.0], [1.0, 2.0])  # ratios 1, .5, 1, .5, 10, 5 -> median of logs: 1
    assert c.ratio == pytest.approx(1.0)


@pytest.mark.parametrize("shape", ["quiet", "spread", "clocks-70-30", "clocks-50-50", "outliers", "exponential"])
@pytest.mark.parametrize("n", [6, 12, 30])
def test_six_shapes_coverage_false_positives_and_verdicts_that_follow_their_intervals(shape: str, n: int) -> None:
    """The shapes of tests/test_repeats.py (and docs/statistics.md) at fixed counts: the median's
    interval covers at its stated confidence (within 1.5 points and simulation error), one setting
    against itself is called different at most 5% of the time, and every ratio lies in its interval."""
    from test_repeats import SHAPES, _draw

    rng = np.random.default_rng(1000 + 10 * SHAPES.index(shape) + n)
    true_median = float(np.median(_draw(shape, rng, 400_000)))
    trials, covered, stated, called = 800, 0, [], 0
    for _ in range(trials):
        a, b = _draw(shape, rng, n), _draw(shape, rng, n)
        low, high, achieved = stats.median_ci(a)
        covered += low <= true_median <= high
        stated.append(achieved)
        c = stats.compare_groups(a, b, min_effect=0.0)
        assert c.ratio_low <= c.ratio <= c.ratio_high
        called += c.significant
    confidence = float(np.mean(stated))
    assert covered / trials >= confidence - 0.015 - 2 * np.sqrt(confidence * (1 - confidence) / trials), shape
    assert called / trials <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / trials), shape
