"""Statistics that say when a difference is real: medians, spread, bootstrap intervals, a
rank test plus a minimum effect size. Pure functions over arrays; no plotting, no I/O.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_EFFECT = 0.05  # a difference under 5% is not worth a headline, significant or not
DEFAULT_ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
MIN_SAMPLES = 3


def _array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    return data[np.isfinite(data)]


def median(values: Sequence[float]) -> float:
    data = _array(values)
    return float(np.median(data)) if data.size else float("nan")


def iqr(values: Sequence[float]) -> float:
    """Interquartile range (Q3 - Q1)."""
    data = _array(values)
    if not data.size:
        return float("nan")
    q1, q3 = np.percentile(data, [25, 75])
    return float(q3 - q1)


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (unscaled)."""
    data = _array(values)
    return float(np.median(np.abs(data - np.median(data)))) if data.size else float("nan")


@functools.lru_cache(maxsize=8192)
def _bootstrap_medians_cached(raw: bytes, resamples: int, seed: int) -> np.ndarray:
    data = np.frombuffer(raw, dtype=float)
    picks = np.random.default_rng(seed).integers(0, data.size, size=(resamples, data.size))
    medians = np.median(data[picks], axis=1)
    medians.flags.writeable = False
    return medians


def _bootstrap_medians(data: np.ndarray, resamples: int, seed: int | None) -> np.ndarray:
    """Medians of `resamples` resamples of `data`, deterministic for a seed.

    Cached: a report bootstraps the same group for many comparisons (by each axis, against
    each candidate), and the answer only depends on the data and the seed.
    """
    return _bootstrap_medians_cached(np.ascontiguousarray(data, dtype=float).tobytes(), resamples,
                                     0 if seed is None else seed)


def bootstrap_ci_median(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE,
                        resamples: int = BOOTSTRAP_RESAMPLES, seed: int | None = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the median. Seeded: the same data give the same interval."""
    data = _array(values)
    if data.size == 0:
        return float("nan"), float("nan")
    if data.size == 1:
        return float(data[0]), float(data[0])
    medians = _bootstrap_medians(data, resamples, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(medians, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_ci_ratio(numerator: Sequence[float], denominator: Sequence[float],
                       confidence: float = DEFAULT_CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int | None = 0) -> tuple[float, float]:
    """Interval for median(numerator) / median(denominator), resampling each group independently."""
    a, b = _array(numerator), _array(denominator)
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    # Different streams for the two groups: resampled independently even when their data are equal.
    base = 0 if seed is None else seed
    ratios = _bootstrap_medians(a, resamples, base + 1) / _bootstrap_medians(b, resamples, base + 2)
    tail = (1 - confidence) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return float(low), float(high)


def rank_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (no assumption of normal timings)."""
    from scipy.stats import mannwhitneyu

    x, y = _array(a), _array(b)
    if x.size == 0 or y.size == 0:
        return float("nan")
    if np.all(x == x[0]) and np.all(y == y[0]):
        return 1.0 if x[0] == y[0] else 0.0
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class Comparison:
    """How a candidate group compares with a baseline group on one metric."""

    ratio: float  # median(candidate) / median(baseline)
    ratio_low: float
    ratio_high: float
    p_value: float
    n_candidate: int
    n_baseline: int
    verdict: str  # "higher", "lower", "not significant", "negligible", "too few samples"

    @property
    def significant(self) -> bool:
        return self.verdict in {"higher", "lower"}


def compare_groups(candidate: Sequence[float], baseline: Sequence[float], min_effect: float = DEFAULT_MIN_EFFECT,
                   alpha: float = DEFAULT_ALPHA, confidence: float = DEFAULT_CONFIDENCE,
                   seed: int | None = 0) -> Comparison:
    """Compare two groups of measurements.

    A difference is called real ("higher"/"lower") only when all three agree: the rank test
    rejects equality at `alpha`, the bootstrap interval of the ratio of medians excludes 1,
    and the ratio differs from 1 by at least `min_effect`. A significant difference smaller
    than `min_effect` is "negligible"; otherwise "not significant".
    """
    a, b = _array(candidate), _array(baseline)
    ratio = median(a) / median(b) if a.size and b.size and median(b) != 0 else float("nan")
    if a.size < MIN_SAMPLES or b.size < MIN_SAMPLES:
        return Comparison(ratio, float("nan"), float("nan"), float("nan"), int(a.size), int(b.size),
                          "too few samples")
    low, high = bootstrap_ci_ratio(a, b, confidence=confidence, seed=seed)
    p_value = rank_test(a, b)
    excludes_one = low > 1 or high < 1
    if p_value < alpha and excludes_one:
        verdict = ("higher" if ratio > 1 else "lower") if abs(ratio - 1) >= min_effect else "negligible"
    else:
        verdict = "not significant"
    return Comparison(ratio, low, high, p_value, int(a.size), int(b.size), verdict)


def pareto_front(costs: np.ndarray) -> np.ndarray:
    """Boolean mask of rows not dominated by any other row (every column: lower is better)."""
    costs = np.asarray(costs, dtype=float)
    keep = np.ones(len(costs), dtype=bool)
    for i, row in enumerate(costs):
        others = np.delete(costs, i, axis=0)
        dominated = np.any(np.all(others <= row, axis=1) & np.any(others < row, axis=1))
        keep[i] = not dominated
    return keep


@dataclass(frozen=True)
class LinearFit:
    """seconds = fixed + per_unit * units, least squares, with R² and the number of points."""

    fixed: float
    per_unit: float
    r2: float
    points: int


def fit_fixed_plus_per_unit(units: Sequence[float], seconds: Sequence[float]) -> LinearFit | None:
    """Fit fixed + per-step cost; None with fewer than two distinct step counts."""
    x, y = np.asarray(units, dtype=float), np.asarray(seconds, dtype=float)
    if len(np.unique(x)) < 2:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    predicted = intercept + slope * x
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - float(np.sum((y - predicted) ** 2)) / total if total > 0 else 1.0
    return LinearFit(float(intercept), float(slope), r2, int(len(x)))
