"""Fitting the step model's constants (analysis/stepmodel.py) on measured and published figures.

Three stages, each on the data that can tell its constants apart:
1. Hopper's achievable fractions (e_k per compute kind, e_m) and the kernel floor, from the H200's
   per-class kernel times (a profile sees the GPU alone, with no host in it).
2. The measuring host's per-launch cost and the overlap q, from the H200's timed steps.
3. Each other architecture's factor r_a and a typical published host's per-launch cost, from the
   published figures (hardware/published.py).

`leave_one_out` refits stage 3 without each published figure in turn and predicts it; `held_out`
does the same without every figure of a card, a source or a model. Those errors, with Student's t
for how many groups they were read on, are the widths of the projected intervals (`spread`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from ..errors import DiffbenchError, one_line
from ..hardware.gpus import GPU_ARCHITECTURES, GpuSpec, find_gpu
from ..hardware.published import HOPPER, PUBLISHED, HopperMeasurement, PublishedFigure
from ..measure.opcount import CallCounts
from .stepmodel import COMPUTE_KINDS, ModelParameters, call_cost, gpu_time

REFERENCE_CARD = "H200"
TIGHT = {"xtol": 1e-12, "ftol": 1e-12, "gtol": 1e-12}  # the fits are small: converge fully, not to 1e-8
FITTED_ARCHITECTURES = tuple(a.name for a in GPU_ARCHITECTURES if a.factor == "fitted")


@dataclass(frozen=True)
class Counted:
    """The counts of one figure's work: a denoiser evaluation and the fixed part of an image."""

    denoiser: CallCounts
    fixed: CallCounts


CountsFor = Callable[[str, str, int, str, bool], Counted]  # model, resolution, batch, dtype, channels_last


def workload_counts(model: str, resolution: str, batch: int, dtype: str, channels_last: bool) -> Counted:
    from ..measure.workload import count_workload

    workload = count_workload(model, resolution, batch, dtype, channels_last=channels_last)
    return Counted(workload.denoiser, workload.fixed)


def _card(name: str) -> GpuSpec:
    spec = find_gpu(name)
    if spec is None:
        raise ValueError(f"no card '{name}' in the spec table")
    return spec


def predicted_seconds(figure: PublishedFigure, counted: Counted, params: ModelParameters, host_s: float) -> float:
    """What the model says a published figure should read, in its own unit's seconds."""
    card = _card(figure.gpu)
    step = call_cost(counted.denoiser, card, params, host_s).seconds
    if figure.unit == "it/s":
        return step
    return figure.steps * step + call_cost(counted.fixed, card, params, host_s).seconds


def _fit_hopper_kernels(measurements: Sequence[HopperMeasurement], counts: dict[str, Counted]
                        ) -> tuple[dict[str, float], float, float]:
    from scipy.optimize import least_squares

    card = _card(REFERENCE_CARD)
    profiled = [m for m in measurements if m.class_ms]

    def residuals(x: np.ndarray) -> np.ndarray:
        params = ModelParameters(dict(zip(COMPUTE_KINDS, np.exp(x[:3]))), float(np.exp(x[3])), float(np.exp(x[4])), 2.0)
        out = []
        for m in profiled:
            assert m.class_ms is not None
            for kind, ms in m.class_ms.items():
                ops = CallCounts([op for op in counts[m.model].denoiser.ops if op.kind == kind])
                out.append(np.log(gpu_time(ops, card, params)[0] * 1000 / ms))
        return np.array(out)

    start = np.log([0.5, 0.5, 0.3, 0.4, 3e-6])
    fit = least_squares(residuals, start, bounds=(np.log([0.01] * 4 + [1e-7]), np.log([1.0] * 4 + [5e-5])), **TIGHT)
    x = np.exp(fit.x)
    return dict(zip(COMPUTE_KINDS, map(float, x[:3]))), float(x[3]), float(x[4])


def _fit_measured_host(measurements: Sequence[HopperMeasurement], counts: dict[str, Counted],
                       kernels: ModelParameters) -> tuple[float, float]:
    from scipy.optimize import least_squares

    card = _card(REFERENCE_CARD)

    def residuals(x: np.ndarray) -> np.ndarray:
        params = ModelParameters(kernels.compute_efficiency, kernels.bandwidth_efficiency, kernels.kernel_floor_s,
                                 float(np.exp(x[1])))
        return np.array([np.log(call_cost(counts[m.model].denoiser, card, params, float(np.exp(x[0]))).seconds / m.step_s)
                         for m in measurements])

    fit = least_squares(residuals, np.log([20e-6, 2.0]), bounds=(np.log([1e-6, 1.0]), np.log([200e-6, 20.0])), **TIGHT)
    return float(np.exp(fit.x[0])), float(np.exp(fit.x[1]))


