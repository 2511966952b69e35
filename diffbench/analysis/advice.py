"""Typed warnings about results, each saying what to change (after hyperfine's habit)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .frames import measured

HIGH_VARIATION = 0.10  # coefficient of variation of seconds per image across repeats
SLOW_FIRST = 1.5  # first measured generation this many times the median of the rest


@dataclass(frozen=True)
class Advice:
    kind: str
    subject: str
    message: str

    def text(self) -> str:
        return f"{self.kind}: {self.subject}: {self.message}"


def advise(frame: pd.DataFrame, summary: pd.DataFrame) -> list[Advice]:
    """Warnings about the measurements themselves."""
    found: list[Advice] = []
    if frame.empty:
        return found
    for _, row in summary.iterrows():
        subject = f"{row['label']} on {row['hostname']}"
        if row["n"] >= 3 and row["cv"] > HIGH_VARIATION:
            found.append(Advice("high variation", subject,
                                f"repeats vary by {100 * row['cv']:.0f}% (coefficient of variation): close other "
                                "programs, check for throttling, or add repeats"))
        if row["n"] < 3:
            found.append(Advice("few repeats", subject, f"only {int(row['n'])} measured generations: statistics "
                                                        "need at least 3; raise repeats"))
    data = measured(frame)
    for (cell_id, host), group in data.groupby(["cell_id", "hostname"], sort=False):
        ordered = group.sort_values("repeat")["s_per_image"].to_numpy(dtype=float)
        if len(ordered) >= 3 and ordered[0] > SLOW_FIRST * np.median(ordered[1:]):
            label = summary.loc[(summary["cell_id"] == cell_id) & (summary["hostname"] == host), "label"]
            found.append(Advice("slow first run", f"{label.iloc[0] if len(label) else cell_id} on {host}",
                                f"the first measured generation took {ordered[0] / np.median(ordered[1:]):.1f}x the "
                                "others: add a warm-up generation"))
    if "weights" in frame and (frame["weights"] == "random").any():
        found.append(Advice("random weights", "built-in or synthetic models",
                            "their images are noise; only speed and memory mean something"))
    if "runtime_vram_limit" in frame and frame["runtime_vram_limit"].notna().any():
        found.append(Advice("emulated VRAM", "vram_limit cells",
                            "capacity is emulated, speed is not: times are those of the real card"))
    return found


def software_mismatches(runs: pd.DataFrame) -> list[Advice]:
    """Versions that differ between the runs being compared (pyperf's rule: say so, never hide it)."""
    found = []
    for column in ("sw_torch", "sw_diffusers", "sw_transformers", "sw_diffbench"):
        if column in runs and runs[column].nunique(dropna=True) > 1:
            versions = ", ".join(sorted(runs[column].dropna().astype(str).unique()))
            found.append(Advice("mixed software", column[3:], f"results come from different versions ({versions}): "
                                                                "differences may be software, not hardware"))
    return found
