"""Statistics on data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diffbench.stats import intervals as stats


def test_median_on_known_values() -> None:
    assert stats.median([1, 2, 3, 4, 100]) == 3
    assert np.isnan(stats.median([]))


def test_median_interval_is_the_order_statistics_with_their_exact_confidence() -> None:
    assert stats.median_ci([5.0, 1.0, 4.0, 2.0, 3.0]) == (1.0, 5.0, 1 - 2 / 32)  # n=5 cannot reach 95%
    low, high, achieved = stats.median_ci(list(range(1, 11)))
    assert (low, high) == (2.0, 9.0) and achieved == pytest.approx(1 - 2 * 11 / 1024)
    assert stats.median_ci([7.0]) == (7.0, 7.0, 0.0)


def test_ratio_interval_of_scaled_data_contains_the_scale() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(1.0, 0.02, size=30)
    low, high, achieved = stats.ratio_ci(base * 2.0, base)
    assert low < 2.0 < high and high - low < 0.05 and achieved >= 0.95


def test_a_real_difference_is_called_and_its_direction_given() -> None:
    rng = np.random.default_rng(2)
    slow = rng.normal(1.20, 0.01, size=10)
    fast = rng.normal(1.00, 0.01, size=10)
    result = stats.compare_groups(slow, fast)
    assert result.verdict == "higher" and result.significant
    assert 1.17 < result.ratio < 1.23 and result.p_value < 0.001
    assert stats.compare_groups(fast, slow).verdict == "lower"


def test_same_distribution_is_not_significant() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 0.05, size=8), rng.normal(1.0, 0.05, size=8)
    assert stats.compare_groups(a, b).verdict == "not significant"


def test_a_significant_but_tiny_difference_is_negligible() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(1.02, 0.001, size=20), rng.normal(1.00, 0.001, size=20)
    result = stats.compare_groups(a, b, min_effect=0.05)
    assert result.p_value < 0.001 and result.verdict == "negligible"
    assert stats.compare_groups(a, b, min_effect=0.01).verdict == "higher"


def test_too_few_samples_says_so() -> None:
    result = stats.compare_groups([1.0, 1.1], [2.0, 2.1, 2.2])
    assert result.verdict == "too few to tell" and result.more_needed == 2
    # three against three can never reach p < 0.05 two-sided, even for a 9.6x difference
    ninefold = stats.compare_groups([9.6, 9.7, 9.5], [1.0, 1.01, 0.99])
    assert ninefold.verdict == "too few to tell" and ninefold.more_needed == 1


def test_pareto_front_on_known_points() -> None:
    # (seconds, GiB): a is fastest, c is leanest, b is dominated by a, d is on the front
    points = np.array([[1.0, 10.0], [1.5, 12.0], [3.0, 4.0], [2.0, 6.0]])
    assert stats.pareto_front(points).tolist() == [True, False, True, True]


def test_rank_test_matches_scipy_case_by_case() -> None:
    """Our Mann-Whitney is scipy's method='auto', exact and asymptotic, with and without ties."""
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(11)
    for trial in range(400):
        m, n = int(rng.integers(2, 25)), int(rng.integers(2, 25))
        a, b = rng.normal(1.0, 0.1, m), rng.normal(1.0 + 0.05 * (trial % 3), 0.1, n)
        if trial % 4 == 0:  # ties
            a, b = np.round(a, 1), np.round(b, 1)
        if np.all(np.concatenate([a, b]) == a[0]):
            continue
        expected = mannwhitneyu(a, b, alternative="two-sided", method="auto").pvalue
        tied = len(np.unique(np.concatenate([a, b]))) < m + n
        if tied and math.comb(m + n, m) <= stats.EXACT_TIED_SPLITS:  # small tied groups: exact, not normal
            expected = _exact_tied_p(a, b)
        assert stats.rank_test(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-12), (m, n, trial)


def test_a_counted_quantity_is_compared_exactly_and_only_when_constant() -> None:
    quarter = stats.compare_exact([2.5, 2.5], [10.0, 10.0, 10.0])
    assert quarter is not None and quarter.exact and quarter.verdict == "lower"
    assert quarter.ratio == quarter.ratio_low == quarter.ratio_high == 0.25 and quarter.n_candidate == 2
    assert stats.compare_exact([10.2], [10.0]).verdict == "negligible"  # 2%: under the minimum effect
    assert stats.compare_exact([11.0], [10.0]).verdict == "higher"
    assert stats.compare_exact([2.5, 2.6], [10.0]) is None  # it varies: a measurement, for the rank test
    assert stats.compare_exact([1.0], [0.0]) is None and stats.compare_exact([], [1.0]) is None


