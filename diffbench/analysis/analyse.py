"""Everything the report concludes from results, computed once, in one object.

The HTML report (and any other view) renders an `Analysis`; it computes nothing of its own. Each
comparison is computed once and shared by every table, chart and sentence that uses it; the
linear fit of latency against steps is the cost model's; the Pareto front and the memory chart
use the one card-memory figure (frames.card_memory).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..contract.results import Results
from ..execute.advice import Advice
from ..rules import axes
from ..stats import intervals as stats
from .advising import advise, software_mismatches
from .answer import ModelAnswer, model_answers
from .compare import (
    ComparisonTable,
    Prepared,
    comparable_axes,
    compare,
    noisy_cells,
    prepare,
    steps_contexts,
    without_cells,
)
from .costmodel import CostFit, ProjectionCheck, check_projections, fit_costs, fit_group
from .filters import apply_filters
from .metrics import report_metrics
from .othercards import ProjectedSetting, other_cards
from .payoff import CompilePayoff, compile_payoffs
from .quality import step_quality
from .recommend import Recommendation, recommend
from .tables import SettingSummary, cell_summary, setting_summary, with_metrics
from .tradeoff import (
    PairedTradeoff,
    Scores,
    TradeoffPoint,
    paired_tradeoffs,
    picture_axes,
    scored_cells,
    tradeoff_points,
)
from .values import UnknownValue, resolve_axis, resolve_value


@dataclass
class StepPoint:
    evaluations: int
    median: float
    low: float
    high: float
    confidence: float = float("nan")  # what the median's interval achieves at this n


@dataclass
class StepScaling:
    """Seconds per image against denoiser evaluations for one set of other settings, with the
    cost model's fit (fixed + per-step) where there are two or more step counts."""

    label: str
    points: list[StepPoint]
    fit: CostFit | None
    model: str = ""  # what a chart of many series is split by


@dataclass
class Analysis:
    results: Results
    frame: pd.DataFrame  # generations with metrics, filtered
    steps: pd.DataFrame  # per-step latencies of the kept cells
    summary: pd.DataFrame  # one row per (cell, host), with `pareto` (bool)
    settings: SettingSummary  # one row per (setting, host), over its prompts and seeds: what charts draw
    axes: list[str]
    comparisons: dict[tuple[str, str], ComparisonTable]
    quality: pd.DataFrame
    scaling: list[StepScaling]
    recommendation: Recommendation | None
    projections: ProjectionCheck | None
    advice: list[Advice] = field(default_factory=list)
    compile_payoffs: list[CompilePayoff] = field(default_factory=list)
    other_cards: list[ProjectedSetting] = field(default_factory=list)
    scores: Scores = field(default_factory=lambda: Scores(pd.DataFrame(), None, []))  # CLIP scores per cell
    tradeoff: list[TradeoffPoint] = field(default_factory=list)  # time against CLIP score per setting
    tradeoff_pairs: list[PairedTradeoff] = field(default_factory=list)  # along the first compared axis
    answers: list[ModelAnswer] = field(default_factory=list)  # per model: each card's time, fit and setting

    @property
    def pareto_labels(self) -> list[str]:
        settings = self.settings.frame
        if settings.empty:
            return []
        return settings.loc[settings["pareto"], "label"].tolist()


def analyse(results: Results, filters: list[str] | None = None, compare_axis: str | None = None,
            baseline: str | None = None, frame: pd.DataFrame | None = None) -> Analysis:
    """Everything the report shows, from `results`; `frame`: their generations with metrics and
    `filters` already applied, where the caller has them (the CLI checks that something is left)."""
    if frame is None:
        frame = apply_filters(with_metrics(results.generations), filters or [])
    steps = results.steps
    if not frame.empty and not steps.empty:
        # a cell that never ran cleanly (an error, a blank picture annotated so) draws no step line
        steps = steps[steps["cell_id"].isin(frame.loc[frame["status"] == "ok", "cell_id"])]
    summary = _with_pareto(cell_summary(frame))
    settings = setting_summary(frame, summary)
    # every branch of setting_summary gets its own front (results whose prompts differ between files
    # once reached the charts without one: KeyError 'pareto')
    settings = dataclasses.replace(settings, frame=_with_pareto(settings.frame))
    axes = [compare_axis] if compare_axis else (comparable_axes(frame) if not frame.empty else [])
    noisy = noisy_cells(results.warnings)
    prepared = prepare(frame, noisy)
    # projections to other cards and their check stand on quiet cells only (as estimate does)
    quiet = without_cells(frame, noisy)
    metrics = dict.fromkeys(("s_per_image", *(m.name for m in report_metrics())))
    comparisons = {(axis, metric): compare(frame, axis, baseline=baseline, metric=metric, prepared=prepared)
                   for axis in axes for metric in metrics}
    empty = frame.empty
    decomposed = fit_costs(quiet, decompose=True) if not quiet.empty else []  # shared by the two answers below
    quality = step_quality(frame) if not empty else pd.DataFrame()
    scores = scored_cells(summary, results.quality)
    return Analysis(
        results=results, frame=frame, steps=steps, summary=summary, settings=settings, axes=axes, comparisons=comparisons,
        quality=quality,
        scaling=_pooled_step_scaling(frame, prepared, noisy, settings.instances > 1),
        recommendation=recommend(frame, summary=summary, quality=quality, noisy=noisy,
                                 clip_scores=scores.by_cell())
        if not empty else None,
        projections=check_projections(quiet) if not quiet.empty else None,
        advice=advise(frame, summary) + software_mismatches(results.runs),
        compile_payoffs=compile_payoffs(frame),
        other_cards=other_cards(quiet, decomposed=decomposed),
        answers=model_answers(quiet, decomposed=decomposed) if not quiet.empty else [],
        scores=scores,
        tradeoff=tradeoff_points(scores),
        tradeoff_pairs=_tradeoff_pairs(scores, axes, baseline if compare_axis else None, noisy),
    )


