"""Video cost against clip length: seconds per clip and peak memory as functions of frames.

Per setting (everything but frames equal), from the clips measured at several frame counts:
seconds = a + b·frames + c·frames² (attention grows with the square of the tokens, everything
else with the tokens; a straight line where only two frame counts were measured), and peak
memory = m + k·frames (activations grow with the tokens; SDPA's attention does not keep the
square). An answer inside the measured frames is an interpolation, outside it an extrapolation,
and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..rules import axes
from ..rules.tasks import VIDEO_TASKS
from .costmodel import setting_groups
from .tables import CARD_MEMORY_SOURCES, card_memory, measured, setting_label


@dataclass
class ClipFit:
    """One video setting's cost against frames."""

    settings: dict[str, Any]
    label: str
    frames: list[int]  # the frame counts measured
    seconds: list[float]  # median seconds per clip at each
    memory_gib: list[float]  # peak card memory at each (NaN where not known)
    memory_kind: str
    time_coefficients: list[float] = field(default_factory=list)  # a, b[, c]
    memory_coefficients: list[float] = field(default_factory=list)  # m, k

    @property
    def shape(self) -> str:
        return "quadratic in frames" if len(self.time_coefficients) == 3 else "linear in frames"

    def worst_fit_error(self) -> float:
        """The largest relative miss of the fit at the measured points (0 for an exact fit)."""
        fitted = np.polyval(self.time_coefficients[::-1], np.array(self.frames, dtype=float))
        return float(np.max(np.abs(fitted / np.array(self.seconds) - 1)))

    def predict(self, frames: int) -> tuple[float, float | None]:
        seconds = float(np.polyval(self.time_coefficients[::-1], frames))
        memory = float(np.polyval(self.memory_coefficients[::-1], frames)) if self.memory_coefficients else None
        return seconds, memory

    def sentence(self, frames: int) -> str:
        seconds, memory = self.predict(frames)
        low, high = min(self.frames), max(self.frames)
        where = "interpolated" if low <= frames <= high else f"EXTRAPOLATED beyond the measured {low}-{high} frames"
        memory_text = f"; peak memory {memory:.2f} GiB ({self.memory_kind}, linear in frames)" if memory else ""
        return (f"{self.label}: {frames} frames -> {seconds:.3f} s per clip{memory_text} [{where}; {self.shape}, "
                f"fitted on {', '.join(map(str, self.frames))} frames, worst miss at those "
                f"{100 * self.worst_fit_error():.1f}%]")


def clip_fits(frame: pd.DataFrame) -> list[ClipFit]:
    """A fit per video setting measured at two frame counts or more."""
    data = measured(frame)
    if data.empty or "task" not in data or "frames" not in data:
        return []
    data = data[data["task"].isin(sorted(VIDEO_TASKS)) & data["frames"].notna()]
    columns = [c for c in (*axes.COST_COLUMNS, "steps") if c in data and c != "frames"]
    fits = []
    for settings, group in setting_groups(data, columns) if not data.empty else []:
        by_frames = group.groupby("frames")
        if by_frames.ngroups < 2:
            continue
        counts = [int(f) for f in by_frames.groups]
        seconds = [float(by_frames.get_group(f)["s_per_image"].median()) for f in by_frames.groups]
        memory_columns = [c for c, _ in CARD_MEMORY_SOURCES if c in group]
        memory = [card_memory(by_frames.get_group(f)[memory_columns].max()) for f in by_frames.groups]
        fit = ClipFit(settings, "", counts, seconds, [m for m, _ in memory], memory[0][1])
        degree = 2 if len(counts) >= 3 else 1
        fit.time_coefficients = list(np.polynomial.polynomial.polyfit(counts, seconds, degree))
        known = [(f, m) for f, m in zip(counts, fit.memory_gib) if np.isfinite(m)]
        if len(known) >= 2:
            xs, ys = zip(*known)
            fit.memory_coefficients = list(np.polynomial.polynomial.polyfit(xs, ys, 1))
        fits.append(fit)
    # each labelled by what tells it from the others (the model alone when that is all)
    differ = [c for c in columns if len({str(f.settings[c]) for f in fits}) > 1] or ["model"]
    for fit in fits:
        fit.label = setting_label(fit.settings, differ if "model" in differ else ["model", *differ])
    return fits
