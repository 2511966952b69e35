"""recommend: the Pareto-optimal settings under the user's constraints, why each, and what was
left out and why."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DiffbenchError
from ..hardware.gpus import GpuNameError, GpuSpec, resolve_gpu
from ..rules import axes
from ..stats import intervals as stats
from .calibration import shipped_calibration
from .pairedstats import centre
from .quality import step_quality
from .tables import HOST_RSS, cell_summary, key_text, setting_label, steps_text, varying


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
    projected_from: str | None = None  # the measured card, when `hardware` is a projection target
    bound: str | None = None
    is_reference: bool = False  # the picture every other setting's SSIM is measured against
    cells: tuple[str, ...] = ()  # every cell the candidate stands for (its prompts and seeds)
    # CLIP score over its pictures (comparable across models), where all were scored: the same
    # Hodges-Lehmann centre as the report's "Time against quality" shows
    clip: float | None = None

    @property
    def is_vram(self) -> bool:
        return self.memory_kind != HOST_RSS

    def describe(self) -> str:
        memory = f"{self.memory_gib:.2f} GiB {self.memory_kind}" if self.memory_gib is not None else "memory unknown"
        quality = (", the reference picture of its model" if self.is_reference else
                   f", SSIM {self.quality:.3f} to its model's most-steps picture" if self.quality is not None else "")
        if self.clip is not None:
            quality += f", CLIP score {self.clip:.2f}"
        where = (f"{self.hardware} (PROJECTED from {self.projected_from}, {self.bound}-bound)" if self.projected_from
                 else f"{self.hardware} ({self.hostname})")
        return f"{self.label} on {where}: {self.seconds:.3f} s/image, {memory}{quality}"


@dataclass
class Recommendation:
    chosen: list[tuple[Candidate, list[str]]]
    excluded: list[tuple[str, str]]  # (what, why)
    constraints: list[str]


class RecommendError(DiffbenchError, ValueError):
    """A recommend question that cannot be answered as asked."""


def candidates(frame: pd.DataFrame, summary: pd.DataFrame | None = None,
               quality: pd.DataFrame | None = None,
               clip_scores: dict[tuple[str, str], float] | None = None,
               noisy: set[tuple[str, str]] | None = None) -> list[Candidate]:
    """Every measured setting as a candidate (the summary and quality may come computed already).
    A setting of several pictures whose cells are only partly `noisy` stands on its quiet ones,
    and its label says how many were left out; one whose cells are all noisy keeps them all."""
    summary = cell_summary(frame) if summary is None else summary
    if summary.empty:
        return []
    quality = step_quality(frame) if quality is None else quality
    by_cell = {(q.cell_id, q.hostname): q.ssim for q in quality.itertuples()} if not quality.empty else {}
    references = ({(q.cell_id, q.hostname) for q in quality.itertuples() if getattr(q, "is_reference", False)}
                  if not quality.empty else set())
    found = []
    if not _pictures(summary):  # each cell its own candidate: read as plain records (a fleet has thousands)
        for row in summary.to_dict("records"):
            key = (row["cell_id"], row["hostname"])
            memory = float(row["card_memory_gib"]) if row["card_memory_gib"] == row["card_memory_gib"] and \
                row["card_memory_gib"] is not None else None
            ssim = by_cell.get(key)
            scored = ssim is not None and not (isinstance(ssim, float) and np.isnan(ssim))
            clip = clip_scores.get(key) if clip_scores else None
            found.append(Candidate(row["cell_id"], row["hostname"], str(row["label"]), str(row["hardware"]),
                                   float(row["s_per_image"]), memory, row["card_memory_kind"],
                                   float(ssim) if scored else None, row, is_reference=key in references,
                                   cells=(str(row["cell_id"]),),
                                   clip=float(clip) if clip is not None else None))
        return found
    for rows, label in _settings(summary):
        flagged = np.array([(c, h) in noisy for c, h in zip(rows["cell_id"], rows["hostname"])], dtype=bool) \
            if noisy else np.zeros(len(rows), dtype=bool)
        if 0 < flagged.sum() < len(rows):
            label = f"{label} ({int((~flagged).sum())} of {len(rows)} pictures: {int(flagged.sum())} measured " \
                    "while other work competed left out)"
            rows = rows[~flagged]
        else:
            label = f"{label} ({len(rows)} pictures)"
        row = rows.iloc[0]
        memories = rows["card_memory_gib"].to_numpy(dtype=float)  # the one figure for fitting a card
        memory = float(np.nanmax(memories)) if np.isfinite(memories).any() else None
        keys = list(zip(rows["cell_id"], rows["hostname"]))
        values = [by_cell.get(key) for key in keys]
        scored = [float(v) for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
        clips = [clip_scores[key] for key in keys if key in clip_scores] if clip_scores else []
        found.append(Candidate(row["cell_id"], row["hostname"], label, str(row["hardware"]),
                               stats.median(rows["s_per_image"].to_numpy(dtype=float)), memory,
                               row["card_memory_kind"], float(np.mean(scored)) if scored else None,
                               row.to_dict(), is_reference=all(key in references for key in keys),
                               cells=tuple(str(c) for c in rows["cell_id"]),
                               clip=centre(np.asarray(clips, dtype=float)).estimate
                               if clips and len(clips) == len(keys) else None))
    return found


def _pictures(summary: pd.DataFrame) -> list[str]:
    """The picture axes (prompt, seed, ...) that vary: over them, a setting is one candidate."""
    return [c for c in axes.INSTANCE_COLUMNS if c in summary and summary[c].astype(str).nunique() > 1]


def _settings(summary: pd.DataFrame) -> list[tuple[pd.DataFrame, str]]:
    """The summary's rows by setting where pictures vary, with the setting's label: the pictures of
    one setting (its prompts and seeds) are one candidate, its time their median and its memory
    their largest: which prompt is fastest is no recommendation."""
    columns = [c for c in varying(summary) if c not in axes.INSTANCE_COLUMNS and c != "hostname"]
    keyed = summary.assign(**{f"_k_{c}": key_text(summary[c]) for c in [*columns, "hostname"]})
    out = []
    for _, rows in keyed.groupby([f"_k_{c}" for c in [*columns, "hostname"]], sort=False):
        out.append((rows, setting_label(rows.iloc[0], columns) if columns else "all"))
    return out


def recommend(frame: pd.DataFrame, vram_gib: float | None = None, max_seconds: float | None = None,
              min_quality: float | None = None, gpu: str | None = None, summary: pd.DataFrame | None = None,
              quality: pd.DataFrame | None = None, noisy: set[tuple[str, str]] | None = None,
              allow_noisy: bool = False, clip_scores: dict[tuple[str, str], float] | None = None) -> Recommendation:
    """The Pareto-optimal settings under the constraints. Cells flagged noisy (measured while other
    work competed: `noisy`, as compare.noisy_cells gives them) are left out with that reason unless
    `allow_noisy`, and then marked: their times are not what the card does alone."""
    constraints = []
    excluded: list[tuple[str, str]] = []
    if vram_gib is not None:
        constraints.append(f"fits in {vram_gib:g} GiB of VRAM")
    if max_seconds is not None:
        constraints.append(f"at most {max_seconds:g} s per image")
    if min_quality is not None:
        constraints.append(f"SSIM to its model's most-steps picture (the model's own sampler) at least {min_quality:g}")
    pool = candidates(frame, summary, quality, clip_scores, None if allow_noisy else noisy)
    projected = _projected_onto(frame, pool, gpu) if gpu else None
    if projected is not None:
        target, pool, unprojectable = projected
        excluded.extend(unprojectable)
        calibration = shipped_calibration()
        spread = calibration.spread(calibration.kind_for(target.name))
        constraints.append(f"on the {target.name}, which these results did not measure: seconds PROJECTED by the "
                           f"step model (x/÷ {spread:.2f}, docs/projection.md)")
        if vram_gib is None:
            vram_gib = target.vram_gib
            constraints.append(f"fits in its {vram_gib:g} GiB")
        gpu = None
    elif gpu:
        constraints.append(f"on a GPU matching '{gpu}'")
    failed = frame[frame["status"] != "ok"].drop_duplicates(["cell_id", "hostname"]) if not frame.empty else frame
    for row in failed.itertuples():
        limit = getattr(row, "vram_limit", None)
        where = f" at vram_limit {limit}" if isinstance(limit, str) else ""
        excluded.append((f"{row.model} {row.sampler} {steps_text(row.steps)} ({row.cell_id}) on {row.hostname}",
                         f"{row.status}{where}: {row.error}"))
    keep: list[Candidate] = []
    noisy = noisy or set()
    for candidate in pool:
        reason = None
        flagged = any((cell, candidate.hostname) in noisy for cell in candidate.cells or (candidate.cell_id,))
        if flagged and not allow_noisy:
            reason = ("measured while other work competed (flagged noisy): its time is not the card's alone; rerun "
                      "on a quiet machine, or pass --allow-noisy")
        elif flagged:
            candidate = replace(candidate, label=f"{candidate.label} [NOISY]")
        if reason is None:
            reason = _constraint_reason(candidate, gpu, vram_gib, max_seconds, min_quality)
        if reason:
            excluded.append((candidate.describe(), reason))
        else:
            keep.append(candidate)
    use_quality = min_quality is not None or (bool(keep) and all(c.quality is not None for c in keep))
    if use_quality and min_quality is None and len({_picture_model(c) for c in keep}) > 1:
        # SSIM measures how far a picture is from its own model's most-steps picture: it ranks settings of
        # one model, never one model against another (another model draws another picture)
        use_quality = False
        constraints.append("quality not ranked: SSIM compares pictures of one model only (CLIP scores, which "
                           "compare models, are in the report's time-against-quality section)")
    use_clip = bool(keep) and all(c.clip is not None for c in keep)
    if use_clip and min_quality is None:
        use_quality = False  # the CLIP score compares every setting; SSIM only those of one model
    chosen: list[tuple[Candidate, list[str]]] = []
    products = _products(keep)
    for product, members in products.items():
        found = _pareto(members, excluded, use_quality, use_clip)
        if len(products) > 1:  # a shorter clip or another task is another product, not a cheaper setting
            found = [(c, [f"{reason} among {product}" for reason in reasons]) for c, reasons in found]
        chosen.extend(found)
    return Recommendation(chosen, excluded, constraints)


# Axes that make a different product rather than a cheaper way to the same one: a setting is
# ranked only against settings that make the same task, clip length and input picture.
PRODUCT_AXES = ("task", "frames", "fps", "init_image", "mask_image")


def _products(pool: list[Candidate]) -> dict[str, list[Candidate]]:
    """The candidates by what they make (task, frames, ...), each labelled by the axes that differ."""
    varying = [axis for axis in PRODUCT_AXES
               if len({str(c.settings.get(axis)) for c in pool}) > 1]
    groups: dict[str, list[Candidate]] = {}
    for candidate in pool:
        parts = []
        for axis in varying:
            value = candidate.settings.get(axis)
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                continue  # an axis a product does not use is not named ("frames=-" said nothing)
            text = str(value)
            text = text if len(text) <= 28 else text[:27] + "…"
            parts.append(text if axis == "task" else f"{axis}={text}")
        groups.setdefault(", ".join(parts) or "all", []).append(candidate)
    return groups


def _picture_model(candidate: Candidate) -> str:
    return str(candidate.settings.get("model"))


def _constraint_reason(candidate: Candidate, gpu: str | None, vram_gib: float | None, max_seconds: float | None,
                       min_quality: float | None) -> str | None:
    """Why a candidate fails the user's constraints, or None when it meets them all."""
    if gpu and gpu.lower() not in candidate.hardware.lower():
        return f"not on a GPU matching '{gpu}' ({candidate.hardware})"
    if vram_gib is not None and (candidate.memory_gib is None or not candidate.is_vram):
        return "no VRAM measured (CPU run): cannot say whether it fits"
    if vram_gib is not None and candidate.memory_gib is not None and candidate.memory_gib > vram_gib:
        return f"needs {candidate.memory_gib:.2f} GiB ({candidate.memory_kind}) > {vram_gib:g} GiB"
    if max_seconds is not None and candidate.seconds > max_seconds:
        return f"takes {candidate.seconds:.3f} s > {max_seconds:g} s"
    if min_quality is not None and candidate.quality is None:
        return "no quality measured (a single step count)"
    if min_quality is not None and candidate.quality is not None and candidate.quality < min_quality:
        return f"SSIM {candidate.quality:.3f} < {min_quality:g}"
    return None