def _pooled_step_scaling(frame: pd.DataFrame, prepared: Prepared, noisy: set[tuple[str, str]],
                         instances_vary: bool) -> list[StepScaling]:
    """Step scaling per setting, a prompt set's prompts and seeds pooled (one fit per setting, not
    one per prompt: the prompt does not shape what a step costs)."""
    if not instances_vary:
        return step_scaling(frame, prepared)
    pooled = frame.assign(**{c: None for c in axes.INSTANCE_COLUMNS if c in frame})
    return step_scaling(pooled, prepare(pooled, noisy))


def _with_pareto(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with `pareto`: nothing else both faster and leaner."""
    if not summary.empty:
        memory = summary["card_memory_gib"].to_numpy(dtype=float)
        summary["pareto"] = stats.pareto_front(np.column_stack([summary["s_per_image"].to_numpy(dtype=float), memory]))
    return summary


def _tradeoff_pairs(scores: Scores, axes: list[str], baseline: str | None,
                    noisy: set[tuple[str, str]]) -> list[PairedTradeoff]:
    """Time and CLIP score paired on prompt and seed, along the first compared axis that is not a
    picture axis (recipes first: comparable_axes puts them there)."""
    for axis in axes:
        try:
            column = resolve_axis(axis, scores.cells) if not scores.empty else None
            base = resolve_value(axis, baseline, scores.cells, unique=True)[0] if baseline else None
        except UnknownValue:
            continue
        if column is not None and column not in picture_axes():
            return paired_tradeoffs(scores, column, base, noisy=noisy)
    return []


def step_scaling(frame: pd.DataFrame, prepared: Prepared | None = None) -> list[StepScaling]:
    """Seconds per image against evaluations, per set of other settings (the contexts of a
    comparison along steps, shared with it through `prepared`)."""
    prep = prepared if prepared is not None else prepare(frame)
    data = prep.data
    if data.empty or "steps" not in data:
        return []
    seconds = data["s_per_image"].to_numpy(dtype=float)
    evaluations = data["evaluations"].to_numpy(dtype=float)
    fitted = data[[c for c in ("evaluations", "s_per_image", "steps", "batch_size", "step_s_median") if c in data]]
    out = []
    for label, rows_by_steps in steps_contexts(prep, np.isfinite(seconds)):
        rows = np.sort(np.concatenate(list(rows_by_steps.values())))
        points = []
        for count in np.unique(evaluations[rows][np.isfinite(evaluations[rows])]):
            values = seconds[rows[evaluations[rows] == count]]
            low, high, achieved = stats.median_ci(values)
            points.append(StepPoint(int(count), stats.median(values), low, high, achieved))
        fit = fit_group({}, fitted.iloc[rows]) if len(points) >= 2 else None
        if fit is not None and prep.noisy_rows[rows].any():  # said, not hidden: the table shows the fit
            fit.unreliable.append("some of its cells were flagged noisy (other work competed)")
        model = str(data["model"].iloc[rows[0]]) if "model" in data else ""
        out.append(StepScaling(label, points, fit, model))
    return out


def fit_rows(scaling: list[StepScaling]) -> list[dict[str, Any]]:
    """The fit table: one row per set of settings with two or more step counts."""
    return [{"group": s.label, "fixed_s": s.fit.fixed_s, "per_step_s": s.fit.per_eval_s, "r2": s.fit.r2,
             "points": s.fit.points, "residual_sd": s.fit.residual_sd,
             "unreliable": "; ".join(s.fit.unreliable) or None} for s in scaling if s.fit is not None]
