"""Answers from counts: time and memory of any counted model and setting on any card of the spec
table, with no results at all (the calibration shipped in the package is enough).

One answer per setting: the step model's time for the counted work (analysis/stepmodel.py), the
offload transfers by the bytes each mode moves (analysis/transfer.py), a quantized denoiser's
measured per-step factor where one was measured (never dropped, never invented), and the counted
memory need with its three states (analysis/memoryneed.py). Where a setting does not fit, the
settings that would are tried and each is answered the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..hardware.gpus import GpuSpec, dtype_refusal
from ..models.synthetic import COUNTED, SYNTHETIC
from ..rules.families import counting_family
from ..rules.quantization import parse_quantization
from .memoryneed import MemoryNeed, memory_need, weight_bytes
from .transfer import carry_rate_spread, host_spread, transfer_cost

# Per-evaluation time of a quantized denoiser over the plain one, measured on the H200 (SDXL 1024²,
# 8 steps, step medians of docs/gpu-runs/quantize-20261130-012032-vm.jsonl): weight-only formats
# dequantize on every call. Formats nobody measured get no time, only their memory.
QUANTIZED_STEP_FACTOR: dict[str, tuple[float, str]] = {
    "quanto:int8": (1.60, "quanto int8 on the H200: 127 ms against 79 ms per SDXL step"),
    "bnb:nf4": (1.66, "bitsandbytes NF4 on the H200: 132 ms against 79 ms per SDXL step"),
}
# The settings tried, in order, when one does not fit: offload before quantization (the picture
# stays the model's own), the lighter first.
FALLBACKS: tuple[dict[str, Any], ...] = (
    {"offload": "model"}, {"offload": "group-leaf"},
    {"quantize": "quanto:int8"}, {"quantize": "bnb:nf4"},
    {"quantize": "bnb:nf4", "offload": "model"}, {"quantize": "bnb:nf4@all"},
    {"quantize": "bnb:nf4@all", "offload": "model"}, {"offload": "sequential"},
)
FAMILY_OF_PRESET = {name: SYNTHETIC[name].family for name in COUNTED}


@dataclass
class CountedAnswer:
    """One setting on one card, from counts."""

    model: str
    settings: dict[str, Any]
    card: GpuSpec
    steps: int
    seconds: float | None  # None: the time of this setting is not known (an unmeasured quantization)
    low: float | None
    high: float | None
    confidence: float
    per_evaluation_s: float | None
    fixed_s: float | None
    evaluations: float
    need: MemoryNeed
    bound: str
    notes: list[str] = field(default_factory=list)
    unknown_time: str = ""  # why `seconds` is None

    @property
    def fits(self) -> str:
        return self.need.fits(self.card.vram_gib)

    def label(self) -> str:
        """'flux-dev · 1024x1024 · bf16 · guidance 3.5 · offload=model · quantize=bnb:nf4': what is
        not at its ordinary value is named."""
        s = self.settings
        parts = [self.model, str(s["resolution"]), str(s["dtype"]), f"guidance {s['guidance_scale']:g}"]
        if s.get("batch_size", 1) != 1:
            parts.append(f"batch {s['batch_size']}")
        parts += [f"{k}={s[k]}" for k in ("offload", "quantize") if s.get(k) not in (None, "none")]
        parts += [k for k in ("vae_tiling", "vae_slicing") if s.get(k)]
        return " · ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The documented answer object (docs/projection.md, 'Machine-readable answers')."""
        return {"model": self.model, "settings": self.settings, "card": self.card.name, "steps": self.steps,
                "seconds": self.seconds,
                "interval": None if self.low is None else {"low": self.low, "high": self.high,
                                                           "confidence": self.confidence},
                "per_evaluation_s": self.per_evaluation_s, "fixed_s": self.fixed_s, "evaluations": self.evaluations,
                "needs_gib": {"allocated": round(self.need.allocated_gib, 3), "low": round(self.need.low_gib, 3),
                              "high": round(self.need.high_gib, 3), "phase": self.need.phase},
                "host_ram_gib": round(self.need.host_gib, 3), "card_gib": self.card.vram_gib, "fits": self.fits,
                "bound": self.bound, "source": "counts", "notes": self.notes,
                "unknown": f"time not known: {self.unknown_time}" if self.seconds is None else None}

    def sentence(self) -> str:
        time = f"time not known: {self.unknown_time}" if self.seconds is None else \
            (f"{self.seconds:.2f} s per image (95% interval {self.low:.2f}-{self.high:.2f}; {self.bound}-bound; "
             f"fixed {self.fixed_s:.2f} s + {1000 * (self.per_evaluation_s or 0):.1f} ms x {self.evaluations:.0f} "
             "evaluations)")
        return (f"{self.label()} on the {self.card.name}, {self.steps} steps: {time}. Memory: "
                f"{self.need.describe(self.card.vram_gib)}. [FROM COUNTS, NOT MEASURED]")