def _projected_onto(frame: pd.DataFrame, pool: list[Candidate], gpu: str
                    ) -> tuple[GpuSpec, list[Candidate], list[tuple[str, str]]] | None:
    """The candidates projected onto the card `gpu` names, when no candidate was measured on it
    (None when one was: then --gpu only filters)."""
    from .costmodel import fit_costs, project

    if any(gpu.lower() in c.hardware.lower() for c in pool):
        return None
    try:
        target = resolve_gpu(gpu)
    except GpuNameError as exc:
        raise RecommendError(f"--gpu: {exc}") from None
    fits = fit_costs(frame, decompose=True)
    projected, unprojectable = [], []
    for candidate in pool:
        fit = next((f for f in fits if all(_same_setting(f.settings.get(c), candidate.settings.get(c))
                                           for c in axes.COST_COLUMNS if c in f.settings)), None)
        unsupported = fit.unsupported_on(target) if fit is not None else None
        if unsupported is not None:
            unprojectable.append((candidate.describe(), f"cannot be projected: {unsupported}"))
            continue
        onto = project(fit, target) if fit is not None else None
        if onto is None:
            unprojectable.append((candidate.describe(), "cannot be projected (a CPU run, or a model whose work is not "
                                                        "counted: SD 1.5, SD 2.1, SDXL, SD3 and 3.5 Medium, FLUX.1 are)"))
            continue
        seconds = onto.point(int(candidate.settings["steps"]))
        projected.append(replace(candidate, hardware=target.name, seconds=seconds, projected_from=candidate.hardware,
                                 bound=onto.bound))
    return target, projected, unprojectable


