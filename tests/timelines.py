"""A simulated GPU whose speed depends on time, and cells run on it in blocked or interleaved order,
through diffbench's own order (execute/order.py), repeats: auto rule (repeats.py), time-dependence
check and comparison (analysis/compare.judge). Shared by tests/test_time_dependence.py and
benchmarks/statistics_tables.py.

Shapes of the machine (a factor on every generation's time, by its place in the run):
- independent: lognormal noise only (sigma 1%)
- clock states: two states, 1.0 and 1.25, each held 10-33 generations
- drift: 0.2% slower every generation
- clock states + drift: both
- warm-up: 5% slow at first, decaying with a time constant of 8 generations
- slow first: each cell's first generation after its warm-up 2x (a cold cache)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from diffbench.analysis.compare import judge
from diffbench.analysis.pairedstats import FEWEST_PAIRS
from diffbench.execute.order import round_order
from diffbench.rules.repeats import AutoRepeats, stop_reason
from diffbench.stats.timedependence import time_dependence

MACHINES = ("independent", "clock states", "drift", "clock states + drift", "warm-up", "slow first")


def machine(shape: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """The factor on the time of each generation of a run `length` long."""
    factor = np.exp(0.01 * rng.standard_normal(length))
    if "clock states" in shape:
        states = np.ones(length)
        t, slow = 0, bool(rng.random() < 0.5)
        while t < length:
            dwell = int(rng.integers(10, 34))
            states[t:t + dwell] = 1.25 if slow else 1.0
            slow, t = not slow, t + dwell
        factor *= states
    if "drift" in shape:
        factor *= 1 + 0.002 * np.arange(length)
    if shape == "warm-up":
        factor *= 1 + 0.05 * np.exp(-np.arange(length) / 8)
    return factor


@dataclass
class SimulatedCell:
    ratio: float  # its true time against the baseline cell's
    walls: list[float] = field(default_factory=list)  # measured, in the order they ran (pilot first)
    rounds: list[int] = field(default_factory=list)
    pilot: int = 0
    ended: bool = False

    @property
    def counted(self) -> np.ndarray:
        """What the statistics use: the measured repeats after the pilot."""
        return np.array(self.walls[self.pilot:])


def run(shape: str, order: str, ratios: tuple[float, ...], rng: np.random.Generator, repeats: int | None = None,
        policy: AutoRepeats | None = None, warmup: int = 1, seed: int = 0) -> list[SimulatedCell]:
    """Cells of the given true ratios run on one simulated machine: each cell's warm-ups at its first
    turn, then its measured repeats (a fixed count, or repeats: auto's `policy`)."""
    most = repeats if repeats is not None else (policy.pilot + policy.max if policy else 0)
    timeline = machine(shape, len(ratios) * (warmup + most) + 2, rng)
    clock = iter(range(len(timeline)))
    cells = [SimulatedCell(r, pilot=policy.pilot if policy else 0) for r in ratios]
    first_turn = {id(c): True for c in cells}

    def generate(cell: SimulatedCell, round_index: int) -> None:
        wall = cell.ratio * float(timeline[next(clock)])
        if shape == "slow first" and first_turn[id(cell)]:
            wall *= 2.0
        first_turn[id(cell)] = False
        cell.walls.append(wall)
        cell.rounds.append(round_index)
        if policy is not None:
            cell.ended = stop_reason(cell.walls, policy) is not None
        else:
            cell.ended = len(cell.walls) >= (repeats or 0)

    def warm(cell: SimulatedCell) -> None:
        for _ in range(warmup):
            next(clock)

    if order == "blocked":
        for cell in cells:
            warm(cell)
            index = 0
            while not cell.ended:
                generate(cell, index)
                index += 1
        return cells
    for cell in cells:
        warm(cell)
    round_index = 0
    while not all(c.ended for c in cells):
        for position in round_order(len(cells), seed, round_index):
            if not cells[position].ended:
                generate(cells[position], round_index)
        round_index += 1
    return cells


def compared(candidate: SimulatedCell, baseline: SimulatedCell, order: str, min_effect: float = 0.05):
    """analysis/compare.judge on two simulated cells, as `compare` calls it on their results."""
    a, b = candidate.counted, baseline.counted
    pairs = None
    if order == "interleaved":
        by_round_a = dict(zip(candidate.rounds[candidate.pilot:], a))
        by_round_b = dict(zip(baseline.rounds[baseline.pilot:], b))
        common = [r for r in by_round_a if r in by_round_b]
        if len(common) >= FEWEST_PAIRS:
            pairs = (np.array([by_round_a[r] for r in common]), np.array([by_round_b[r] for r in common]))
    unsteady = time_dependence(a) is not None or time_dependence(b) is not None
    return judge(np.sort(a), np.sort(b), min_effect, False, pairs, noisy=False, unsteady=unsteady, allow_noisy=False)


@dataclass
class Outcome:
    """How comparisons of two cells fared over many simulated runs."""

    coverage: float  # among those judged: the ratio's interval held the true ratio
    stated: float  # the mean confidence the intervals stated
    wrong: float  # a verdict against the truth (faster/slower at a true 1; faster at a true > 1)
    withheld: float  # verdict "unsteady"
    repeats: float  # mean count in a cell's statistics


def outcome(shape: str, order: str, ratio: float, rng: np.random.Generator, replications: int,
            policy: AutoRepeats) -> Outcome:
    covered = judged = wrong = 0
    stated: list[float] = []
    counts: list[int] = []
    for _ in range(replications):
        candidate, baseline = run(shape, order, (ratio, 1.0), rng, policy=policy)
        counts.append(len(candidate.counted))
        found = compared(candidate, baseline, order)
        wrong += found.verdict in ({"higher", "lower"} if ratio == 1.0 else {"lower"})
        if found.verdict != "unsteady":
            judged += 1
            covered += found.ratio_low <= ratio <= found.ratio_high
            stated.append(found.confidence)
    return Outcome(covered / max(judged, 1), float(np.mean(stated)) if stated else float("nan"),
                   wrong / replications, 1 - judged / replications, float(np.mean(counts)))