def answer_from_counts(preset: str, steps: int, card: GpuSpec, settings: dict[str, Any]) -> CountedAnswer:
    """The counted answer for `preset` (analysis/projection.COUNTED_PRESETS) under
    `settings` (resolution, batch_size, dtype, guidance_scale, offload, quantize, vae_tiling,
    vae_slicing; each optional) on `card`."""
    from ..measure.workload import CFG_FAMILIES, count_workload
    from .calibration import shipped_calibration
    from .stepmodel import call_cost

    family = FAMILY_OF_PRESET[preset]
    spec = counting_family(family)
    defaults = SYNTHETIC[preset].defaults
    tile = SYNTHETIC[preset].vae_tile or spec.vae_tile  # the preset's own VAE where it differs from its family's
    resolution = str(settings.get("resolution") or defaults["resolution"])
    batch = int(settings.get("batch_size") or 1)
    dtype = str(settings.get("dtype") or spec.gpu_dtype)
    guidance = settings.get("guidance_scale")
    guidance = float(defaults.get("guidance_scale", 0.0) if guidance is None else guidance)
    offload = str(settings.get("offload") or "none")
    quantize = str(settings.get("quantize") or "none")
    guided = guidance > 1 and family in CFG_FAMILIES
    workload = count_workload(preset, resolution, batch, dtype, guided=guided)
    calibration = shipped_calibration()
    params = calibration.parameters
    host = params.typical_host_s
    step = call_cost(workload.denoiser, card, params, host)
    fixed = call_cost(workload.fixed, card, params, host)
    notes: list[str] = []
    unknown = ""
    need = memory_need(workload, family, offload, quantize, bool(settings.get("vae_slicing")),
                       tile=_tile_share(settings, resolution, tile))
    weights = weight_bytes(workload.parameters, workload.linear_parameters, dtype, quantize, workload.kept_parameters)
    moves = transfer_cost(offload, weights, card, vae_stays=spec.vae_upcast)
    compute_per_eval = step.seconds  # the evaluation's own time on the card, transfers aside
    per_eval: float | None = moves.evaluation(compute_per_eval)
    bound = step.bound if offload == "none" or per_eval == step.seconds else "host-device transfers"
    if moves.per_image_bytes or moves.per_evaluation_bytes:
        notes.append(f"{offload} offload moves {moves.per_image_bytes / 1e9:.1f} GB per image and "
                     f"{moves.per_evaluation_bytes / 1e9:.1f} GB per evaluation at the rates the H200 host reached "
                     "(analysis/transfer.py)")
    parsed = parse_quantization(quantize)
    if parsed is not None:
        measured = QUANTIZED_STEP_FACTOR.get(f"{parsed.library}:{parsed.format}")
        if measured is None:
            per_eval = None
            unknown = (f"{quantize}: its dequantizing cost per step was never measured, so no time is given "
                       "(measured: " + ", ".join(QUANTIZED_STEP_FACTOR) + ")")
            notes.append(unknown)
        elif per_eval is not None:
            compute_per_eval = step.seconds * measured[0]
            per_eval = moves.evaluation(compute_per_eval)
            notes.append(f"{quantize}: x{measured[0]:g} per evaluation, measured ({measured[1]})")
    refused = dtype_refusal(card, dtype)
    if refused is not None:
        per_eval, unknown = None, refused
        notes.append(refused)
    if need.phase == "VAE decode" and _tile_share(settings, resolution, tile) == 1.0 and \
            settings.get("vae_tiling"):
        notes.append(f"VAE tiling changes nothing at {resolution}: diffusers decodes a picture no larger than the "
                     f"VAE's {tile}px tile whole")
    evaluations = float(steps)
    fixed_s = fixed.seconds + moves.per_image_s
    spread, what = calibration.counts_spread(card.name, preset)
    notes.append(f"interval x/÷ {spread:.2f}: {what}")
    if per_eval is None:
        return CountedAnswer(preset, _shown(settings, resolution, batch, dtype, guidance, offload, quantize), card,
                             steps, None, None, None, 0.95, None, None, evaluations, need, bound, notes, unknown)
    seconds = (fixed_s + per_eval * evaluations) / batch
    on_card = (fixed.seconds + compute_per_eval * evaluations) / batch
    transfer_share = max(0.0, 1.0 - on_card / seconds) if seconds else 0.0
    spread = carry_rate_spread(spread, transfer_share, host_spread(offload))
    if transfer_share > 0.05:
        notes.append(f"{100 * transfer_share:.0f}% of the time is host-device transfers, whose rate differs "
                     f"x/÷ {host_spread(offload):.2f} between hosts: the interval carries that share of it")
    notes.insert(0, f"counted work on the {card.name} at a typical host ({1e6 * host:.0f} µs per launch), one "
                    "evaluation per step (Euler-like); a measurement of this model on any card refines it")
    return CountedAnswer(preset, _shown(settings, resolution, batch, dtype, guidance, offload, quantize), card, steps,
                         seconds, seconds / spread, seconds * spread, 0.95, per_eval / batch, fixed_s / batch,
                         evaluations, need, bound, notes)


