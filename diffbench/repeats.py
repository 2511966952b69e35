"""How many measured repeats a cell gets: a fixed count, or `auto`, decided by the data.

`auto` runs until the median's 95% interval is narrow enough (relative to the median), or a
count or time budget is spent, never fewer than the minimum at which the statistics can decide
(six repeats: the order-statistic interval of the median reaches 95%, and a rank test between two
such cells can reach p < 0.05). Pure functions: the worker calls them between generations.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIN_DECIDING = 6  # the one "enough repeats" threshold: auto's floor, and what the warnings ask for
FEW_REPEATS = (f"a comparison needs at least 4 per setting to be able to say 'significant', and {MIN_DECIDING} "
               "for a 95% interval of the median; repeats: auto decides from the data")


class AutoRepeats(BaseModel):
    """The stopping rule of `repeats: auto` (suite field `auto_repeats`)."""

    model_config = ConfigDict(extra="forbid")

    min: Annotated[int, Field(ge=MIN_DECIDING, le=1000)] = MIN_DECIDING
    max: Annotated[int, Field(ge=MIN_DECIDING, le=1000)] = 30
    target: Annotated[float, Field(gt=0, le=1, description="width of the median's 95% interval / median")] = 0.02
    cell_budget_s: Annotated[float, Field(gt=0, description="measured seconds per cell before it stops")] = 120.0

    @model_validator(mode="after")
    def _ordered(self) -> AutoRepeats:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be at least min ({self.min})")
        return self


def stop_reason(walls: list[float], policy: AutoRepeats, spent_s: float) -> dict[str, Any] | None:
    """None to go on; else why this cell has enough: {reason, n, relative_width}."""
    from .analysis.stats import median_ci

    n = len(walls)
    width = None
    if n >= 2:
        low, high, _ = median_ci(walls)
        middle = sorted(walls)[n // 2]
        width = (high - low) / middle if middle > 0 else None
    if n >= policy.min and width is not None and width <= policy.target:
        reason = f"the median's 95% interval is {100 * width:.1f}% wide (target {100 * policy.target:g}%)"
    elif n >= policy.max:
        reason = f"reached the most repeats allowed ({policy.max})"
    elif n >= policy.min and spent_s >= policy.cell_budget_s:
        reason = f"spent the cell's time budget ({policy.cell_budget_s:g} s)"
    else:
        return None
    return {"reason": reason, "n": n, "relative_width": width, "target": policy.target}
