"""The cost model: seconds per image = fixed + per-evaluation x evaluations, per setting and GPU.

Fitted by least squares on measured generations of the same setting at different step counts;
with a single step count, decomposed instead (per-evaluation cost from the step timings, fixed
cost from what the steps leave of the generation). Predictions carry an interval, and a GPU that
was not measured can be projected from one that was through the spec table, clearly labelled.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DiffbenchError
from ..hardware.gpus import GpuNameError, GpuSpec, dtype_refusal, find_gpu, resolve_gpu
from ..rules import axes
from .projection import counted_architecture, typed_preset
from .tables import CARD_MEMORY_SOURCES, HOST_RSS, card_memory, key_codes, key_text, measured, setting_label, steps_text
from .transfer import carry_rate_spread

# Everything that shapes the cost except the step count is `axes.COST_COLUMNS`, read when used.


def _ordinary() -> dict[str, Any]:
    """The settings a cost label leaves out at their built-in defaults (no offload, batch 1, ...);
    the model, card, dtype, resolution and guidance are always said."""
    return {a.results_column: a.default for a in axes.AXES
            if a.cost and a.name not in ("model", "gpu", "dtype", "resolution", "guidance_scale", "sampler")}


@dataclass(kw_only=True)
class CostFit:
    """One setting's fitted cost; seconds are per image. Keyword-only: 30 fields are built by name."""

    settings: dict[str, Any]
    fixed_s: float
    per_eval_s: float
    method: str  # "least squares over N step counts" or "decomposed from step timings"
    points: int
    step_counts: list[int]
    r2: float | None
    residual_sd: float
    evals_per_step: tuple[float, float]  # evaluations = a * steps + b
    projected_from: str | None = None
    notes: list[str] = field(default_factory=list)
    # The spread of a generation's time grows with the time itself (the residual spread triples
    # from 4 to 16 steps), so the interval is relative: residual_sd is the relative spread, and
    # weighted_cov the fit's (X'WX)^-1 with weights 1/fitted^2 (intercept, cross, slope terms).
    weighted_cov: tuple[float, float, float] | None = None
    unreliable: list[str] = field(default_factory=list)  # why no estimate should be trusted
    step_medians: dict[int, float] = field(default_factory=dict)  # measured s/image per step count
    step_spreads: dict[int, tuple[float, int]] = field(default_factory=dict)  # per step count: (sd of log s, n)
    memory_gib: float | None = None  # what a card must hold for this setting (frames.card_memory)
    memory_kind: str = ""
    allocated_gib: float | None = None  # torch's measured allocated peak (what memoryneed's margin starts from)
    architecture: str | None = None  # the counted preset whose work stands for this model (projection)
    projection_spread: float | None = None  # a projection's interval: x/÷ this (leave-one-out error)
    bound: str | None = None  # what bounds a projected step on its card
    # Runs differ (another boot, clock state, driver): the relative spread of a run's level about the
    # line beyond what its generations' own spread explains, and how many runs there were. A new
    # generation comes from a new run, so runs, not generations, are the unit of its interval.
    run_sd: float = 0.0
    runs: int = 1
    # Where a setting has too few generations to know its own spread (a t quantile on one degree of
    # freedom is 12.7), the spread pooled over the settings measured on the same card stands in, with
    # the pool's degrees of freedom (fit_costs).
    spread_dof: int | None = None
    # A projected offload setting: its transfers' seconds per image (fixed, per evaluation) and how
    # much their rate differs between hosts; the interval widens by that for their share of the time.
    transfer_fixed_s: float = 0.0
    transfer_eval_s: float = 0.0
    transfer_spread: float = 1.0

    @property
    def label(self) -> str:
        """The settings, leaving out those at their ordinary values (no offload, batch 1, ...)."""
        return self.label_without()

    def unsupported_on(self, target: GpuSpec) -> str | None:
        """Why this setting's dtype cannot be projected onto `target` (bf16 without bf16 tensor cores), or None."""
        return dtype_refusal(target, str(self.settings.get("runtime_dtype") or ""))

    def label_without(self, *columns: str) -> str:
        """The label, leaving out `columns` too (the card, where a table says it apart)."""
        ordinary = _ordinary()
        shown = [c for c in axes.COST_COLUMNS if c in self.settings and c not in columns
                 and not (c in ordinary and _same(self.settings[c], ordinary[c]))]
        return setting_label(self.settings, shown)

    def evaluations(self, steps: int) -> float:
        a, b = self.evals_per_step
        return a * steps + b

    def point(self, steps: int) -> float:
        """Seconds per image at `steps` on the fitted line (no interval: no t quantile needed)."""
        return self.fixed_s + self.per_eval_s * self.evaluations(steps)

    def predict(self, steps: int, confidence: float = 0.95) -> tuple[float, float, float]:
        """Seconds per image at `steps`, with a prediction interval for one new generation: on a log
        scale (a time is positive, and its spread grows with it), so it is never negative. A
        projection combines the measurement's interval with the projection's own held-out error."""
        from scipy.special import stdtrit  # the t quantile, without importing all of scipy.stats

        x = self.evaluations(steps)
        value = self.fixed_s + self.per_eval_s * x
        # with runs that differ, the runs are the independent unit: their count sets the t quantile
        dof = max(1, self.runs - 1) if self.run_sd > 0 else (self.spread_dof or max(1, self.points - 2))
        t = float(stdtrit(dof, 0.5 + confidence / 2))
        # A new generation's spread (relative, so it scales with the time) and the fit's own
        # uncertainty at x, which grows away from the measured step counts.
        if self.weighted_cov is not None:
            c00, c01, c11 = self.weighted_cov
            fit_term = max(0.0, c00 + 2 * c01 * x + c11 * x * x)
        else:
            fit_term = value * value / max(self.points, 1)
        if value <= 0:
            return value, float("nan"), float("nan")  # Estimate.problems says the line falls to zero
        # the relative residual spread is the spread of log time (for spreads of a few percent to tens
        # of percent the two agree), so the half-width is taken as it stands on the log scale
        width = t * self.residual_sd * float(np.sqrt(value * value + fit_term)) / value
        if self.run_sd > 0:  # a new run's own level, and the line's uncertainty from so few runs
            width = t * float(np.hypot(width / t, self.run_sd * np.sqrt(1 + 1 / self.runs)))
        if self.projected_from and self.projection_spread:  # the two errors add on the log scale
            share = (self.transfer_fixed_s + self.transfer_eval_s * x) / value
            projection = carry_rate_spread(self.projection_spread, share, self.transfer_spread)
            width = float(np.hypot(width, np.log(projection)))
        return value, value * float(np.exp(-width)), value * float(np.exp(width))


