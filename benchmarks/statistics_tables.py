"""The statistics tables of docs/statistics.md, by simulation with a known answer.

    python benchmarks/statistics_tables.py [--replications 2000]

1. repeats: auto: the median interval's coverage against the confidence it states, and how often
   two auto cells of one setting are called different (p < 0.05, interval excluding 1), for the
   rule diffbench uses (a pilot fixes the count; the pilot is left out) and for the rule it
   replaced (stop once the interval looks 2% wide).
2. Power of a comparison (compare_groups) at true slowdowns of 2%, 5% and 20% with 6, 12 and 30
   repeats per setting: how often it is significant, and how often the verdict is "slower"
   (the whole interval beyond the 5% minimum effect).
3. A GPU whose speed depends on time (tests/timelines.py: clock states, drift, warm-up, a slow first
   repeat), two repeats: auto cells run in blocked and in interleaved order: how often the ratio's
   interval covers the true ratio (among the comparisons judged), the confidence it states, how
   often two cells of one setting get a faster/slower verdict, how often a comparison is withheld
   as unsteady, and the mean count of repeats in a cell's statistics.
The six shapes of 1 and 2 are those of tests/test_repeats.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_repeats import SHAPES, _auto_cell, _draw  # noqa: E402
from timelines import MACHINES, outcome  # noqa: E402

from diffbench.rules.repeats import AutoRepeats  # noqa: E402
from diffbench.stats.intervals import compare_groups, median_ci  # noqa: E402


def _stop_when_narrow(shape: str, rng: np.random.Generator) -> np.ndarray:
    """The rule diffbench replaced: stop once the median's interval is 2% wide (6 to 30 repeats)."""
    walls: list[float] = []
    while True:
        walls.append(float(_draw(shape, rng, 1)[0]))
        if len(walls) >= 6:
            low, high, _ = median_ci(walls)
            if (high - low) / sorted(walls)[len(walls) // 2] <= 0.02 or len(walls) >= 30:
                return np.array(walls)


def _significant(candidate: np.ndarray, baseline: np.ndarray) -> tuple[bool, bool]:
    found = compare_groups(candidate, baseline)
    return bool(found.p_value < 0.05 and (found.ratio_low > 1 or found.ratio_high < 1)), found.verdict == "higher"


def auto_table(replications: int) -> list[str]:
    policy = AutoRepeats(cell_budget_s=1e9)
    rows = ["| shape | stop when narrow: coverage / stated / false positives / repeats | pilot fixes the count: "
            "coverage / stated / false positives / repeats (+4 pilot) |", "|---|---|---|"]
    for shape in SHAPES:
        rng = np.random.default_rng(7)
        true_median = float(np.median(_draw(shape, rng, 400_000)))
        cells = []
        for rule in (_stop_when_narrow, lambda s, r: _auto_cell(s, r, policy)):
            covered = false_positive = 0
            stated, counts = [], []
            for _ in range(replications):
                first = rule(shape, rng)
                low, high, achieved = median_ci(first)
                covered += low <= true_median <= high
                stated.append(achieved)
                counts.append(first.size)
                false_positive += _significant(rule(shape, rng), first)[0]
            cells.append(f"{100 * covered / replications:.1f}% / {100 * np.mean(stated):.1f}% / "
                         f"{100 * false_positive / replications:.1f}% / {np.mean(counts):.1f}")
        rows.append(f"| {shape} | {cells[0]} | {cells[1]} |")
    return rows


def power_table(replications: int) -> list[str]:
    rows = ["| shape | repeats | 2% slower: significant / verdict 'slower' | 5% | 20% |", "|---|---|---|---|---|"]
    rng = np.random.default_rng(9)
    for shape in SHAPES:
        for n in (6, 12, 30):
            cells = []
            for ratio in (1.02, 1.05, 1.2):
                found = [_significant(ratio * _draw(shape, rng, n), _draw(shape, rng, n)) for _ in range(replications)]
                cells.append(f"{100 * np.mean([s for s, _ in found]):.0f}% / {100 * np.mean([h for _, h in found]):.0f}%")
            rows.append(f"| {shape} | {n} | " + " | ".join(cells) + " |")
    return rows


def order_table(replications: int) -> list[str]:
    policy = AutoRepeats(cell_budget_s=1e9)
    rows = ["| machine | order | true ratio 1: coverage / stated / called faster or slower / withheld | "
            "true ratio 1.06: coverage / stated / called faster / withheld | repeats |", "|---|---|---|---|---|"]
    for shape in MACHINES:
        for order in ("blocked", "interleaved"):
            cells, counts = [], []
            for ratio in (1.0, 1.06):
                found = outcome(shape, order, ratio, np.random.default_rng(13), replications, policy)
                counts.append(found.repeats)
                cells.append(f"{100 * found.coverage:.1f}% / {100 * found.stated:.1f}% / "
                             f"{100 * found.wrong:.1f}% / {100 * found.withheld:.1f}%")
            rows.append(f"| {shape} | {order} | {cells[0]} | {cells[1]} | {np.mean(counts):.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=2000)
    args = parser.parse_args()
    print("\n".join(auto_table(args.replications)))
    print()
    print("\n".join(power_table(max(200, args.replications // 2))))
    print()
    print("\n".join(order_table(max(200, args.replications // 2))))


if __name__ == "__main__":
    main()