def _same_setting(a: Any, b: Any) -> bool:
    def missing(v: Any) -> bool:
        return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA

    return (missing(a) and missing(b)) or str(a) == str(b)


def _dominance(better: Candidate, worse: Candidate, use_quality: bool, use_clip: bool = False) -> str:
    """In what the dominating candidate is better, as the figures show it (not 'leaner' when equal)."""
    parts = ["faster" if better.seconds < worse.seconds else "as fast"]
    if better.memory_gib is not None and worse.memory_gib is not None:
        parts.append("leaner" if better.memory_gib < worse.memory_gib else "no more memory")
    if use_quality:
        parts.append("closer to its most-steps picture" if (better.quality or 0) > (worse.quality or 0)
                     else "as close to its most-steps picture")
    if use_clip:
        parts.append("a higher CLIP score" if (better.clip or 0) > (worse.clip or 0) else "as high a CLIP score")
    return " and ".join(parts)


def _objectives(candidate: Candidate, use_quality: bool, use_clip: bool = False) -> list[float]:
    values = [candidate.seconds, candidate.memory_gib if candidate.memory_gib is not None else 0.0]
    if use_quality:
        values.append(-(candidate.quality if candidate.quality is not None else 0.0))
    if use_clip:
        values.append(-(candidate.clip if candidate.clip is not None else 0.0))
    return values