def counted_peak(figure: Any) -> tuple[MemoryNeed, float]:
    """The count of one published or measured figure's setup (hardware/published_memory.py) and the
    peak to hold against it: the allocated peak, or where the figure's script put the whole pipeline
    on the card before enabling offload, the larger of that load and the run."""
    from ..measure.workload import CFG_FAMILIES, count_workload

    family = FAMILY_OF_PRESET[figure.model]
    guidance = SYNTHETIC[figure.model].defaults["guidance_scale"] if figure.guidance_scale is None \
        else figure.guidance_scale
    workload = count_workload(figure.model, figure.resolution, figure.batch_size, figure.dtype,
                              guided=guidance > 1 and family in CFG_FAMILIES)
    need = memory_need(workload, family, figure.offload, figure.quantize, figure.vae_slicing,
                       kept_fp32=figure.kept_fp32)
    return need, max(need.allocated_gib, need.weights_gib) if figure.placed_whole else need.allocated_gib


def _tile_share(settings: dict[str, Any], resolution: str, tile: int) -> float:
    """The share of the decode's activations a tiled decode holds at once: one tile of the picture
    (with diffusers' 25% overlap) where the picture is larger than the tile, else all of it."""
    if not settings.get("vae_tiling") or not tile:
        return 1.0
    width, height = (int(v) for v in resolution.lower().split("x"))
    if width <= tile and height <= tile:
        return 1.0
    return min(1.0, 1.25 * (min(width, tile) * min(height, tile)) / (width * height))


def _shown(settings: dict[str, Any], resolution: str, batch: int, dtype: str, guidance: float, offload: str,
           quantize: str) -> dict[str, Any]:
    shown: dict[str, Any] = {"resolution": resolution, "batch_size": batch, "dtype": dtype, "guidance_scale": guidance,
                             "offload": offload, "quantize": quantize}
    for flag in ("vae_tiling", "vae_slicing"):
        if settings.get(flag):
            shown[flag] = True
    return shown


