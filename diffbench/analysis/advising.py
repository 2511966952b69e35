"""Warnings about any merged set of results, for the report and `analyse`: the run-time checks of
execute/advice.py recomputed over every cell, and what differs between the runs compared."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..execute.advice import Advice, check_repeats
from .tables import measured


def advise(frame: pd.DataFrame, summary: pd.DataFrame) -> list[Advice]:
    """Warnings about the measurements themselves, for any merged set of results."""
    found: list[Advice] = []
    if frame.empty:
        return found
    labels = dict(zip(zip(summary["cell_id"], summary["hostname"]), summary["label"])) if not summary.empty else {}
    warmups = frame[frame["warmup"].astype(bool) & (frame["status"] == "ok")].groupby(["cell_id", "hostname"]).size()
    data = measured(frame)
    seconds, repeats = data["s_per_image"].to_numpy(dtype=float), data["repeat"].to_numpy()
    pilots: dict[tuple[str, str], list[float]] = {}
    if "pilot" in frame:  # repeats: auto's pilot: seen by the slow-first check
        pilot = frame[frame["pilot"].astype("boolean").fillna(False).astype(bool) & (frame["status"] == "ok")]
        for (cell_id, host), group in pilot.sort_values("repeat").groupby(["cell_id", "hostname"]):
            pilots[(str(cell_id), str(host))] = group["s_per_image"].astype(float).tolist()
    throttling = "telemetry_throttled" in data
    groups = data.groupby(["cell_id", "hostname"], sort=False).indices
    for (cell_id, host), rows in sorted(groups.items(), key=lambda item: item[1][0]):  # in order of appearance
        subject = f"{labels.get((cell_id, host), cell_id)} on {host}"
        in_order = rows[np.argsort(repeats[rows], kind="stable")]
        found += check_repeats(subject, seconds[in_order], int(warmups.get((cell_id, host), 0)),
                               pilots.get((str(cell_id), str(host)), []))
        if throttling:
            group = data.iloc[rows]
            throttled = group[group["telemetry_throttled"].fillna(False).astype(bool)]
            if not throttled.empty:
                reasons = sorted({r for rs in throttled["telemetry_throttle_reasons"] for r in (rs or [])})
                found.append(Advice("throttling", subject, f"the GPU slowed itself ({', '.join(reasons)}) in "
                                                           f"{len(throttled)} of {len(group)} generations"))
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
