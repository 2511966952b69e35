"""Statistical claims tested like code: simulated timings with known answers, many times over.

Timings are drawn log-normal (right-skewed, as latencies are), so a speed-up is a shift in
log time; each check states the rate it expects and a tolerance for the simulation's own noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from diffbench.analysis import stats

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


def test_constant_but_different_groups_get_scipys_p_value_not_zero() -> None:
    from scipy.stats import mannwhitneyu

    a, b = [2.0] * 5, [1.0] * 5
    expected = mannwhitneyu(a, b, alternative="two-sided").pvalue
    result = stats.compare_groups(a, b)
    assert result.p_value == pytest.approx(expected) and result.p_value > 0
    assert stats.format_p(0.0004) == "p<0.001" and stats.format_p(0.0123) == "p=0.0123"