def test_effects_are_judged_on_the_whole_interval() -> None:
    """'negligible' needs the whole interval within the minimum effect; a real difference whose
    interval reaches across it is 'not resolved', with the repeats that would settle it."""
    rng = np.random.default_rng(3)
    base = 1.0 + 0.001 * rng.standard_normal(30)
    inside = stats.compare_groups(base * 1.01, base)  # 1% slower, known to within a fraction of a percent
    assert inside.verdict == "negligible" and 0.95 < inside.ratio_low and inside.ratio_high < 1.05
    wide_base = 1.0 + 0.03 * rng.standard_normal(12)
    straddling = stats.compare_groups(wide_base * 1.05 + 0.03 * rng.standard_normal(12), wide_base)
    assert straddling.ratio_low < 1.05 < straddling.ratio_high or straddling.verdict != "not resolved"
    if straddling.verdict == "not resolved":
        assert straddling.more_needed > 0 and straddling.more_needed_baseline > 0
    clear = stats.compare_groups(base * 1.3, base)
    assert clear.verdict == "higher" and clear.ratio_low >= 1.05
    quiet = stats.compare_groups(1.0 + 0.05 * rng.standard_normal(8), 1.0 + 0.05 * rng.standard_normal(8))
    assert quiet.verdict == "not significant"  # wide and centred: neither shown small nor real


def test_no_verdict_points_against_its_interval_on_simulated_data() -> None:
    """Lognormal, two clock states and outliers, n 5 to 20, true ratios 0.9 to 1.1: every verdict
    agrees with its interval (higher: all above 1.05; lower: all below 0.95; negligible: all within)."""
    rng = np.random.default_rng(11)
    for _ in range(400):
        n = int(rng.integers(5, 21))
        truth = float(rng.choice([0.9, 0.95, 0.98, 1.0, 1.02, 1.05, 1.1]))
        shape = rng.integers(3)

        def draw(scale: float) -> np.ndarray:
            if shape == 0:
                return scale * rng.lognormal(0, 0.05, n)
            if shape == 1:
                return scale * np.where(rng.random(n) < 0.5, 1.0, 1.15) * rng.lognormal(0, 0.01, n)
            return scale * rng.lognormal(0, 0.03, n) * np.where(rng.random(n) < 0.05, 3.0, 1.0)

        c = stats.compare_groups(draw(truth), draw(1.0))
        assert c.ratio_low <= c.ratio <= c.ratio_high
        if c.verdict == "higher":
            assert c.ratio_low >= 1.05
        elif c.verdict == "lower":
            assert c.ratio_high <= 0.95
        elif c.verdict == "negligible":
            assert 0.95 < c.ratio_low and c.ratio_high < 1.05
        elif c.verdict == "not resolved":
            assert c.ratio_low < 1.05 < c.ratio_high or c.ratio_low < 0.95 < c.ratio_high


@pytest.mark.parametrize(("a", "b"), [
    ([1.0, 2.0, 2.0, 3.0], [3.0, 4.0, 4.0, 5.0]),
    ([0.5, 0.5, 0.6, 0.6, 0.7], [0.6, 0.7, 0.7, 0.8, 0.8, 0.9]),
    ([2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0], [3.0, 3.0, 4.0, 4.0, 4.0, 5.0, 5.0, 5.0]),
])
def test_small_tied_groups_get_the_exact_permutation_p(a: list[float], b: list[float]) -> None:
    """With ties the normal approximation is off at small n; every split of the pooled values is
    counted instead, and agrees with scipy's exact permutation test of the same statistic."""
    from scipy.stats import mannwhitneyu, permutation_test

    from diffbench.stats.intervals import rank_test

    centre = len(a) * len(b) / 2

    def distance(x: np.ndarray, y: np.ndarray) -> float:
        return abs(float(mannwhitneyu(x, y, method="asymptotic").statistic) - centre)

    exact = permutation_test((np.array(a), np.array(b)), distance, permutation_type="independent",
                             alternative="greater", n_resamples=np.inf).pvalue
    assert rank_test(a, b) == pytest.approx(exact, abs=1e-9)


def _exact_tied_p(a: np.ndarray, b: np.ndarray) -> float:
    """scipy's exact permutation test of |U - mn/2|: every split of the pooled values."""
    from scipy.stats import mannwhitneyu, permutation_test

    centre = len(a) * len(b) / 2

    def distance(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.abs(mannwhitneyu(x, y, method="asymptotic", axis=axis).statistic - centre)

    return float(permutation_test((np.asarray(a), np.asarray(b)), distance, permutation_type="independent",
                                  alternative="greater", n_resamples=np.inf, vectorized=True).pvalue)