def _fit_published(figures: Sequence[PublishedFigure], counts: Callable[[PublishedFigure], Counted],
                   base: ModelParameters) -> ModelParameters:
    from scipy.optimize import least_squares

    present = [a for a in FITTED_ARCHITECTURES if any(_card(f.gpu).architecture == a for f in figures)]

    def params_of(x: np.ndarray) -> tuple[ModelParameters, float]:
        factors = {a: float(np.exp(v)) for a, v in zip(present, x[1:])}
        return ModelParameters(base.compute_efficiency, base.bandwidth_efficiency, base.kernel_floor_s, base.overlap,
                               factors, base.measured_host_s, float(np.exp(x[0]))), float(np.exp(x[0]))

    def residuals(x: np.ndarray) -> np.ndarray:
        params, host = params_of(x)
        return np.array([np.log(predicted_seconds(f, counts(f), params, host) / f.seconds) for f in figures])

    start = np.log([15e-6] + [1.0] * len(present))
    lower, upper = np.log([1e-6] + [0.05] * len(present)), np.log([200e-6] + [20.0] * len(present))
    # Robust: a log ratio beyond 0.1 (10%) counts linearly, not squared, so a source that disagrees
    # with the others (another host, another revision) pulls the factors less than one that agrees.
    fit = least_squares(residuals, start, bounds=(lower, upper), loss="soft_l1", f_scale=0.1, **TIGHT)
    return params_of(fit.x)[0]


# How a projection's error is measured, by what is held out of the fit: one figure (its card keeps
# its other figures), every figure of its card (a card that borrows its architecture's factor), of
# its source, of its model.
HELD_OUT_KINDS: dict[str, Callable[[PublishedFigure], str]] = {
    "card": lambda f: f.gpu, "source": lambda f: f.source, "model": lambda f: f.model}


