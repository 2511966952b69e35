"""How many measured repeats a cell gets: a fixed count, or `auto`, decided by the data.

`auto` decides the count once, from a pilot: the cell's first `pilot` measured repeats (4). Their
spread sets how many more a median interval `target` wide needs: at least `min` (six: the fewest
at which the order-statistic interval of the median reaches 95%, and a rank test between two such
cells can reach p < 0.05), at most `max` and what the cell's time budget affords at the pilot's
pace. The cell runs exactly that many more, and only those are its statistics: the pilot is stored
(`pilot: true`) but, like a warm-up, left out. Both shortcuts fail by simulation
(tests/test_repeats.py): stopping the moment the interval first looks narrow enough chooses the
sample by the very thing it reports (93.1% coverage for a stated 95.8% on quiet data), and
counting the pilot in calls two cells of one setting different 7-8% of the time where their
clocks switch between two states (a pilot that happened to see one state stops early and
unrepresentative). Repeats after a count fixed in advance are an honest sample. Pure functions:
the worker calls them between generations.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIN_DECIDING = 6  # the one "enough repeats" threshold: auto's floor, and what the warnings ask for
FEW_REPEATS = (f"a comparison needs at least 4 per setting to be able to say 'significant', and {MIN_DECIDING} "
               "for a 95% interval of the median; repeats: auto decides from the data")


class AutoRepeats(BaseModel):
    """The stopping rule of `repeats: auto` (suite field `auto_repeats`)."""

    model_config = ConfigDict(extra="forbid")

    pilot: Annotated[int, Field(ge=2, le=100, description="repeats that decide the count, then left out")] = 4
    min: Annotated[int, Field(ge=MIN_DECIDING, le=1000)] = MIN_DECIDING
    max: Annotated[int, Field(ge=MIN_DECIDING, le=1000)] = 30
    target: Annotated[float, Field(gt=0, le=1, description="width of the median's 95% interval / median")] = 0.02
    cell_budget_s: Annotated[float, Field(gt=0, description="measured seconds per cell before it stops")] = 120.0

    @model_validator(mode="after")
    def _ordered(self) -> AutoRepeats:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be at least min ({self.min})")
        return self


class SteadyWarmup(BaseModel):
    """Warm-ups that go on until the GPU is steady (suite field `warmup_steady`): after the suite's
    `warmup` (at least 2 in all), until the last two agree within `tolerance`, at most `max`."""

    model_config = ConfigDict(extra="forbid")

    tolerance: Annotated[float, Field(gt=0, le=1, description="share of the faster of the last two")] = 0.05
    max: Annotated[int, Field(ge=2, le=100, description="warm-ups at most")] = 8


# The median's standard error is sqrt(pi/2) = 1.2533 times the mean's for normal data, and a 95%
# interval spans about 2 x 1.96 standard errors: the count at which it is `target` wide.
MEDIAN_INTERVAL_SPAN = 2 * 1.96 * 1.2533


# A pilot repeat this many times the median of the others is a disturbance (a slow first repeat, a
# stray process), not the cell's spread: left out of the spread (and reported as a slow first run
# by the cell's checks), so that one such repeat does not send the cell to `max`. The same factor
# as the slow-first check's (execute/advice.SLOW_FIRST).
STRAY_PILOT = 1.5


def pilot_spread(pilot: list[float]) -> tuple[float, int]:
    """The pilot's coefficient of variation, its slowest repeat left out when that one is a stray
    (STRAY_PILOT x the median of the others, in a pilot of 4 or more); and how many were left out."""
    import statistics

    values = sorted(pilot)
    left_out = 0
    if len(values) >= 4 and values[-1] > STRAY_PILOT * statistics.median(values[:-1]):
        values, left_out = values[:-1], 1
    middle = statistics.median(values) if values else 0.0
    spread = statistics.stdev(values) / middle if len(values) > 1 and middle > 0 else 0.0
    return spread, left_out


def planned_count(pilot: list[float], policy: AutoRepeats) -> tuple[int, str]:
    """The count the pilot's spread calls for, and why: what a median interval `target` wide
    needs, at least `min`, at most `max` and what the time budget affords at the pilot's pace."""
    import statistics

    middle = statistics.median(pilot)
    spread, left_out = pilot_spread(pilot)
    needed = math.ceil((MEDIAN_INTERVAL_SPAN * spread / policy.target) ** 2) if spread > 0 else policy.min
    left = max(0.0, policy.cell_budget_s - sum(pilot))  # the pilot spent part of the budget
    affordable = math.floor(left / middle) if middle > 0 else policy.max
    count = max(policy.min, min(needed, policy.max, affordable))
    stray = f" (its slowest, {max(pilot) / middle:.1f}x the median, left out as a stray)" if left_out else ""
    why = (f"a pilot of {len(pilot)} repeats varied by {100 * spread:.1f}%{stray}: {needed} more give a median "
           f"interval about {100 * policy.target:g}% wide")
    if count < needed:
        why += (f", capped at {count} (the most allowed)" if count == policy.max and policy.max <= affordable else
                f", capped at {count} by the cell's time budget ({policy.cell_budget_s:g} s)")
    return count, why


def in_pilot(walls_so_far: list[float], policy: AutoRepeats) -> bool:
    """Whether the next measured generation of a cell belongs to its pilot."""
    return len(walls_so_far) < policy.pilot


def stop_reason(walls: list[float], policy: AutoRepeats, spent_s: float = 0.0) -> dict[str, Any] | None:
    """None to go on; else why this cell has enough: {reason, n (repeats in the statistics), pilot,
    relative_width, target}. `walls` are every measured generation in order, the pilot's first; the
    count after the pilot is fixed by it (`spent_s` is kept for callers: the budget acts through
    the pilot's pace)."""
    from ..stats.intervals import median_ci

    if len(walls) < policy.pilot:
        return None
    count, why = planned_count(walls[:policy.pilot], policy)
    counted = walls[policy.pilot:]
    if len(counted) < count:
        return None
    from ..stats.timedependence import time_dependence

    low, high, _ = median_ci(counted)
    middle = sorted(counted)[len(counted) // 2]
    width = (high - low) / middle if middle > 0 else None
    stop = {"reason": why, "n": len(counted), "pilot": policy.pilot, "relative_width": width, "target": policy.target}
    finding = time_dependence(counted)  # more repeats would not mend it: said where the cell stops
    if finding is not None:
        stop["time_dependence"] = f"{finding.kind}: {finding.text()}"
    return stop