def _same(value: Any, ordinary: Any) -> bool:
    if ordinary is None:
        return value is None or (isinstance(value, float) and np.isnan(value))
    return str(value) == str(ordinary)


def _evals_per_step(group: pd.DataFrame) -> tuple[float, float]:
    points = group.groupby("steps")["evaluations"].median()
    if len(points) >= 2:
        a, b = np.polyfit(points.index.to_numpy(float), points.to_numpy(float), 1)
        return float(a), float(b)
    steps, evals = float(points.index[0]), float(points.iloc[0])
    return (evals / steps if steps else 1.0), 0.0


def fit_group(settings: dict[str, Any], group: pd.DataFrame, decompose: bool = False) -> CostFit:
    """One setting's cost line; `decompose` reads it from the step timings even where several step
    counts were measured (a projection needs the per-evaluation cost itself, not a line through
    whole-generation times that host noise can tilt)."""
    x = group["evaluations"].to_numpy(float)
    y = group["s_per_image"].to_numpy(float)
    step_counts = sorted(int(s) for s in group["steps"].unique())
    unreliable: list[str] = []
    weighted_cov = None
    if len(np.unique(x)) >= 2 and not decompose:
        per_eval, fixed, sd, weighted_cov = _weighted_line(x, y)
        residuals = y - (fixed + per_eval * x)
        total = float(np.sum((y - y.mean()) ** 2))
        r2 = 1 - float(np.sum(residuals**2)) / total if total > 0 else 1.0
        method = f"weighted least squares over {len(step_counts)} step counts"
        if len(y) <= 2:
            unreliable.append(f"only {len(y)} generations: a line through two points has no spread to judge it by")
        elif r2 < 0.8:
            unreliable.append(f"the time hardly follows the step count (R² {r2:.2f}): noise dominates")
    else:
        batch = group["batch_size"].astype(float).to_numpy()
        per_eval = float(np.median(group["step_s_median"].to_numpy(float))) / float(np.median(batch))
        fixed = float(np.median(y - per_eval * x))
        # relative spread of the generations about the decomposed line (never the spread of times
        # pooled over several step counts, which is the steps' doing, not noise)
        fitted = np.maximum(fixed + per_eval * x, 1e-12)
        sd = float(np.sqrt(np.sum(((y - fitted) / fitted) ** 2) / (len(y) - 1))) if len(y) > 1 else 0.0
        r2 = None
        method = ("decomposed from step timings" if decompose and len(step_counts) > 1
                  else "decomposed from step timings (one step count measured)")
    if per_eval <= 0:
        unreliable.append(f"negative cost per evaluation ({1000 * per_eval:.2f} ms): more steps measured faster, "
                          "so the noise is larger than the cost of a step")
    if fixed < 0:
        unreliable.append(f"negative fixed cost ({fixed:.3f} s): the step counts measured cannot separate it")
    run_sd, runs = run_spread(group, fixed + per_eval * x)
    medians = {int(k): float(v) for k, v in group.groupby("steps")["s_per_image"].median().items()}
    logs = np.log(np.clip(y, 1e-12, None))
    step_values, step_of = np.unique(group["steps"].to_numpy(float), return_inverse=True)
    spreads = {}
    for index, count in enumerate(step_values):  # a handful of step counts: plain arrays, no groupby
        at = logs[step_of == index]
        spreads[int(count)] = (float(np.std(at, ddof=1)) if at.size > 1 else 0.0, int(at.size))
    memory, kind = card_memory(group[[c for c, _ in CARD_MEMORY_SOURCES if c in group]].max())
    allocated = float(group["peak_vram_allocated_bytes"].max()) / 2**30 if "peak_vram_allocated_bytes" in group else np.nan
    first = group.iloc[0]
    return CostFit(settings=settings, fixed_s=float(fixed), per_eval_s=float(per_eval), method=method,
                   points=int(len(y)), step_counts=step_counts, r2=r2, residual_sd=sd,
                   evals_per_step=_evals_per_step(group), weighted_cov=weighted_cov, unreliable=unreliable,
                   step_medians=medians,
                   step_spreads=spreads,
                   memory_gib=memory if np.isfinite(memory) else None, memory_kind=kind,
                   allocated_gib=allocated if np.isfinite(allocated) and allocated > 0 else None,
                   architecture=counted_architecture(first.get("source"), first.get("family"), first.get("model")),
                   run_sd=run_sd, runs=runs)


