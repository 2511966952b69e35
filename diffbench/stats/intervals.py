"""Statistics that say when a difference is real: medians, distribution-free intervals, a
rank test plus a minimum effect size. Pure functions over arrays; no plotting, no I/O.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_EFFECT = 0.05  # a difference under 5% is not worth a headline, significant or not
DEFAULT_ALPHA = 0.05


Numbers = Sequence[float] | np.ndarray  # what every function here accepts


def _array(values: Numbers) -> np.ndarray:
    data: np.ndarray = np.asarray(values, dtype=float)
    finite: np.ndarray = data[np.isfinite(data)]
    return finite


def median(values: Numbers) -> float:
    return sorted_median(np.sort(_array(values)))  # sort + middle: np.median's generic path costs more on small groups


def sorted_median(data: np.ndarray) -> float:
    """The median of finite values already in ascending order."""
    n = data.size
    if n == 0:
        return float("nan")
    return float(data[n // 2]) if n % 2 else float((data[n // 2 - 1] + data[n // 2]) / 2)


def median_ci(values: Numbers, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float, float]:
    """Distribution-free interval for the median: (low, high, the confidence actually achieved).

    The order statistics x_(k) and x_(n-k+1) bracket the true median with probability
    1 - 2·P(Binomial(n, 1/2) <= k-1), whatever the distribution (Thompson's interval). The
    widest k that reaches `confidence` is used; with n <= 5 even [min, max] cannot reach 95%,
    and the achieved confidence says so rather than a bootstrap pretending otherwise.
    """
    return sorted_median_ci(np.sort(_array(values)), confidence)


def sorted_median_ci(data: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float, float]:
    """median_ci of finite values already in ascending order."""
    n = data.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    if n == 1:
        return float(data[0]), float(data[0]), 0.0
    k, achieved = _median_rank(n, confidence)
    return float(data[k - 1]), float(data[n - k]), achieved


EXACT_MEDIAN_N = 2000  # above this, the normal approximation of the binomial picks the rank


@functools.lru_cache(maxsize=4096)
def _median_rank(n: int, confidence: float) -> tuple[int, float]:
    """The widest order-statistic rank k whose interval reaches `confidence`, and what it reaches.

    Exact binomial tail sums in integers (no scipy import: a report asks this for every group).
    """
    if n > EXACT_MEDIAN_N:
        z = _normal_quantile(0.5 + confidence / 2)
        return max(1, math.floor(n / 2 - z * math.sqrt(n) / 2)), confidence
    total, tail = 2**n, 1  # tail = sum of C(n, i) for i < k, starting with k = 1
    best_k, best = 1, 1 - 2 * tail / total
    for k in range(2, n // 2 + 1):
        tail += math.comb(n, k - 1)
        coverage = 1 - 2 * tail / total
        if coverage < confidence:
            break
        best_k, best = k, coverage
    return best_k, best


def _normal_quantile(p: float) -> float:
    """The standard normal quantile, by bisection on erf (only used for very large groups)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        middle = (low + high) / 2
        if 0.5 * (1 + math.erf(middle / math.sqrt(2))) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@functools.lru_cache(maxsize=4096)
def _u_null_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) for u = 0..m·n under the null, no ties: the Gaussian binomial coefficient [m+n, m]_q
    built as prod_i (1 - q^(n+i)) / (1 - q^i), in floats (counts up to C(m+n, m))."""
    size = m * n + 1
    counts = np.zeros(size)
    counts[0] = 1.0
    for i in range(1, m + 1):
        shift = n + i
        if shift < size:
            counts[shift:] -= counts[:-shift].copy()
        for start in range(i):  # divide by (1 - q^i): a running sum along each residue class
            counts[start::i] = np.cumsum(counts[start::i])
    cdf = np.cumsum(counts) / math.comb(m + n, m)
    cdf.flags.writeable = False
    return cdf


EXACT_PAIRS = 10_000  # above this many pairs the normal approximation of U is used
MAX_PAIRS = 4_000_000  # above this, each group is thinned (evenly by rank) before pairing


def _thin(data: np.ndarray, limit: int) -> np.ndarray:
    if data.size <= limit:
        return data
    thinned: np.ndarray = np.sort(data)[np.linspace(0, data.size - 1, limit).round().astype(int)]
    return thinned


def ratio_ci(candidate: Numbers, baseline: Numbers,
             confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float, float]:
    """Interval for the ratio candidate/baseline: (low, high, the confidence achieved).

    Distribution-free (Moses' interval for a shift, on log times, where speed-ups are
    multiplicative): the k-th smallest and largest of all pairwise log ratios, k from the exact
    null distribution of the Mann-Whitney U (normal approximation for large groups). It is the
    interval that matches the rank test, so a verdict and its interval cannot disagree.
    """
    return _sorted_ratio_estimate(np.sort(_array(candidate)), np.sort(_array(baseline)), confidence)[1:]


def _positive(data: np.ndarray) -> np.ndarray:
    """The positive part of an ascending array (a slice: no copy)."""
    return data[int(np.searchsorted(data, 0.0, side="right")):]


def _sorted_ratio_estimate(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """(point, low, high, confidence achieved) for the ratio a/b of finite values in ascending
    order, all read from the sorted pairwise log ratios: the point is their median (the
    Hodges-Lehmann estimate), the interval Moses'. One estimator for the point, the interval and
    the rank test, so the point always lies inside its interval and a verdict's direction (taken
    from the point) always agrees with an interval that excludes 1. (A ratio of medians did not:
    with two clock states it fell outside its own interval in over half of the comparisons.)"""
    a, b = _positive(a), _positive(b)
    if a.size == 0 or b.size == 0:
        return (float("nan"),) * 4
    limit = max(2, int(math.sqrt(MAX_PAIRS)))
    a, b = _thin(a, limit), _thin(b, limit)
    m, n = a.size, b.size
    pairs = np.sort((np.log(a)[:, None] - np.log(b)[None, :]).ravel())
    tail = (1 - confidence) / 2
    if m * n <= EXACT_PAIRS:
        cdf = _u_null_cdf(m, n)
        # The interval [D_(k), D_(mn-k+1)] misses with probability 2·P(U <= k-1): take the widest
        # k whose tail fits in (1 - confidence)/2, or k = 1 (all pairs) when none does.
        allowed = np.nonzero(cdf <= tail)[0]
        k = int(allowed[-1]) + 1 if allowed.size else 1
        achieved = 1 - 2 * float(cdf[k - 1])
    else:
        z = _normal_quantile(1 - tail)
        k = max(1, int(math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))))
        achieved = confidence
    k = min(k, (m * n + 1) // 2)
    middle = m * n // 2
    point = pairs[middle] if m * n % 2 else (pairs[middle - 1] + pairs[middle]) / 2
    return float(np.exp(point)), float(np.exp(pairs[k - 1])), float(np.exp(pairs[m * n - k])), achieved


def rank_test(a: Numbers, b: Numbers) -> float:
    """Two-sided Mann-Whitney U p-value, computed as scipy's `mannwhitneyu(method="auto")` does.

    Exact (from the null distribution of U) when a group has at most 8 values and there are no
    ties; else the normal approximation with tie and continuity corrections. Written here
    because a fleet report runs thousands of tests, and scipy's per-call overhead dominated the
    build; `tests/test_stats.py` checks it against scipy case by case.
    """
    return _sorted_rank_test(np.sort(_array(a)), np.sort(_array(b)))


def _sorted_rank_test(x: np.ndarray, y: np.ndarray) -> float:
    """rank_test of finite values in ascending order."""
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        return float("nan")
    if x[0] == x[-1] == y[0] == y[-1]:
        return 1.0  # every value equal: nothing to rank
    ordered = np.concatenate([x, y])
    ordered.sort(kind="mergesort")
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[starts, ordered.size])
    # U counts the pairs where x wins, a tie counting half: what the sum of x's average ranks
    # less n1(n1+1)/2 gives, in exact half-integers, without ranking every value
    below, up_to = np.searchsorted(y, x, side="left"), np.searchsorted(y, x, side="right")
    u1 = float(below.sum() + 0.5 * (up_to - below).sum())
    u = max(u1, n1 * n2 - u1)
    ties = bool(np.any(counts > 1))
    if (n1 <= 8 or n2 <= 8) and not ties:
        cdf = _u_null_cdf(n1, n2)
        tail = 1.0 - float(cdf[int(round(u)) - 1]) if u >= 1 else 1.0
        return min(1.0, 2.0 * tail)
    if ties and math.comb(n1 + n2, n1) <= EXACT_TIED_SPLITS:
        return _tied_permutation_p(starts, counts, u1, n1, n2)
    n = n1 + n2
    tie_term = float(np.sum(counts.astype(float) ** 3 - counts)) / (n * (n - 1))
    spread = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term))
    if spread == 0:
        return 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / spread
    return min(1.0, max(0.0, math.erfc(z / math.sqrt(2.0))))  # 2 * normal survival function


EXACT_TIED_SPLITS = 20_000  # small tied groups: every split of the pooled values counted (8 vs 8: 12,870)


def _tied_permutation_p(starts: np.ndarray, counts: np.ndarray, u1: float, n1: int, n2: int) -> float:
    """The exact two-sided p of U with ties: the share of all C(n1+n2, n1) splits of the pooled
    values whose U lies at least as far from its mean as the observed one (the normal approximation
    gave 0.013 where this gives 0.029 at 4 vs 4 with ties; scipy's permutation_test agrees)."""
    import itertools

    midranks = np.repeat(starts + (counts + 1) / 2.0, counts)  # of the pooled values, in sorted order
    splits = np.array(list(itertools.combinations(range(n1 + n2), n1)), dtype=np.int64)
    u_all = midranks[splits].sum(axis=1) - n1 * (n1 + 1) / 2.0
    centre = n1 * n2 / 2.0
    return float(np.mean(np.abs(u_all - centre) >= abs(u1 - centre) - 1e-9))


def smallest_p(m: int, n: int) -> float:
    """The smallest two-sided p-value a rank test can reach with groups of m and n (no ties)."""
    return min(1.0, 2 / math.comb(m + n, m)) if m and n else 1.0


def repeats_needed(m: int, n: int, alpha: float = DEFAULT_ALPHA) -> int:
    """How many more repeats the smaller group needs before a rank test can reach `alpha`."""
    small, large = sorted((m, n))
    extra = 0
    while smallest_p(small + extra, max(large, small + extra)) >= alpha:
        extra += 1
    return extra


@dataclass(frozen=True)
class Comparison:
    """How a candidate group compares with a baseline group on one metric."""

    ratio: float  # candidate/baseline: the median of all pairwise ratios (Hodges-Lehmann), inside its interval
    ratio_low: float
    ratio_high: float
    p_value: float
    n_candidate: int
    n_baseline: int
    verdict: str  # "higher", "lower", "not significant", "negligible", "not resolved", "too few to tell"
    confidence: float = DEFAULT_CONFIDENCE  # what the ratio's interval achieves
    more_needed: int = 0  # "too few to tell": repeats to add to each group; "not resolved": to the candidate's
    exact: bool = False  # a counted quantity, constant in each group: the ratio is known, not estimated
    more_needed_baseline: int = 0  # "not resolved": repeats to add to the baseline's
    paired: bool = False  # from pairs of interleaved turns (same run, same round), not two independent groups

    @property
    def significant(self) -> bool:
        return self.verdict in {"higher", "lower"}


def compare_groups(candidate: Numbers, baseline: Numbers, min_effect: float = DEFAULT_MIN_EFFECT,
                   alpha: float = DEFAULT_ALPHA, confidence: float = DEFAULT_CONFIDENCE) -> Comparison:
    """Compare two groups of measurements.

    Effects are judged on the interval of the ratio, never on its point alone. A difference is
    called real ("higher"/"lower") only when the rank test rejects equality at `alpha` and the
    whole interval lies beyond `min_effect`; "negligible" when the whole interval lies within
    `min_effect` of 1 (shown small, significant or not); "not resolved" when a real difference's
    interval reaches across the `min_effect` bound, with the repeats per group that would narrow it
    to one side; "not significant" otherwise. Groups too small for the rank test ever to reach
    `alpha` get "too few to tell" and how many more repeats would do, never "no difference".
    """
    return compare_sorted(np.sort(_array(candidate)), np.sort(_array(baseline)), min_effect, alpha, confidence)


def compare_sorted(a: np.ndarray, b: np.ndarray, min_effect: float = DEFAULT_MIN_EFFECT,
                   alpha: float = DEFAULT_ALPHA, confidence: float = DEFAULT_CONFIDENCE) -> Comparison:
    """compare_groups of finite values already in ascending order (a report sorts each group once
    and compares it with many others); the same numbers, bit for bit."""
    ratio, low, high, achieved = _sorted_ratio_estimate(a, b, confidence) if a.size and b.size else (float("nan"),) * 4
    if smallest_p(a.size, b.size) >= alpha:
        return Comparison(ratio, low, high, float("nan"), int(a.size), int(b.size), "too few to tell", achieved,
                          repeats_needed(a.size, b.size, alpha))
    p_value = _sorted_rank_test(a, b)
    significant = p_value < alpha and (low > 1 or high < 1)
    verdict = _interval_verdict(low, high, min_effect, significant)
    more = (0, 0)
    if verdict == "not resolved":
        more = _repeats_to_resolve(ratio, low, high, min_effect, a.size, b.size)
    return Comparison(ratio, low, high, p_value, int(a.size), int(b.size), verdict, achieved, more[0],
                      more_needed_baseline=more[1])


def _interval_verdict(low: float, high: float, min_effect: float, significant: bool) -> str:
    """The verdict from where the interval lies against the minimum effect (see compare_groups)."""
    if 1 - min_effect < low and high < 1 + min_effect:
        return "negligible"
    if not significant:
        return "not significant"
    if low >= 1 + min_effect:
        return "higher"
    if high <= 1 - min_effect:
        return "lower"
    return "not resolved"


MOST_REPEATS_ADVISED = 10_000


def _repeats_to_resolve(ratio: float, low: float, high: float, min_effect: float, n_a: int, n_b: int
                        ) -> tuple[int, int]:
    """Repeats to add to each group so that the interval, narrowing as 1/sqrt(n), falls on one side of
    the minimum-effect bound it reaches across (its width scaled from this one; an estimate)."""
    bound = 1 + min_effect if ratio > 1 else 1 - min_effect
    distance = abs(math.log(ratio / bound)) if ratio > 0 and bound > 0 else 0.0
    half_width = max(math.log(high / ratio), math.log(ratio / low)) if low > 0 and ratio > 0 else float("inf")
    if distance == 0 or not math.isfinite(half_width):
        return MOST_REPEATS_ADVISED, MOST_REPEATS_ADVISED
    factor = (half_width / distance) ** 2
    return (min(MOST_REPEATS_ADVISED, math.ceil(n_a * (factor - 1))),
            min(MOST_REPEATS_ADVISED, math.ceil(n_b * (factor - 1))))


def _point_verdict(ratio: float, min_effect: float) -> str:
    """The verdict of an exact ratio (no interval: the point is the whole truth)."""
    return ("higher" if ratio > 1 else "lower") if abs(ratio - 1) >= min_effect else "negligible"


def compare_exact(candidate: Numbers, baseline: Numbers, min_effect: float = DEFAULT_MIN_EFFECT,
                  within: float = 0.0) -> Comparison | None:
    """Two groups of a counted quantity (bytes of weights), each the same value every time (or,
    for a figure an allocator sets, within `within` of its median): the ratio is known, and the
    medians decide. None when a group varies more (then it is a measurement, for compare_groups)."""
    a, b = _array(candidate), _array(baseline)
    if not a.size or not b.size or (within == 0 and (np.ptp(a) != 0 or np.ptp(b) != 0)):
        return None  # (the common case, a measurement that varies, decided without medians)
    middle_a, middle_b = float(np.median(a)), float(np.median(b))
    if middle_b == 0 or np.ptp(a) > within * abs(middle_a) or np.ptp(b) > within * abs(middle_b):
        return None
    ratio = middle_a / middle_b
    verdict = _point_verdict(ratio, min_effect)
    return Comparison(ratio, ratio, ratio, float("nan"), int(a.size), int(b.size), verdict, 1.0, exact=True)


def format_p(p: float) -> str:
    """p as people read it: p<0.001 rather than p=0."""
    if p != p:
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3g}"


def pareto_front(costs: np.ndarray) -> np.ndarray:
    """Boolean mask of rows not dominated by any other row (every column: lower is better)."""
    costs = np.asarray(costs, dtype=float)
    keep = np.ones(len(costs), dtype=bool)
    for i, row in enumerate(costs):
        others = np.delete(costs, i, axis=0)
        dominated = np.any(np.all(others <= row, axis=1) & np.any(others < row, axis=1))
        keep[i] = not dominated
    return keep
