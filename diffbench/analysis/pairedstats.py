"""Statistics over pictures: a centre with its interval, and paired differences (one pair per
prompt and seed), judged by the same rules as a time comparison.

A quality figure such as the CLIP score is one number per picture, and pictures differ by prompt
far more than settings differ from one another, so two settings are compared on the *same*
prompts and seeds: the per-pair differences are summarised by their Hodges-Lehmann centre (the
median of all Walsh averages) inside the exact Wilcoxon signed-rank interval, and tested with the
signed-rank test. The centre always lies inside its interval, and the verdict follows the interval:
"higher"/"lower" only when the test rejects and the whole interval lies beyond the minimum effect;
"negligible" when the whole interval lies within it; "not resolved" when it reaches across it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..stats.intervals import (
    DEFAULT_ALPHA,
    DEFAULT_CONFIDENCE,
    MOST_REPEATS_ADVISED,
    Comparison,
    _interval_verdict,
    _normal_quantile,
    _repeats_to_resolve,
)

EXACT_N = 1000  # above this many values the signed-rank distribution is taken as normal
MAX_WALSH_VALUES = 2000  # above this, values are thinned evenly by rank before the Walsh averages


@dataclass(frozen=True)
class Centre:
    """The Hodges-Lehmann centre of some values and its signed-rank interval."""

    estimate: float
    low: float
    high: float
    confidence: float  # what the interval achieves (exact: the next attainable level at or above the asked one)
    n: int


@dataclass(frozen=True)
class PairedDifference:
    """candidate - baseline over matched pairs: centre, interval, test and verdict."""

    estimate: float
    low: float
    high: float
    confidence: float
    p_value: float
    n: int
    verdict: str  # "higher", "lower", "negligible", "not significant", "not resolved", "too few to tell"
    more_needed: int = 0  # pairs (prompts x seeds) to add: "too few to tell" or "not resolved"
    pairs: int = 0  # the prompt-seed pairs behind it; more than n where several seeds of a prompt were averaged

    @property
    def significant(self) -> bool:
        return self.verdict in {"higher", "lower"}


def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(T+ <= t) for t = 0 .. n(n+1)/2 under the null (no ties): the count of subsets of 1..n
    with each sum, by dynamic programming, over 2^n."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.float64)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    cumulative = np.cumsum(counts)
    return np.asarray(cumulative / cumulative[-1])


def _lower_count(n: int, confidence: float) -> tuple[int, float]:
    """(k, achieved): the interval runs from the k-th smallest to the k-th largest Walsh average;
    k >= 1 always (with few values the interval is their whole range, at the confidence it has)."""
    tail = (1 - confidence) / 2
    if n <= EXACT_N:
        cdf = _signed_rank_cdf(n)
        c = int(np.searchsorted(cdf, tail, side="right")) - 1  # largest c with P(T+ <= c) <= tail
        k = max(c + 1, 1)
        return k, float(1 - 2 * cdf[k - 1])
    mean, sd = n * (n + 1) / 4, math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    k = max(1, int(math.floor(mean + _normal_quantile(tail) * sd + 0.5)))
    return k, confidence


def _thin(sorted_values: np.ndarray, limit: int) -> np.ndarray:
    if sorted_values.size <= limit:
        return sorted_values
    picked: np.ndarray = sorted_values[np.linspace(0, sorted_values.size - 1, limit).round().astype(int)]
    return picked


def centre(values: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> Centre:
    """Hodges-Lehmann centre of finite `values` and its exact signed-rank interval."""
    data = _thin(np.sort(np.asarray(values, dtype=float)), MAX_WALSH_VALUES)
    n = int(data.size)
    if n == 0:
        return Centre(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    upper = np.triu_indices(n)
    walsh = np.sort((data[upper[0]] + data[upper[1]]) / 2)
    k, achieved = _lower_count(n, confidence)
    k = min(k, (walsh.size + 1) // 2)
    return Centre(float(np.median(walsh)), float(walsh[k - 1]), float(walsh[walsh.size - k]), achieved,
                  int(np.asarray(values).size))


def signed_rank_p(differences: np.ndarray) -> float:
    """Two-sided p of the signed-rank test that the differences centre on 0, read from the same
    Walsh averages and the same null distribution as `centre`'s interval: T is the count of Walsh
    averages on the rarer side of 0, those at 0 counted with it, exact up to EXACT_N values. So
    p <= 1 - confidence exactly when the interval leaves 0 out, ties or not (scipy's tie-corrected
    normal approximation disagreed with the exact interval in 5-44% of cases with whole-point ties)."""
    data = np.asarray(differences, dtype=float)
    data = data[np.isfinite(data)]
    n = int(data.size)
    if n == 0 or not np.any(data != 0):
        return 1.0
    upper = np.triu_indices(n)
    walsh = (data[upper[0]] + data[upper[1]]) / 2
    rarer = min(int(np.count_nonzero(walsh < 0)), int(np.count_nonzero(walsh > 0))) + int(np.count_nonzero(walsh == 0))
    if n <= EXACT_N:
        return float(min(1.0, 2 * _signed_rank_cdf(n)[rarer]))
    mean, sd = n * (n + 1) / 4, math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    z = (rarer + 0.5 - mean) / sd
    return float(min(1.0, math.erfc(-z / math.sqrt(2))))


def smallest_p(n: int) -> float:
    """The smallest two-sided p the signed-rank test can give with n pairs."""
    return 2.0 ** (1 - n) if n else 1.0


def cluster_means(differences: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """The mean difference of each cluster (a prompt's seeds), finite ones only: the seeds of one
    prompt share the prompt's effect, so the prompts, not the pictures, are independent."""
    data: np.ndarray = np.asarray(differences, dtype=float)
    kept: np.ndarray = np.isfinite(data)
    if clusters is None:
        finite: np.ndarray = data[kept]
        return finite
    labels = np.asarray(clusters)[kept]
    data = data[kept]
    if len(set(labels.tolist())) == labels.size:
        return data
    _, inverse = np.unique(labels.astype(str), return_inverse=True)
    sums = np.bincount(inverse, weights=data)
    counts = np.bincount(inverse)
    means: np.ndarray = sums / counts
    return means


def compare_paired(candidate: np.ndarray, baseline: np.ndarray, min_effect: float,
                   alpha: float = DEFAULT_ALPHA, confidence: float = DEFAULT_CONFIDENCE,
                   clusters: np.ndarray | None = None) -> PairedDifference:
    """candidate[i] - baseline[i] over pairs matched by the caller (same prompt and seed);
    `min_effect` is in the figure's own unit (CLIP points, log seconds). `clusters` labels pairs
    that are not independent (several seeds of one prompt): their differences are averaged per
    label first, and the labels are the pairs counted."""
    raw = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    pair_count = int(np.isfinite(raw).sum())
    differences = cluster_means(raw, clusters)
    found = centre(differences, confidence)
    n = found.n
    if smallest_p(n) >= alpha:
        more = next(m for m in range(n, 64) if smallest_p(m) < alpha) - n
        return PairedDifference(found.estimate, found.low, found.high, found.confidence, float("nan"), n,
                                "too few to tell", more, pair_count)
    p_value = signed_rank_p(differences)
    significant = p_value < alpha and (found.low > 0 or found.high < 0)
    verdict = _verdict(found.low, found.high, min_effect, significant)
    more = _pairs_to_resolve(found, min_effect) if verdict == "not resolved" else 0
    return PairedDifference(found.estimate, found.low, found.high, found.confidence, p_value, n, verdict, more,
                            pair_count)


def _verdict(low: float, high: float, min_effect: float, significant: bool) -> str:
    if -min_effect < low and high < min_effect:
        return "negligible"
    if not significant:
        return "not significant"
    if low >= min_effect:
        return "higher"
    if high <= -min_effect:
        return "lower"
    return "not resolved"


def _pairs_to_resolve(found: Centre, min_effect: float) -> int:
    """Pairs to add so that the interval, narrowing as 1/sqrt(n), falls on one side of the bound
    it reaches across (an estimate, as for repeats)."""
    bound = min_effect if found.estimate > 0 else -min_effect
    distance = abs(found.estimate - bound)
    half_width = max(found.high - found.estimate, found.estimate - found.low)
    if distance == 0:
        return MOST_REPEATS_ADVISED
    return min(MOST_REPEATS_ADVISED, max(1, math.ceil(found.n * ((half_width / distance) ** 2 - 1))))


# The fewest pairs of interleaved turns compared as pairs: the signed-rank test reaches p < 0.05 at
# 6. With fewer, the two groups are compared as independent, which interleaving keeps valid (the
# turns of both spread over the same stretch of time), only wider.
FEWEST_PAIRS = 6


def compare_ratio_pairs(candidate: np.ndarray, baseline: np.ndarray, min_effect: float,
                        alpha: float = DEFAULT_ALPHA, confidence: float = DEFAULT_CONFIDENCE) -> Comparison:
    """candidate[i] / baseline[i] over turns that were neighbours in time (one round of interleaved
    order): the Hodges-Lehmann centre of the log ratios and its exact signed-rank interval, as a
    ratio. Whatever the GPU's state did to both turns of a round cancels in their ratio, so drift
    and clock states neither bias it nor widen it. The verdict follows compare_groups' rules."""
    a, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    kept = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    logs = np.log(a[kept]) - np.log(b[kept])
    found = centre(logs, confidence)
    ratio, low, high, n = math.exp(found.estimate), math.exp(found.low), math.exp(found.high), found.n
    if smallest_p(n) >= alpha:
        more = next(m for m in range(n, 64) if smallest_p(m) < alpha) - n
        return Comparison(ratio, low, high, float("nan"), n, n, "too few to tell", found.confidence, more, paired=True)
    p_value = signed_rank_p(logs)
    significant = p_value < alpha and (low > 1 or high < 1)
    verdict = _interval_verdict(low, high, min_effect, significant)
    more_a, more_b = _repeats_to_resolve(ratio, low, high, min_effect, n, n) if verdict == "not resolved" else (0, 0)
    return Comparison(ratio, low, high, p_value, n, n, verdict, found.confidence, more_a, more_needed_baseline=more_b,
                      paired=True)
