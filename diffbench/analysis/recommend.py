"""recommend: the Pareto-optimal settings under the user's constraints, why each, and what was
left out and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .frames import HOST_RSS, cell_summary
from .quality import step_quality


@dataclass
class Candidate:
    cell_id: str
    hostname: str
    label: str
    hardware: str
    seconds: float
    memory_gib: float | None
    memory_kind: str
    quality: float | None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def is_vram(self) -> bool:
        return self.memory_kind != HOST_RSS

    def describe(self) -> str:
        memory = f"{self.memory_gib:.2f} GiB {self.memory_kind}" if self.memory_gib is not None else "memory unknown"
        quality = f", SSIM {self.quality:.3f} to the reference" if self.quality is not None else ""
        return f"{self.label} on {self.hardware} ({self.hostname}): {self.seconds:.3f} s/image, {memory}{quality}"


@dataclass
class Recommendation:
    chosen: list[tuple[Candidate, list[str]]]
    excluded: list[tuple[str, str]]  # (what, why)
    constraints: list[str]


def candidates(frame: pd.DataFrame, summary: pd.DataFrame | None = None,
               quality: pd.DataFrame | None = None) -> list[Candidate]:
    """Every measured setting as a candidate (the summary and quality may come computed already)."""
    summary = cell_summary(frame) if summary is None else summary
    if summary.empty:
        return []
    quality = step_quality(frame) if quality is None else quality
    by_cell = {(q.cell_id, q.hostname): q.ssim for q in quality.itertuples()} if not quality.empty else {}
    found = []
    for _, row in summary.iterrows():
        memory, kind = row["card_memory_gib"], row["card_memory_kind"]  # the one figure for fitting a card
        memory = None if not np.isfinite(memory) else float(memory)
        value = by_cell.get((row["cell_id"], row["hostname"]))
        found.append(Candidate(row["cell_id"], row["hostname"], row["label"], str(row["hardware"]),
                               float(row["s_per_image"]), memory, kind,
                               None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value),
                               row.to_dict()))
    return found


def recommend(frame: pd.DataFrame, vram_gib: float | None = None, max_seconds: float | None = None,
              min_quality: float | None = None, gpu: str | None = None, summary: pd.DataFrame | None = None,
              quality: pd.DataFrame | None = None) -> Recommendation:
    constraints = []
    if vram_gib is not None:
        constraints.append(f"fits in {vram_gib:g} GiB of VRAM")
    if max_seconds is not None:
        constraints.append(f"at most {max_seconds:g} s per image")
    if min_quality is not None:
        constraints.append(f"SSIM to the common reference (most steps, model sampler) at least {min_quality:g}")
    if gpu:
        constraints.append(f"on a GPU matching '{gpu}'")
    excluded: list[tuple[str, str]] = []
    failed = frame[frame["status"] != "ok"].drop_duplicates(["cell_id", "hostname"]) if not frame.empty else frame
    for row in failed.itertuples():
        limit = getattr(row, "vram_limit", None)
        where = f" at vram_limit {limit}" if isinstance(limit, str) else ""
        excluded.append((f"{row.model} {row.sampler} {row.steps} steps ({row.cell_id}) on {row.hostname}",
                         f"{row.status}{where}: {row.error}"))
    keep: list[Candidate] = []
    for candidate in candidates(frame, summary, quality):
        reason = None
        if gpu and gpu.lower() not in candidate.hardware.lower():
            reason = f"not on a GPU matching '{gpu}' ({candidate.hardware})"
        elif vram_gib is not None and (candidate.memory_gib is None or not candidate.is_vram):
            reason = "no VRAM measured (CPU run): cannot say whether it fits"
        elif vram_gib is not None and candidate.memory_gib > vram_gib:
            reason = f"needs {candidate.memory_gib:.2f} GiB ({candidate.memory_kind}) > {vram_gib:g} GiB"
        elif max_seconds is not None and candidate.seconds > max_seconds:
            reason = f"takes {candidate.seconds:.3f} s > {max_seconds:g} s"
        elif min_quality is not None and (candidate.quality is None or candidate.quality < min_quality):
            reason = ("no quality measured (a single step count)" if candidate.quality is None else
                      f"SSIM {candidate.quality:.3f} < {min_quality:g}")
        if reason:
            excluded.append((candidate.describe(), reason))
        else:
            keep.append(candidate)
    chosen = _pareto(keep, excluded, use_quality=min_quality is not None or all(c.quality is not None for c in keep))
    return Recommendation(chosen, excluded, constraints)


def _objectives(candidate: Candidate, use_quality: bool) -> list[float]:
    values = [candidate.seconds, candidate.memory_gib if candidate.memory_gib is not None else 0.0]
    if use_quality:
        values.append(-(candidate.quality if candidate.quality is not None else 0.0))
    return values


def _pareto(keep: list[Candidate], excluded: list[tuple[str, str]],
            use_quality: bool) -> list[tuple[Candidate, list[str]]]:
    if not keep:
        return []
    costs = np.array([_objectives(c, use_quality) for c in keep])
    front = stats.pareto_front(costs)
    chosen = [c for c, on_front in zip(keep, front) if on_front]
    for candidate, on_front in zip(keep, front):
        if not on_front:
            better = next(c for c in chosen if all(a <= b for a, b in zip(_objectives(c, use_quality),
                                                                            _objectives(candidate, use_quality))))
            what = "faster and leaner" + (" with equal or better quality" if use_quality else "")
            excluded.append((candidate.describe(), f"dominated by {better.label} on {better.hardware} ({what})"))
    fastest = min(chosen, key=lambda c: c.seconds)
    leanest = min(chosen, key=lambda c: c.memory_gib if c.memory_gib is not None else float("inf"))
    best = max(chosen, key=lambda c: c.quality if c.quality is not None else -1.0)
    result = []
    for candidate in sorted(chosen, key=lambda c: c.seconds):
        reasons = []
        if candidate is fastest:
            reasons.append("the fastest that meets the constraints")
        if candidate is leanest and candidate.memory_gib is not None:
            reasons.append("the least memory")
        if use_quality and candidate is best and candidate.quality is not None:
            reasons.append("the best quality")
        if not reasons:
            reasons.append("a trade-off: nothing else is better in every respect")
        result.append((candidate, reasons))
    return result
