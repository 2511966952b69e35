"""Whether one cell's repeats depend on when they ran: a drift (a GPU warming up or throttling) or
clock states held for many generations. Either breaks the rank statistics' premise that repeats are
independent draws, so a cell found so is flagged and its unpaired verdicts withheld
(analysis/compare.py); interleaved pairs cancel both, so their verdicts stand.

Two tests on the repeats in the order they ran, each at ALPHA:
- a trend: the Mann-Kendall test (Kendall's tau between time and seconds), which a drift fails;
- runs above and below the median (Wald-Wolfowitz): clock states give few, long runs.
With both at 1%, independent repeats are flagged about 2% of the time (tests/test_timedependence.py
checks it by simulation, and that drifts and clock states of the sizes GPUs show are found).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.01
FEWEST = 8  # below this many repeats neither test can say much: nothing is claimed


@dataclass(frozen=True)
class TimeDependence:
    kind: str  # "drift" or "clock states"
    p_value: float
    change: float  # drift: the fitted change from first to last repeat, as a share; clock states: slow/fast
    n: int

    def text(self) -> str:
        if self.kind == "drift":
            direction = "slower" if self.change > 0 else "faster"
            return (f"its {self.n} repeats got steadily {direction} in the order they ran ({100 * abs(self.change):.1f}% "
                    f"from first to last, trend p={self.p_value:.2g})")
        return (f"its {self.n} repeats came in long runs of fast and slow ones (runs test p={self.p_value:.2g}; the "
                f"slow half's median {self.change:.2f}x the fast half's): the GPU held clock states")


def _runs_p(values: np.ndarray) -> float:
    """Two-sided-in-spirit, one-sided in use: p of as few runs above/below the median as seen, if the
    order were random (normal approximation of the Wald-Wolfowitz count)."""
    middle = float(np.median(values))
    signs = values[values != middle] > middle
    above, below = int(signs.sum()), int((~signs).sum())
    n = above + below
    if above == 0 or below == 0:
        return 1.0
    runs = 1 + int(np.count_nonzero(signs[1:] != signs[:-1]))
    expected = 1 + 2 * above * below / n
    variance = 2 * above * below * (2 * above * below - n) / (n * n * (n - 1))
    if variance <= 0:
        return 1.0
    z = (runs + 0.5 - expected) / math.sqrt(variance)  # continuity-corrected: fewer runs than chance
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _trend_p(values: np.ndarray) -> float:
    """Two-sided p of the Mann-Kendall trend test: S, the count of later-larger minus later-smaller
    pairs, against its normal approximation with the tie correction and a continuity correction
    (the same test as Kendall's tau against time; a few microseconds for a cell's repeats, where a
    report checks hundreds of cells)."""
    n = values.size
    later = np.sign(values[None, :] - values[:, None])
    s = float(np.triu(later, 1).sum())
    _, counts = np.unique(values, return_counts=True)
    variance = (n * (n - 1) * (2 * n + 5) - float(np.sum(counts * (counts - 1) * (2 * counts + 5)))) / 18
    if variance <= 0 or s == 0:
        return 1.0
    z = (abs(s) - 1) / math.sqrt(variance)
    return math.erfc(z / math.sqrt(2))


def time_dependence(seconds_in_order: Sequence[float]) -> TimeDependence | None:
    """The finding on one cell's measured repeats (in the order they ran), or None when they look
    like independent draws, or are too few to tell."""
    values = np.asarray(seconds_in_order, dtype=float)
    values = values[np.isfinite(values)]
    n = int(values.size)
    if n < FEWEST or np.ptp(values) == 0:
        return None
    trend_p = _trend_p(values)
    if trend_p < ALPHA:
        slope, intercept = np.polyfit(np.arange(n), values, 1)
        start = intercept if intercept > 0 else float(np.median(values))
        return TimeDependence("drift", trend_p, float(slope * (n - 1) / start), n)
    runs_p = _runs_p(values)
    if runs_p < ALPHA:
        middle = float(np.median(values))
        slow, fast = values[values > middle], values[values <= middle]
        change = float(np.median(slow) / np.median(fast)) if slow.size and fast.size else 1.0
        return TimeDependence("clock states", runs_p, change, n)
    return None