def _pareto(keep: list[Candidate], excluded: list[tuple[str, str]],
            use_quality: bool, use_clip: bool = False) -> list[tuple[Candidate, list[str]]]:
    if not keep:
        return []
    costs = np.array([_objectives(c, use_quality, use_clip) for c in keep])
    front = stats.pareto_front(costs)
    chosen = [c for c, on_front in zip(keep, front) if on_front]
    for candidate, on_front in zip(keep, front):
        if not on_front:
            better = next(c for c in chosen if all(a <= b for a, b in zip(_objectives(c, use_quality, use_clip),
                                                                            _objectives(candidate, use_quality, use_clip))))
            what = _dominance(better, candidate, use_quality, use_clip)
            excluded.append((candidate.describe(), f"dominated by {better.label} on {better.hardware} ({what})"))
    fastest = min(chosen, key=lambda c: c.seconds)
    leanest = min(chosen, key=lambda c: c.memory_gib if c.memory_gib is not None else float("inf"))
    # the closest to its converged picture, the reference itself left out (it scores 1 against itself)
    scored = [c for c in chosen if c.quality is not None and not c.is_reference]
    best = max(scored, key=lambda c: c.quality or 0.0) if scored else None
    best_clip = max(chosen, key=lambda c: c.clip or 0.0) if use_clip else None
    result = []
    for candidate in sorted(chosen, key=lambda c: c.seconds):
        reasons = []
        if candidate is fastest:
            reasons.append("the fastest that meets the constraints")
        if candidate is leanest and candidate.memory_gib is not None:
            reasons.append("the least memory")
        if use_quality and candidate is best:
            reasons.append("the closest to its model's most-steps picture")
        if use_clip and candidate is best_clip:
            reasons.append("the highest CLIP score")
        if not reasons:
            reasons.append("a trade-off: nothing else is better in every respect")
        result.append((candidate, reasons))
    return result