@dataclass(frozen=True)
class Calibration:
    parameters: ModelParameters
    log_error: float  # RMS of the leave-one-figure-out log ratios
    leave_one_out: tuple[tuple[str, float, float], ...]  # (figure label, published s, predicted s)
    held_out: dict[str, float] = field(default_factory=dict)  # kind -> RMS log ratio with that kind held out
    cards_with_figures: tuple[str, ...] = ()  # the cards whose own published figures are in the fit
    held_out_groups: dict[str, int] = field(default_factory=dict)  # kind -> how many groups were scored
    models_with_figures: tuple[str, ...] = ()  # the architectures whose own published figures are in the fit

    def spread(self, kind: str = "figure") -> float:
        """The multiplicative half-width of a 95% interval for a projection of this kind: exp(t x its
        held-out log error). 'figure': to a card with published figures of its own; 'card': to a card
        that borrows its architecture's factor (its figures held out). t is Student's 97.5% point with
        one degree of freedom fewer than the groups the error was measured on: an error read off five
        cards is itself uncertain, and 1.96 would make a 95% interval that covers far less
        (tests/test_projection.py simulates it)."""
        if kind != "figure" and kind in self.held_out:
            error, groups = self.held_out[kind], self.held_out_groups.get(kind, 0)
        else:
            error, groups = self.log_error, len(self.leave_one_out)
        return float(np.exp(_t975(groups - 1) * error))

    def kind_for(self, card: str) -> str:
        """Which held-out error a projection to `card` carries."""
        return "figure" if card in self.cards_with_figures else "card"

    def counts_spread(self, card: str, model: str) -> tuple[float, str]:
        """The half-width for an answer from counts of `model` on `card`, and what it is."""
        return self.model_spread(self.kind_for(card), model)

    def model_spread(self, kind: str, model: str) -> tuple[float, str]:
        """The half-width for counts of `model` on a card of `kind` ('figure' or 'card'). A model with
        published figures of its own carries the card's error alone; one without (SD 3.5 Large,
        PixArt-alpha, FLUX.1 schnell, SD 3.5 Medium) carries the held-out model error too: the two
        log errors added, less the figure-to-figure noise each already holds."""
        if not self.models_with_figures or model in self.models_with_figures or "model" not in self.held_out:
            return self.spread(kind), ("the held-out error of projections to a card " +
                                       ("with published figures of its own" if kind == "figure" else
                                        "whose own figures the fit never saw"))
        card_error = self.log_error if kind == "figure" else self.held_out.get("card", self.log_error)
        error = math.sqrt(max(card_error**2 + self.held_out["model"] ** 2 - self.log_error**2, self.log_error**2))
        groups = min(self.held_out_groups.get("model", 2), self.held_out_groups.get("card", 2) if kind == "card"
                     else len(self.leave_one_out))
        return float(np.exp(_t975(groups - 1) * error)), (
            f"the held-out error of a model no published figure calibrates ({model}) "
            + ("on a card with figures of its own" if kind == "figure" else "on a card whose figures the fit never saw"))

    def interval(self, seconds: float, kind: str = "figure") -> tuple[float, float]:
        spread = self.spread(kind)
        return seconds / spread, seconds * spread

    def to_json(self) -> dict[str, Any]:
        return {"parameters": asdict(self.parameters), "log_error": self.log_error,
                "leave_one_out": [list(row) for row in self.leave_one_out], "held_out": self.held_out,
                "cards_with_figures": list(self.cards_with_figures), "held_out_groups": self.held_out_groups,
                "models_with_figures": list(self.models_with_figures)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return checked_calibration(data, "calibration")


def calibrate(counts_for: CountsFor = workload_counts, figures: Sequence[PublishedFigure] = PUBLISHED,
              hopper: Sequence[HopperMeasurement] = HOPPER) -> Calibration:
    """Fit all three stages and the leave-one-out error."""
    hopper_counts = {m.model: counts_for(m.model, m.resolution, 1, m.dtype, False) for m in hopper}
    efficiency, bandwidth, floor = _fit_hopper_kernels(hopper, hopper_counts)
    kernels = ModelParameters(efficiency, bandwidth, floor, 2.0)
    measured_host, overlap = _fit_measured_host(hopper, hopper_counts, kernels)
    base = ModelParameters(efficiency, bandwidth, floor, overlap, {}, measured_host)
    cache: dict[PublishedFigure, Counted] = {}

    def counts(figure: PublishedFigure) -> Counted:
        if figure not in cache:
            cache[figure] = counts_for(figure.model, figure.resolution, figure.batch_size, figure.dtype,
                                       figure.channels_last)
        return cache[figure]

    fitted_on = [f for f in figures if not f.excluded]
    fitted = _fit_published(fitted_on, counts, base)
    rows = []
    for figure in figures:  # an excluded figure is projected from the full fit, which never saw it
        others = _fit_published([f for f in fitted_on if f is not figure], counts, base) if not figure.excluded else fitted
        rows.append((figure.label, figure.seconds, predicted_seconds(figure, counts(figure), others,
                                                                      others.typical_host_s)))
    log_error = float(np.sqrt(np.mean([np.log(p / s) ** 2 for (_, s, p), f in zip(rows, figures) if not f.excluded])))
    held_out, groups = {}, {}
    for kind, key in HELD_OUT_KINDS.items():
        error, scored = held_out_error(fitted_on, counts, base, key)
        if scored:  # with one card per architecture, holding out a card leaves nothing to score
            held_out[kind], groups[kind] = error, len({key(f) for f, _ in scored})
    cards = tuple(sorted({f.gpu for f in fitted_on}))
    models = tuple(sorted({f.model for f in fitted_on}))
    return Calibration(fitted, log_error, tuple(rows), held_out, cards, groups, models)


def _t975(degrees: int) -> float:
    """Student's t 97.5% point (1.96 as the degrees of freedom grow)."""
    from scipy.stats import t

    return float(t.ppf(0.975, max(degrees, 1)))


def held_out_error(figures: Sequence[PublishedFigure], counts: Callable[[PublishedFigure], Counted],
                   base: ModelParameters, key: Callable[[PublishedFigure], str]
                   ) -> tuple[float, list[tuple[PublishedFigure, float]]]:
    """RMS log ratio of every figure predicted by a fit that saw none of the figures sharing its
    `key` (its card, source or model), and each (figure, predicted seconds). A figure whose
    architecture has no factor without its group (the only calibrated card of its kind) is left out."""
    predictions = []
    for group in dict.fromkeys(key(f) for f in figures):
        held = [f for f in figures if key(f) == group]
        rest = [f for f in figures if key(f) != group]
        params = _fit_published(rest, counts, base) if rest else base
        # A figure whose architecture the rest leaves without a factor would be refused, as the tool
        # refuses such a card: no interval is printed for it, so none is scored.
        predictions += [(f, predicted_seconds(f, counts(f), params, params.typical_host_s)) for f in held
                        if params.has_factor(_card(f.gpu).architecture)]
    error = float(np.sqrt(np.mean([np.log(p / f.seconds) ** 2 for f, p in predictions]))) if predictions else math.nan
    return error, predictions


SHIPPED = "calibration.json"


class CalibrationError(DiffbenchError):
    """The shipped calibration file is damaged: projections cannot be made, said in one line."""


def _positive(value: Any, where: str, upper: float = 1e6) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or not 0 < value <= upper:
        raise CalibrationError(f"{where} is {one_line(repr(value))[:40]}; a finite number above 0 (at most {upper:g}) "
                               "is needed")
    return float(value)


def checked_calibration(data: Any, source: str) -> Calibration:
    """A calibration read from JSON, every constant checked: a damaged or edited file is one line
    naming the field (never a traceback, never silently other numbers from a NaN or a negative)."""
    try:
        p = data["parameters"]
        for table in ("compute_efficiency", "architecture_factor"):
            if not isinstance(p[table], dict) or not p[table]:
                raise CalibrationError(f"{source}: parameters.{table} is not a table of numbers")
        params = ModelParameters(
            {k: _positive(v, f"{source}: parameters.compute_efficiency.{k}", 10) for k, v in p["compute_efficiency"].items()},
            _positive(p["bandwidth_efficiency"], f"{source}: parameters.bandwidth_efficiency", 10),
            _positive(p["kernel_floor_s"], f"{source}: parameters.kernel_floor_s", 1),
            _positive(p["overlap"], f"{source}: parameters.overlap", 1000),
            {k: _positive(v, f"{source}: parameters.architecture_factor.{k}", 100)
             for k, v in p["architecture_factor"].items()},
            _positive(p["measured_host_s"], f"{source}: parameters.measured_host_s", 1),
            _positive(p["typical_host_s"], f"{source}: parameters.typical_host_s", 1))
        rows = tuple((str(a), _positive(b, f"{source}: leave_one_out", 1e9), _positive(c, f"{source}: leave_one_out", 1e9))
                     for a, b, c in data["leave_one_out"])
        log_error = _positive(data["log_error"], f"{source}: log_error", 10)
        held = data.get("held_out") or {}
        if not isinstance(held, dict):
            raise CalibrationError(f"{source}: held_out is not a table of numbers")
        held_out = {str(k): _positive(v, f"{source}: held_out.{k}", 10) for k, v in held.items()}
        counted = data.get("held_out_groups") or {}
        if not isinstance(counted, dict) or not all(type(v) is int and 1 <= v <= 10_000 for v in counted.values()):
            raise CalibrationError(f"{source}: held_out_groups is not a table of whole numbers from 1")
        cards = data.get("cards_with_figures") or []
        if not isinstance(cards, list) or not all(isinstance(c, str) for c in cards):
            raise CalibrationError(f"{source}: cards_with_figures is not a list of card names")
        models = data.get("models_with_figures") or []
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise CalibrationError(f"{source}: models_with_figures is not a list of model names")
    except CalibrationError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CalibrationError(f"{source}: not a calibration diffbench wrote ({type(exc).__name__}: "
                               f"{one_line(str(exc))[:80]}); reinstall diffbench, or rebuild it with "
                               "benchmarks/projection_check.py --write") from None
    return Calibration(params, log_error, rows, held_out, tuple(cards), {str(k): v for k, v in counted.items()},
                       tuple(models))


def shipped_calibration() -> Calibration:
    """The calibration fitted by `benchmarks/projection_check.py --write` and shipped with the package."""
    where = resources.files("diffbench.hardware").joinpath(SHIPPED)
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CalibrationError(f"{where}: cannot be read as JSON ({type(exc).__name__}); reinstall diffbench, or "
                               "rebuild it with benchmarks/projection_check.py --write") from None
    return checked_calibration(data, str(where))