def run_spread(group: pd.DataFrame, fitted: np.ndarray) -> tuple[float, int]:
    """The relative spread of the runs' levels about the fitted line beyond what their generations'
    own spread explains (a one-way random-effects estimate by moments), and the number of runs;
    (0, runs) where the runs agree or there is one."""
    if "run_id" not in group:
        return 0.0, 1
    run_ids = group["run_id"].astype(str).to_numpy()
    if len(set(run_ids.tolist())) < 2:  # one run (the usual case): nothing to separate
        return 0.0, 1
    relative = group["s_per_image"].to_numpy(float) / np.maximum(fitted, 1e-12) - 1
    runs = pd.Series(relative).groupby(run_ids)
    count = int(runs.ngroups)
    if count < 2:
        return 0.0, count
    means, sizes = runs.mean().to_numpy(), runs.size().to_numpy()
    within = runs.var(ddof=1).fillna(0.0).to_numpy()
    pooled = float(np.sum(within * (sizes - 1)) / max(1, int(np.sum(sizes - 1))))
    between = float(np.var(means, ddof=1)) - pooled * float(np.mean(1 / sizes))
    return (float(np.sqrt(between)) if between > 0 else 0.0), count


def _weighted_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, tuple[float, float, float]]:
    """(per_eval, fixed, relative residual spread, (X'WX)^-1 terms) of y = fixed + per_eval * x,
    weighted by 1/fitted^2: a generation's spread is proportional to its time, so a 16-step
    point must not count as much as a 4-step one (ordinary least squares would let its larger
    noise tilt the line). Two passes: ordinary least squares gives the first weights."""
    design = np.column_stack([np.ones_like(x), x])
    per_eval, fixed = np.polyfit(x, y, 1)
    for _ in range(2):
        fitted = np.maximum(fixed + per_eval * x, 1e-9 * max(float(np.max(np.abs(y))), 1e-12))
        weights = 1.0 / fitted**2
        normal = design.T @ (design * weights[:, None])
        fixed, per_eval = np.linalg.solve(normal, design.T @ (weights * y))
    fitted = np.maximum(fixed + per_eval * x, 1e-12)
    relative = (y - fitted) / fitted
    sd = float(np.sqrt(np.sum(relative**2) / max(1, len(y) - 2)))
    inverse = np.linalg.inv(normal)
    return float(per_eval), float(fixed), sd, (float(inverse[0, 0]), float(inverse[0, 1]), float(inverse[1, 1]))