def answers_with_fallbacks(preset: str, steps: int, card: GpuSpec, settings: dict[str, Any]) -> list[CountedAnswer]:
    """The asked setting's answer and, where it does not fit, every fallback that does (each with
    its time), in FALLBACKS' order; the asked one first."""
    asked = answer_from_counts(preset, steps, card, settings)
    answers = [asked]
    native = _native_settings(asked, card, settings)
    if asked.fits == "yes" and native is settings:
        return answers
    if native is not settings:  # the asked bf16 has no time on this card: fp16 in its place
        in_fp16 = answer_from_counts(preset, steps, card, native)
        if in_fp16.fits == "yes":
            return [asked, in_fp16]
    for change in FALLBACKS:
        if all(native.get(k) == v for k, v in change.items()):
            continue
        tried = answer_from_counts(preset, steps, card, {**native, **change})
        if tried.fits == "yes":
            answers.append(tried)
    # the fastest first; a setting whose time is not known last
    return [asked, *sorted(answers[1:], key=lambda a: (a.seconds is None, a.seconds or 0.0))]


def _native_settings(asked: CountedAnswer, card: GpuSpec, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` themselves, or in fp16 where the asked bf16 has no tensor cores on `card`: the
    settings tried in its place, each answered in fp16 and saying so."""
    if dtype_refusal(card, str(asked.settings["dtype"])) is None:
        return settings
    return {**settings, "dtype": "fp16"}


@dataclass
class CountedRecommendation:
    chosen: list[CountedAnswer]  # fit (or borderline, said), within the time limit, Pareto-optimal in time and memory
    others: list[tuple[CountedAnswer, str]]  # every other setting tried, with why it was not chosen


def recommend_from_counts(preset: str, steps: int, card: GpuSpec, settings: dict[str, Any],
                          vram_gib: float | None = None, max_seconds: float | None = None,
                          ram_gib: float | None = None) -> CountedRecommendation:
    """The settings of one model at one step count that fit `card` (or `vram_gib`) and, given
    `ram_gib`, whose offloaded weights fit host RAM, fastest first: the asked setting and every
    fallback, each answered from counts. A setting is chosen when no other is as fast in no more card
    memory and no more host RAM (the Pareto front of time, VRAM and host RAM: offloading FLUX in
    bf16 keeps 31 GiB in host RAM, NF4 with model offload 10, and a 16 GB machine must know)."""
    limit = card.vram_gib if vram_gib is None else vram_gib
    tried = [answer_from_counts(preset, steps, card, settings)]
    native = _native_settings(tried[0], card, settings)
    if native is not settings:
        tried.append(answer_from_counts(preset, steps, card, native))
    for change in FALLBACKS:
        if not all(native.get(k) == v for k, v in change.items()):
            tried.append(answer_from_counts(preset, steps, card, {**native, **change}))
    usable, others = [], []
    for answer in tried:
        state = answer.need.fits(limit)
        if state == "no":
            others.append((answer, f"needs {answer.need.low_gib:.1f}-{answer.need.high_gib:.1f} GiB, more than "
                                   f"{limit:g} GiB"))
        elif ram_gib is not None and answer.need.host_gib > ram_gib:
            others.append((answer, f"holds {answer.need.host_gib:.1f} GiB of offloaded weights in host RAM, more "
                                   f"than {ram_gib:g} GiB"))
        elif answer.seconds is None:
            others.append((answer, f"its time is not known ({answer.unknown_time})"))
        elif max_seconds is not None and answer.seconds > max_seconds:
            others.append((answer, f"{answer.seconds:.1f} s per image, over the {max_seconds:g} s asked"))
        else:
            usable.append(answer)
    usable.sort(key=lambda a: a.seconds or 0.0)
    chosen = []
    for answer in usable:
        dominated = any(o is not answer and (o.seconds or 0.0) <= (answer.seconds or 0.0)
                        and o.need.high_gib <= answer.need.high_gib and o.need.host_gib <= answer.need.host_gib
                        for o in chosen)
        if dominated:
            others.append((answer, "another setting is as fast in no more card memory and no more host RAM"))
        else:
            chosen.append(answer)
    return CountedRecommendation(chosen, others)
