"""Projecting a measured setting onto a card nobody measured it on, through the step model.

The measured card's own time is the anchor: the projection scales it by what the step model
(analysis/stepmodel.py, calibrated in analysis/calibration.py) says the same work costs on each
card. Where the measurement is slower than the model's GPU time on the measured card, the excess is
the host's dispatch cost, and it is kept for the target (same host, another card). With offload the
excess is transfers instead: it scales with the rate each card's link carries (analysis/transfer.py),
not with TFLOP/s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..hardware.gpus import GpuSpec
from ..models.synthetic import COUNTED, SYNTHETIC
from .calibration import Calibration, Counted
from .stepmodel import call_cost, host_from_measurement
from .transfer import RATES, host_spread, transfer_ratio

COUNTED_PRESETS = COUNTED  # every counted architecture declares itself in models/synthetic.py
PRESET_OF_FAMILY = {"sd": "sd15", "sdxl": "sdxl", "flux": "flux-dev"}


def counted_architecture(source: object, family: object, model: object = None) -> str | None:
    """The synthetic preset whose counted work stands for a measured model, or None. A family maps to
    one architecture except SD3, whose Medium and Large differ: only a name saying which is counted.
    Results without a family (older files) are taken by a model name that is a family's name."""
    text = str(source or "").lower()
    if text.startswith("builtin:"):  # a tiny pipeline of random weights: its work is not the family's
        return None
    if not isinstance(family, str) or not family:
        family = str(model or "").lower()
    if text.startswith("synthetic:") and text.removeprefix("synthetic:") in COUNTED_PRESETS:
        return text.removeprefix("synthetic:")
    if family == "sd3":  # 3 Medium, 3.5 Medium and 3.5 Large differ: only a name saying which is counted
        version_35 = re.search(r"3[.\-_]?5", text) is not None
        if "large" in text:  # Large Turbo is Large distilled: the same network
            return "sd35-large" if version_35 else None
        if "medium" not in text:
            return None
        return "sd35-medium" if version_35 else "sd3-medium"
    if family == "sd" and re.search(r"(stable-diffusion-2|sd-?2[.\-_]?[01]\b|v2-1|2-base)", text):
        return "sd21"
    return PRESET_OF_FAMILY.get(str(family))


@dataclass(frozen=True)
class ProjectedCost:
    per_eval_s: float  # per image, like CostFit.per_eval_s
    fixed_s: float
    bound: str
    spread: float  # the interval's multiplicative half-width from the leave-one-out error
    notes: tuple[str, ...]
    # offload: the projected seconds of host-device transfers per image (fixed part, per evaluation)
    # and how much their rate differs between hosts (x/÷), which the interval carries for their share
    transfer_fixed_s: float = 0.0
    transfer_eval_s: float = 0.0
    transfer_spread: float = 1.0


def project_cost(per_eval_s: float, fixed_s: float, batch: int, offload: str, quantize: str, counted: Counted,
                 source: GpuSpec, target: GpuSpec, calibration: Calibration) -> ProjectedCost:
    """Scale a measured (per evaluation, fixed) cost from `source` to `target`."""
    params = calibration.parameters
    call_s = per_eval_s * batch  # one denoiser call computes the whole batch
    # an offloaded step's excess over the kernels is transfers, not dispatch: it says nothing of the host
    host = host_from_measurement(call_s, counted.denoiser, source, params) if offload == "none" else None
    notes = []
    if host is not None:
        notes.append(f"host part kept from the measuring host ({1e6 * host:.0f} µs per kernel launch, "
                     f"{counted.denoiser.launches} launches per call): the target card in the same computer")
    else:
        host = params.typical_host_s
        why = ("offloading moves weights during the step" if offload != "none" else
               f"the measurement is faster than the counted kernels on {source.name} (a step cache, compiled kernels)")
        notes.append(f"{why}: its time is scaled by the model's card ratio, with a typical host "
                     f"({1e6 * host:.0f} µs per launch)")
    on_source = call_cost(counted.denoiser, source, params, host)
    on_target = call_cost(counted.denoiser, target, params, host)
    ratio = on_target.seconds / on_source.seconds
    bound = on_target.bound
    fixed_source = call_cost(counted.fixed, source, params, host).seconds
    fixed_ratio = call_cost(counted.fixed, target, params, host).seconds / max(fixed_source, 1e-12)
    projected_eval = per_eval_s * ratio
    projected_fixed = fixed_s * fixed_ratio
    transfer_fixed = transfer_eval = 0.0
    if offload in RATES:
        # The measurement is compute plus transfers: the compute scales with the cards, the transfers
        # with the rate each card's host and link carry (analysis/transfer.py), never with TFLOP/s.
        link = transfer_ratio(offload, source, target)
        moved_fixed = max(0.0, fixed_s - fixed_source)
        projected_fixed = min(fixed_s, fixed_source) * fixed_ratio + moved_fixed * link
        if offload != "model":
            moved_eval = max(0.0, call_s - on_source.seconds)
            compute_eval = (call_s - moved_eval) * ratio
            if RATES[offload].overlapped:
                projected_eval = max(compute_eval, moved_eval * link) / batch
            else:
                projected_eval = (compute_eval + moved_eval * link) / batch
            if moved_eval * link > compute_eval:
                bound = "host-device transfers"
            transfer_eval = max(0.0, projected_eval - compute_eval / batch)
        transfer_fixed = moved_fixed * link
        notes.append(f"{offload} offload: the measured time beyond the counted kernels ({moved_fixed:.2f} s per image"
                     + (f", {1000 * max(0.0, call_s - on_source.seconds):.0f} ms per evaluation" if offload != "model"
                        else "") + f") is transfers, scaled x{link:.2f} by the rate {target.name}'s link carries, "
                     "not by its compute")
        notes.append(f"the rate of {offload} offload's transfers differs x/÷ {host_spread(offload):.2f} between hosts "
                     "(benchmarks/offload_check.py): the interval carries that for their share of the time")
    quantized = quantization_factor(quantize)
    if quantized is not None:
        # a quantized denoiser's excess over the plain kernels is dequantizing, not the host's dispatch:
        # the plain step on the target times the factor measured for this backend
        factor, source_text = quantized
        plain = call_cost(counted.denoiser, target, params, params.typical_host_s).seconds
        projected_eval = plain * factor / batch
        notes.append(f"{quantize}: the plain step on the {target.name} x{factor:g}, the factor measured for this "
                     f"backend ({source_text})")
    elif quantize not in ("none", ""):
        notes.append(f"{quantize}: no per-step factor was measured for this backend: projected as the measured "
                     "step's card ratio, which may drop its dequantizing cost")
    kind = calibration.kind_for(target.name)
    spread = calibration.spread(kind)
    notes.append(f"interval x/÷ {spread:.2f}: the held-out error of projections to a card "
                 + ("with published figures of its own" if kind == "figure" else
                    "whose own figures the fit never saw (it borrows its architecture's factor)"))
    notes.append(f"{bound}-bound on {target.name} (GPU {1000 * on_target.gpu_s:.1f} ms: compute "
                 f"{1000 * on_target.compute_s:.1f}, memory {1000 * on_target.memory_s:.1f}, launch floor "
                 f"{1000 * on_target.floor_s:.1f}; host {1000 * on_target.host_s:.1f} ms per call)")
    return ProjectedCost(projected_eval, projected_fixed, bound, spread, tuple(notes), transfer_fixed, transfer_eval,
                         host_spread(offload))