def setting_groups(data: pd.DataFrame, columns: list[str]) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """The rows of each distinct combination of `columns` (missing values grouped, not dropped),
    with that combination's settings, in order of first appearance."""
    if data.empty:
        return
    codes = [key_codes(data[c]) for c in columns]
    varying = [code for code in codes if (code != code[0]).any()]  # a constant column splits nothing
    arrays = {c: data[c].to_numpy() for c in columns}  # read once, not one lookup per group and column
    if not varying:
        yield {c: arrays[c][0] for c in columns}, data
        return
    grouped = data.groupby(varying, sort=False)
    firsts = {key if isinstance(key, tuple) else (key,): rows[0] for key, rows in grouped.indices.items()}
    for key, group in grouped:
        first = firsts[key if isinstance(key, tuple) else (key,)]
        yield {c: arrays[c][first] for c in columns}, group


def fit_costs(frame: pd.DataFrame, decompose: bool = False) -> list[CostFit]:
    """One fit per setting (everything but steps) and GPU, from measured generations."""
    data = measured(frame)
    if data.empty:
        return []
    fits = []
    for settings, group in setting_groups(data, [c for c in axes.COST_COLUMNS if c in data]):
        fits.append(fit_group(settings, group, decompose))
    return pooled_spreads(fits)


FEWEST_OWN = 4  # generations a setting needs before its own spread is used


def pooled_spreads(fits: list[CostFit]) -> list[CostFit]:
    """Settings with fewer than FEWEST_OWN generations take the relative spread typical of the
    settings measured on their card (the median of theirs, their own included: one setting whose
    line fits badly must not widen every other's), with the pool's degrees of freedom: a machine's
    noise is much the same across settings, and two generations alone cannot bound it."""
    import dataclasses

    out = []
    for fit in fits:
        if fit.points >= FEWEST_OWN or fit.run_sd > 0:
            out.append(fit)
            continue
        card = fit.settings.get("hardware")
        same = [f for f in fits if f.settings.get("hardware") == card and f.points > 2 - (f.r2 is None)]
        dofs = [f.points - (2 if f.r2 is not None else 1) for f in same]
        dof = sum(d for d in dofs if d > 0)
        if dof <= max(1, fit.points - 2):
            out.append(fit)
            continue
        typical = float(np.median([f.residual_sd for f, d in zip(same, dofs) if d > 0]))
        out.append(dataclasses.replace(fit, residual_sd=max(typical, fit.residual_sd if fit.points > 2 else 0.0),
                                       spread_dof=dof))
    return out


def _spec(hardware: str) -> GpuSpec | None:
    return None if str(hardware).startswith("CPU") else find_gpu(str(hardware))


def project(fit: CostFit, target: GpuSpec) -> CostFit | None:
    """Project a measured GPU's cost onto another card through the calibrated step model
    (analysis/projection.py); None when the measured card is a CPU or the model's work is not counted."""
    from ..measure.workload import count_workload
    from .calibration import Counted, shipped_calibration
    from .projection import project_cost

    source = _spec(fit.settings["hardware"])
    if source is None or fit.architecture is None:
        return None
    settings = fit.settings
    guidance = pd.to_numeric(pd.Series([settings.get("guidance_scale")]), errors="coerce").iloc[0]
    batch = int(settings.get("batch_size") or 1)
    dtype = str(settings.get("runtime_dtype") or "fp16")
    try:
        workload = count_workload(fit.architecture, str(settings.get("resolution") or ""), batch,
                                  dtype if dtype in ("fp16", "bf16", "fp32") else "fp16",
                                  guided=bool(np.isfinite(guidance) and guidance > 1))
    except (ValueError, RuntimeError, TypeError, NotImplementedError):
        return None  # a shape the meta-device count cannot run (an odd resolution): not projectable
    cost = project_cost(fit.per_eval_s, fit.fixed_s, batch, str(settings.get("offload") or "none"),
                        str(settings.get("quantize") or "none"),
                        Counted(workload.denoiser, workload.fixed), source, target, shipped_calibration())
    # the relative spread carries over to the projected card; the projection's own error (x/÷ spread) dominates
    projected = CostFit(settings={**settings, "hardware": target.name}, fixed_s=cost.fixed_s,
                        per_eval_s=cost.per_eval_s, method=fit.method, points=fit.points,
                        step_counts=fit.step_counts, r2=fit.r2,
                        residual_sd=fit.residual_sd, evals_per_step=fit.evals_per_step,
                        projected_from=str(settings["hardware"]),
                        unreliable=list(fit.unreliable), memory_gib=fit.memory_gib, memory_kind=fit.memory_kind,
                        allocated_gib=fit.allocated_gib,
                        architecture=fit.architecture, projection_spread=cost.spread, bound=cost.bound,
                        run_sd=fit.run_sd, runs=fit.runs, spread_dof=fit.spread_dof,
                        transfer_fixed_s=cost.transfer_fixed_s, transfer_eval_s=cost.transfer_eval_s,
                        transfer_spread=cost.transfer_spread)
    projected.notes.extend(cost.notes)
    return projected


def fit_state(fit: CostFit, card_gib: float) -> str:
    """'yes', 'borderline', 'no' or 'unknown': the three states of analysis/memoryneed.py from the
    measured allocated peak (the margin's low and high ends); a file without it uses card_memory."""
    from .memoryneed import MARGIN

    if fit.allocated_gib is not None:
        return MARGIN.state(fit.allocated_gib, card_gib)
    if fit.memory_gib is None or fit.memory_kind == HOST_RSS:
        return "unknown"
    return "yes" if fit.memory_gib <= card_gib else "no"


def fits_on(fit: CostFit, target: GpuSpec) -> bool | None:
    """Whether the card holds what this setting needs: False only where it cannot (state 'no'); None
    when its memory was not measured. A borderline setting is answered, and says so."""
    state = fit_state(fit, target.vram_gib)
    return None if state == "unknown" else state != "no"


@dataclass
class ProjectionCheck:
    """How projections held where both cards were measured."""

    pairs: int
    median_abs_error: float | None
    max_abs_error: float | None
    details: list[str]


def check_projections(frame: pd.DataFrame) -> ProjectionCheck:
    """Project every measured GPU onto every other measured GPU with equal settings, and compare."""
    fits = fit_costs(frame)
    errors: list[float] = []
    details = []
    # only fits whose settings agree apart from the card can check each other: pair within those
    alike: dict[tuple[tuple[str, str], ...], list[CostFit]] = {}
    for fit in fits:
        key = tuple(sorted((c, str(v)) for c, v in fit.settings.items() if c != "hardware"))
        alike.setdefault(key, []).append(fit)
    for group in alike.values():
        for source, target in itertools.permutations(group, 2):
            if source.settings["hardware"] == target.settings["hardware"]:
                continue
            target_spec = _spec(target.settings["hardware"])
            projected = project(source, target_spec) if target_spec is not None else None
            if projected is None:
                continue
            # the target card's own measurements of these very settings (not of any setting on it)
            for steps in target.step_counts:
                actual = target.step_medians.get(steps, np.nan)
                if np.isfinite(actual) and actual > 0:
                    error = projected.point(steps) / actual - 1
                    errors.append(abs(error))
                    details.append(f"{source.settings['hardware']} -> {target.settings['hardware']}, {source.label}, "
                                   f"{steps} steps: {100 * error:+.0f}%")
    if not errors:
        return ProjectionCheck(0, None, None, [])
    return ProjectionCheck(len(details), float(np.median(errors)), float(np.max(errors)), details)