# Names a person may type for a counted architecture (compared without case, dashes, dots or spaces)
TYPED_PRESETS = {typed: name for name in COUNTED_PRESETS for typed in SYNTHETIC[name].typed}


# Models that are a counted architecture with other defaults: SDXL Turbo is SDXL distilled to
# 1-4 steps at 512x512 without classifier-free guidance (its model card's settings).
TYPED_ALIASES: dict[str, tuple[str, dict[str, object]]] = {
    "sdxlturbo": ("sdxl", {"resolution": "512x512", "guidance_scale": 0.0}),
    "sd35largeturbo": ("sd35-large", {"guidance_scale": 0.0}),  # 4 steps without guidance, at 1024x1024
}
# The step-distilled names' step counts (their model cards: SDXL Turbo 1 to 4, SD 3.5 Large Turbo 4)
ALIAS_STEPS = {"sdxlturbo": 4, "sd35largeturbo": 4}
FULL_MODEL_STEPS = 30  # what a ranking uses for a model that is not step-distilled, when not told


def _typed_key(name: str) -> str:
    return "".join(ch for ch in name.lower().removeprefix("synthetic:") if ch.isalnum())


def typed_preset(name: str) -> str | None:
    """The counted architecture a typed model name means ('sd1.5', 'SD 1.5', 'flux-dev', 'sdxl-turbo'), or None."""
    found = typed_model(name)
    return found[0] if found else None


def typed_model(name: str) -> tuple[str, dict[str, object]] | None:
    """The counted architecture a typed model name means, with the settings the name implies
    (SDXL Turbo: 512x512, no guidance), or None."""
    key = _typed_key(name)
    if key in TYPED_ALIASES:
        return TYPED_ALIASES[key]
    preset = TYPED_PRESETS.get(key)
    return (preset, {}) if preset else None


def usual_steps(name: str) -> int:
    """The steps a typed model name is run at when nobody says: a step-distilled model's own count
    (FLUX.1 schnell, SDXL Turbo: 4), else FULL_MODEL_STEPS."""
    key = _typed_key(name)
    if key in ALIAS_STEPS:
        return ALIAS_STEPS[key]
    preset = TYPED_PRESETS.get(key)
    return (SYNTHETIC[preset].usual_steps if preset else None) or FULL_MODEL_STEPS


@dataclass(frozen=True)
class CountedCost:
    per_step_s: float  # one denoiser evaluation of the whole batch
    fixed_s: float
    bound: str
    spread: float
    note: str


def cost_from_counts(counted: Counted, target: GpuSpec, calibration: Calibration, model: str) -> CountedCost:
    """A model no GPU here has run: its counted work on `target` at a typical published host."""
    params = calibration.parameters
    host = params.typical_host_s
    step = call_cost(counted.denoiser, target, params, host)
    fixed = call_cost(counted.fixed, target, params, host)
    note = (f"FROM COUNTS, NOT MEASURED: the counted work of one step ({counted.denoiser.launches} launches) on the "
            f"{target.name} at a typical host ({1e6 * host:.0f} µs per launch), one evaluation per step (Euler-like), "
            "diffusers' default NCHW layout; "
            f"{step.bound}-bound (GPU {1000 * step.gpu_s:.1f} ms, host {1000 * step.host_s:.1f} ms per step). "
            "A measurement of this model on any card refines it.")
    spread, what = calibration.counts_spread(target.name, model)
    return CountedCost(step.seconds, fixed.seconds, step.bound, spread, f"{note} Interval x/÷ {spread:.2f}: {what}.")


def quantization_factor(quantize: str) -> tuple[float, str] | None:
    """The measured per-evaluation factor of a quantized denoiser over the plain one, with its source."""
    from ..rules.quantization import parse_quantization
    from .counted import QUANTIZED_STEP_FACTOR

    try:
        parsed = parse_quantization(quantize or "none")
    except ValueError:
        return None
    return None if parsed is None else QUANTIZED_STEP_FACTOR.get(f"{parsed.library}:{parsed.format}")