@dataclass
class Estimate:
    fit: CostFit
    steps: int
    seconds: float
    low: float
    high: float
    refusal: str | None = None  # why a projection is refused (the setting does not fit the card)

    @property
    def reliable(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return estimate_json(self)

    @property
    def problems(self) -> list[str]:
        found = list(self.fit.unreliable)
        if self.seconds <= 0:
            found.append(f"the fitted line falls to zero or below at {steps_text(self.steps)}")
        elif not self.low <= self.seconds <= self.high:
            found.append("the interval does not hold the estimate")
        return found

    def sentence(self) -> str:
        if self.refusal:
            return f"{self.fit.label}: {steps_text(self.steps)} -> REFUSED: {self.refusal}"
        kind = f"PROJECTION from {self.fit.projected_from}" if self.fit.projected_from else "measured"
        if self.fit.bound:
            kind += f", {self.fit.bound}-bound"
        evaluations = self.fit.evaluations(self.steps)
        if not self.reliable:
            return (f"{self.fit.label}: {steps_text(self.steps)} -> NO RELIABLE ESTIMATE ({'; '.join(self.problems)}); "
                    f"measured at {', '.join(map(str, self.fit.step_counts))} steps, {self.fit.points} generations "
                    "[measure more repeats or step counts]")
        r2 = f", R² {self.fit.r2:.3f}" if self.fit.r2 is not None else ""
        interval = f"95% interval {self.low:.3f}-{self.high:.3f}"
        return (f"{self.fit.label}: {steps_text(self.steps)} ({evaluations:.0f} evaluations) -> {self.seconds:.3f} s per image "
                f"({interval}) [{kind}; fixed {self.fit.fixed_s:.3f} s + "
                f"{1000 * self.fit.per_eval_s:.2f} ms per evaluation; " +
                (f"{self.fit.method}, {self.fit.points} generations{r2}]" if self.fit.points else "no generations]"))


def _needs(fit: CostFit) -> dict[str, Any] | None:
    from .memoryneed import MARGIN

    if fit.allocated_gib is not None:
        return {"allocated": round(fit.allocated_gib, 3), "low": round(MARGIN.low(fit.allocated_gib), 3),
                "high": round(MARGIN.high(fit.allocated_gib), 3), "phase": "measured peak"}
    if fit.memory_gib is not None and fit.memory_kind != HOST_RSS:
        return {"allocated": None, "low": round(fit.memory_gib, 3), "high": round(fit.memory_gib, 3),
                "phase": fit.memory_kind}
    return None


def json_value(value: Any) -> Any:
    """A setting as JSON holds it: missing (NaN, pandas' NA) as null, numpy scalars as numbers."""
    if value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if hasattr(value, "item"):
        return json_value(value.item())
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def estimate_json(answer: Estimate) -> dict[str, Any]:
    """An estimate as the documented answer object (docs/projection.md), as counted answers are."""
    fit = answer.fit
    card = str(fit.settings.get("hardware"))
    spec = _spec(card)
    known = answer.refusal is None and answer.reliable and np.isfinite(answer.seconds)
    source = "counts" if fit.projected_from and fit.projected_from.startswith("counts") else \
        "projected" if fit.projected_from else "measured"
    return {"model": str(fit.settings.get("model")),
            "settings": {k: json_value(v) for k, v in fit.settings.items() if k not in ("model", "hardware")},
            "card": card, "steps": answer.steps,
            "seconds": float(answer.seconds) if known else None,
            "interval": {"low": float(answer.low), "high": float(answer.high), "confidence": 0.95} if known else None,
            "per_evaluation_s": fit.per_eval_s, "fixed_s": fit.fixed_s, "evaluations": fit.evaluations(answer.steps),
            "needs_gib": _needs(fit), "card_gib": spec.vram_gib if spec else None,
            "fits": fit_state(fit, spec.vram_gib) if spec else "unknown", "bound": fit.bound, "source": source,
            "notes": [*fit.notes, *([answer.refusal] if answer.refusal else []), *answer.problems],
            "unknown": None if known else (_refusal_need(answer.refusal) if answer.refusal
                                           else "no reliable estimate: " + "; ".join(answer.problems))}


def _refusal_need(refusal: str) -> str:
    """A refusal's first clause ("needs 12.1-14.0 GiB (...), more than the RTX 3060's 12 GiB"), without
    the list of settings that fit, which a table shows as rows of its own."""
    return refusal.split("; measured settings that fit:")[0]


class EstimateError(DiffbenchError, ValueError):
    """No result matches the question."""


def select(frame: pd.DataFrame, **wanted: Any) -> pd.DataFrame:
    """The measured generations whose settings match `wanted` (axis=value, each value as every
    command understands it; None means any)."""
    from .values import UnknownValue, resolve_value

    data = measured(frame)
    options = {"runtime_dtype": "dtype", "hardware": "gpu"}
    for axis, value in wanted.items():
        if value is None:
            continue
        name = options.get(axis, axis)
        try:
            matches = resolve_value(name, str(value), data)
        except UnknownValue as exc:
            raise EstimateError(f"--{name.replace('_', '-')}: {exc}") from None
        data = data[key_text(data[axis]).isin(matches)]
    return data


def estimate(frame: pd.DataFrame, steps: int, gpu: str | None = None, **wanted: Any) -> list[Estimate]:
    """Seconds per image at `steps` for every measured setting matching `wanted` (axis=value),
    on `gpu` (measured, or projected from a measured card when it was not). A model these results
    lack but whose architecture is counted (SD 1.5, ...) is estimated on `gpu` from its counts."""
    model = wanted.get("model")
    try:
        data = select(frame, **wanted)
    except EstimateError:
        if gpu and model and typed_preset(str(model)) and not _in_results(frame, str(model)):
            return [estimate_from_counts(str(model), steps, gpu, wanted)]
        raise
    fits = fit_costs(data)
    if not fits:
        given = ", ".join(f"{k}={v}" for k, v in wanted.items() if v is not None) or "no filter"
        raise EstimateError(f"no measured setting matches ({given}) with measured generations")
    if gpu:
        measured_here = [f for f in fits if gpu.lower() in str(f.settings["hardware"]).lower()]
        if measured_here:
            fits = measured_here
        else:
            try:
                target = resolve_gpu(gpu)  # '4090', '4070 ti' resolve; 'A100' (40 or 80 GB) is ambiguous
            except GpuNameError as exc:
                if exc.ambiguous:
                    raise EstimateError(str(exc)) from None
                raise EstimateError(f"GPU '{gpu}' was not measured and is not in the spec table "
                                    "(see `diffbench gpus`)") from None
            projected = [p for p in (project(f, target) for f in fit_costs(data, decompose=True)) if p is not None]
            if not projected:
                raise EstimateError(f"GPU '{gpu}' was not measured, and no measured GPU setting of a counted "
                                    "architecture (SD 1.5, SD 2.1, SDXL, SD3 and 3.5 Medium, FLUX.1) to project from; CPU results "
                                    "cannot be projected onto a GPU")
            return _with_memory_check(projected, target, steps)
    return [_measured_estimate(f, steps) for f in fits]


def _measured_estimate(fit: CostFit, steps: int) -> Estimate:
    """On the measured card: the fitted line's prediction, except where the line cannot be trusted
    (noise dominates it) and this step count was measured: then the generations measured at it
    answer, their median with a prediction interval for one more (a line through 4 and 8 steps with
    R² 0.58 said nothing, though 4 steps had been measured)."""
    answer = Estimate(fit, steps, *fit.predict(steps))
    measured_here = fit.step_spreads.get(steps)
    if answer.reliable or measured_here is None or measured_here[1] < 2:
        return answer
    from scipy.special import stdtrit

    sd, n = measured_here
    dof = fit.spread_dof or (n - 1)
    if fit.spread_dof:  # the card's typical spread stands in where the step count had few generations
        sd = max(sd, fit.residual_sd)
    width = float(stdtrit(max(1, dof), 0.975)) * sd * float(np.sqrt(1 + 1 / n))
    median = fit.step_medians[steps]
    measured_fit = dataclasses.replace(fit, unreliable=[], method=f"the {n} generations measured at {steps} steps "
                                                                    "(the line through the step counts is unreliable)")
    return Estimate(measured_fit, steps, median, median * float(np.exp(-width)), median * float(np.exp(width)))


def in_results(frame: pd.DataFrame, model: str) -> bool:
    """Whether the measured generations hold `model` (by any name the commands understand)."""
    return _in_results(frame, model)


def _in_results(frame: pd.DataFrame, model: str) -> bool:
    from .values import UnknownValue, resolve_value

    try:
        return bool(resolve_value("model", model, measured(frame)))
    except UnknownValue:
        return False


def estimate_from_counts(model: str, steps: int, gpu: str, wanted: dict[str, Any]) -> Estimate:
    """One estimate for a counted architecture that no result measured, on a card of the spec table."""
    from ..measure.workload import count_workload
    from .calibration import Counted, shipped_calibration
    from .projection import cost_from_counts

    preset = typed_preset(model)
    if preset is None:
        raise EstimateError(f"--model {model}: not a counted architecture (SD 1.5, SD 2.1, SDXL, SD3 and 3.5 Medium, FLUX.1)")
    try:
        target = resolve_gpu(gpu)
    except GpuNameError as exc:
        raise EstimateError(str(exc)) from None
    batch = int(wanted.get("batch_size") or 1)
    dtype = str(wanted.get("runtime_dtype") or ("bf16" if preset.startswith(("flux", "sd35")) else "fp16"))
    if dtype not in ("fp16", "bf16", "fp32"):
        raise EstimateError(f"--dtype {dtype}: a model estimated from counts takes fp16, bf16 or fp32")
    workload = count_workload(preset, str(wanted.get("resolution") or ""), batch, dtype)
    cost = cost_from_counts(Counted(workload.denoiser, workload.fixed), target, shipped_calibration(), preset)
    settings = {"model": preset, "hardware": target.name, "resolution": workload.resolution, "batch_size": batch,
                "runtime_dtype": dtype}
    fit = CostFit(settings=settings, fixed_s=cost.fixed_s / batch, per_eval_s=cost.per_step_s / batch,
                  method="counted work", points=0, step_counts=[], r2=None, residual_sd=0.0,
                  evals_per_step=(1.0, 0.0),
                  projected_from="counts (not measured)", architecture=preset,
                  projection_spread=cost.spread, bound=cost.bound, notes=[cost.note])
    unsupported = dtype_refusal(target, dtype)
    if unsupported is not None:
        return Estimate(fit, steps, float("nan"), float("nan"), float("nan"), refusal=unsupported)
    return Estimate(fit, steps, *fit.predict(steps))


def _with_memory_check(projected: list[CostFit], target: GpuSpec, steps: int) -> list[Estimate]:
    """Estimates for the settings that fit the card (a borderline one says so); a refusal, naming
    those that fit, for the others."""
    fitting = [f for f in projected if fits_on(f, target) is not False
               and f.unsupported_on(target) is None]
    answers = []
    for fit in projected:
        state = fit_state(fit, target.vram_gib)
        unsupported = fit.unsupported_on(target)
        if unsupported is not None:
            answers.append(Estimate(fit, steps, float("nan"), float("nan"), float("nan"), refusal=unsupported))
        elif state == "no":
            others = "; ".join(f"{f.label_without('hardware')} ({_need_text(f)})" for f in fitting
                               if f.memory_gib is not None)
            refusal = (f"needs {_need_text(fit)}, more than the {target.name}'s {target.vram_gib:g} GiB; "
                       + (f"measured settings that fit: {others}" if others else
                          f"no measured setting fits: `diffbench estimate --model {fit.architecture or 'MODEL'} "
                          f"--gpu \"{target.name}\" --steps {steps}` without results names the settings that would, "
                          "from counts"))
            answers.append(Estimate(fit, steps, float("nan"), float("nan"), float("nan"), refusal=refusal))
        else:
            if state == "borderline":
                fit.notes.append(f"memory borderline on the {target.name}: needs {_need_text(fit)} against "
                                 f"{target.vram_gib:g} GiB; it fits only if the allocator fragments little "
                                 "(PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True helps)")
            answers.append(Estimate(fit, steps, *fit.predict(steps)))
    return answers


def need_range(fit: CostFit) -> str:
    """'12.1-14.0': what a card must hold, from the measured allocated peak and the margin
    (memoryneed.MARGIN), or the one figure a file without that peak allows."""
    from .memoryneed import MARGIN

    if fit.allocated_gib is not None:
        return f"{MARGIN.low(fit.allocated_gib):.1f}-{MARGIN.high(fit.allocated_gib):.1f}"
    return f"{fit.memory_gib:.1f}" if fit.memory_gib is not None else "?"


def _need_text(fit: CostFit) -> str:
    """'12.1-14.0 GiB (measured 11.5 GiB allocated, ...)': need_range and how it was derived."""
    from .memoryneed import MARGIN

    if fit.allocated_gib is not None:
        return (f"{need_range(fit)} GiB (measured {fit.allocated_gib:.1f} GiB allocated, + {MARGIN.context_gib:.2f} GiB "
                f"context, allocator slack up to x{MARGIN.slack:g})")
    return f"{need_range(fit)} GiB ({fit.memory_kind})"
