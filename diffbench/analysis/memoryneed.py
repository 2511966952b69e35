"""What a card must hold for a setting, counted for any model and shape, measured where measured.

Counted (measure/workload.py, on the meta device): the parameters of every component and the
activation peak of each phase (text encoding, one denoiser call, the VAE decode), the tensors a
call creates and holds at once. Here they become bytes on the card, phase by phase:

- weights at the run's dtype, the denoiser's (and with `@all` the text encoders') linear layers at
  the quantized format's bytes, the VAE in fp32 during the decode where the pipeline upcasts it;
- what each offload mode keeps resident: everything (none); the component of the phase (model);
  the VAE where group offload leaves it on the card (SDXL); about nothing for sequential;
- the activations of the phase times ACTIVATION_FACTOR: what the meta pass cannot see (cuDNN
  workspaces, temporaries of fused kernels), fitted on the three H200 cells without offload
  (SDXL fp16, SD 3.5 Medium and FLUX.1 schnell bf16 at 1024²: factors 1.63, 2.10 and 1.79).

The peak over the phases is torch's allocated peak. A card holds more than that: the caching
allocator's slack and the CUDA context. `Margin` states both from the measured runs, and the
answer has three states: fits (even with the slack measured under a cap), does not fit (even with
none), borderline between (what to change is said).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..rules.families import counting_spec
from ..rules.quantization import parse_quantization
from .tables import ALLOCATOR_MARGIN, CUDA_CONTEXT_BYTES

GIB = 2**30  # frames.CUDA_CONTEXT_BYTES and ALLOCATOR_MARGIN are the measured margin (issue 22)
ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
# Bytes per weight of a quantized linear layer, scales included: int8 and fp8 one byte (a scale per
# output row is negligible); 4-bit formats half a byte plus a 16-bit scale and offset per group of
# 64-128 weights (bitsandbytes NF4 blocks of 64 with double-quantized absmax; torchao/quanto int4
# groups of 128): 0.53 bytes.
QUANTIZED_BYTES = {"int8": 1.0, "fp8": 1.0, "int4": 0.53, "nf4": 0.53}
# Where a library holds more than its format: optimum-quanto's int4 FLUX.1-dev (transformer and T5)
# holds 12.254 GiB after loading against torchao's 10.635 for the same weights (hardware/
# published_memory.QUANT_BLOG's 'Memory after loading' column): 1.62 GiB over 15.5e9 packed weights
# is 0.11 byte more per weight (the source does not say what holds it).
LIBRARY_BYTES = {("quanto", "int4"): 0.64}
# Allocated memory over the counted activations (see the module's docstring): the geometric mean
# of the three H200 factors. benchmarks/memory_check.py prints each measured cell against it.
ACTIVATION_FACTOR = 1.82
TEXT_COMPONENTS = ("text_encoder", "text_encoder_2", "text_encoder_3")


@dataclass(frozen=True)
class Margin:
    """From torch's allocated peak to what the card must hold.

    `context_gib`: the CUDA context and library workspaces outside the allocator, 0.60 GiB measured
    through NVML's per-process figure under an 8 GiB cap (docs/gpu-validation.md §5). `slack`: the
    caching allocator's reserved over allocated under that cap, 1.16 (7.21 / 6.22 GiB). Uncapped, the
    allocator keeps what nothing reclaims (1.03-2.78 on the H200), which says nothing of a small card,
    so only the capped run sets it. A need between allocated + context and allocated x slack + context
    is borderline: whether it fits depends on fragmentation no count can see."""

    context_gib: float = CUDA_CONTEXT_BYTES / GIB
    slack: float = ALLOCATOR_MARGIN

    def low(self, allocated_gib: float) -> float:
        return allocated_gib + self.context_gib

    def high(self, allocated_gib: float) -> float:
        return allocated_gib * self.slack + self.context_gib

    def state(self, allocated_gib: float, card_gib: float) -> str:
        """'yes', 'borderline' or 'no': whether a card of `card_gib` holds this allocated peak."""
        if self.high(allocated_gib) <= card_gib:
            return "yes"
        return "no" if self.low(allocated_gib) > card_gib else "borderline"


MARGIN = Margin()


@dataclass(frozen=True)
class MemoryNeed:
    """A setting's counted memory on a card, per phase, and what bounds it."""

    allocated_gib: float  # torch's allocated peak, the largest phase
    phase: str  # the phase that sets it
    phases: dict[str, float]
    weights_gib: float  # all weights at the run's dtype and quantization
    host_gib: float = 0.0  # what host RAM holds for the card: the offloaded weights (pinned for group offload)
    source: str = "counts"  # or "measured" where a measured allocated peak replaced the count

    @property
    def low_gib(self) -> float:
        return MARGIN.low(self.allocated_gib)

    @property
    def high_gib(self) -> float:
        return MARGIN.high(self.allocated_gib)

    def fits(self, card_gib: float) -> str:
        """'yes', 'borderline' or 'no' on a card of `card_gib`."""
        return MARGIN.state(self.allocated_gib, card_gib)

    def describe(self, card_gib: float) -> str:
        state = self.fits(card_gib)
        figures = (f"needs {self.low_gib:.1f}-{self.high_gib:.1f} GiB ({self.source}: {self.allocated_gib:.1f} GiB "
                   f"allocated at the {self.phase} peak, + {MARGIN.context_gib:.2f} GiB context, allocator slack up "
                   f"to x{MARGIN.slack:g})")
        verdict = {"yes": "fits", "no": "does not fit", "borderline": "borderline: fits only if the allocator "
                   "fragments little"}[state]
        host = f"; host RAM holds {self.host_gib:.1f} GiB of offloaded weights" if self.host_gib else ""
        return f"{verdict} {card_gib:g} GiB; {figures}{host}"


def weight_bytes(parameters: dict[str, int], linear: dict[str, int], dtype: str, quantize: str | None,
                 kept: dict[str, int] | None = None, kept_fp32: bool | None = None) -> dict[str, float]:
    """Bytes of each component's weights at `dtype`, its linear layers at the quantized format's
    bytes where `quantize` covers it (the denoiser; with @all the text encoders too).

    `kept`: linear parameters transformers keeps out of every quantizer (T5's `wo`); they are held
    in fp32 where `kept_fp32` (by default at fp16, as transformers loads them; transformers before
    5.0 also upcast them under bitsandbytes), else at `dtype`."""
    size = ELEMENT_BYTES[dtype]
    kept = kept or {}
    kept_size = 4 if (dtype == "fp16" if kept_fp32 is None else kept_fp32) else size
    packed = _packed_weights(linear, quantize, kept)
    element = _element_bytes(quantize)
    return {component: packed.get(component, 0) * element + kept.get(component, 0) * kept_size
            + (count - packed.get(component, 0) - kept.get(component, 0)) * size
            for component, count in parameters.items()}


def packed_bytes(linear: dict[str, int], quantize: str | None, kept: dict[str, int] | None = None) -> dict[str, float]:
    """Bytes of the quantized linear weights of each component `quantize` covers."""
    element = _element_bytes(quantize)
    return {component: count * element for component, count in _packed_weights(linear, quantize, kept).items()}


def _packed_weights(linear: dict[str, int], quantize: str | None, kept: dict[str, int] | None) -> dict[str, int]:
    """The linear weights `quantize` packs in each component it covers (the denoiser; with @all the
    text encoders), the kept layers left out."""
    parsed = parse_quantization(quantize or "none")
    if parsed is None:
        return {}
    kept = kept or {}
    return {component: count - kept.get(component, 0) for component, count in linear.items()
            if component in ("unet", "transformer") or (parsed.scope == "all" and component in TEXT_COMPONENTS)}


def _element_bytes(quantize: str | None) -> float:
    parsed = parse_quantization(quantize or "none")
    if parsed is None:
        return 0.0
    return LIBRARY_BYTES.get((parsed.library, parsed.format), QUANTIZED_BYTES[parsed.format])


def memory_need(workload: Any, family: str, offload: str = "none", quantize: str | None = None,
                vae_slicing: bool = False, tile: float = 1.0, kept_fp32: bool | None = None) -> MemoryNeed:
    """The counted need of one image of `workload` (measure/workload.Workload) under these settings;
    `tile` is the share of the decode a tiled decode holds at once (1: the picture is decoded whole);
    `kept_fp32` as in `weight_bytes`."""
    weights = weight_bytes(workload.parameters, workload.linear_parameters, workload.dtype, quantize,
                           workload.kept_parameters, kept_fp32)
    denoiser = "unet" if "unet" in weights else "transformer"
    texts = [c for c in TEXT_COMPONENTS if c in weights]
    vae = weights.get("vae", 0.0)
    vae_decoding = vae * ELEMENT_BYTES.get(workload.decode_dtype or workload.dtype, 2) / ELEMENT_BYTES[workload.dtype]
    decode_activations = tile * workload.decode_peak_bytes / (workload.batch_size if vae_slicing else 1)
    spec = counting_spec(family)
    vae_stays = spec is not None and spec.vae_upcast  # group offload leaves an upcasting VAE on the card
    act = ACTIVATION_FACTOR
    if offload == "none":
        total = sum(weights.values())
        phases = {"text encoding": total + act * workload.text_peak_bytes,
                  "denoising": total + act * workload.denoise_peak_bytes,
                  "VAE decode": total - vae + vae_decoding + act * decode_activations}
    elif offload == "model":
        phases = {"text encoding": max((weights[c] for c in texts), default=0.0) + act * workload.text_peak_bytes,
                  "denoising": weights[denoiser] + act * workload.denoise_peak_bytes,
                  "VAE decode": vae_decoding + act * decode_activations}
    elif offload in ("group-leaf", "group-block"):
        held = workload.largest_block_parameters * ELEMENT_BYTES[workload.dtype] * (2 if offload == "group-block" else 0)
        phases = {"text encoding": act * workload.text_peak_bytes + (vae if vae_stays else 0.0),
                  "denoising": held + act * workload.denoise_peak_bytes + (vae if vae_stays else 0.0),
                  "VAE decode": (vae_decoding if vae_stays else 0.0) + act * decode_activations}
    else:  # sequential: each layer's weights visit the card for its own forward
        phases = {"text encoding": act * workload.text_peak_bytes,
                  "denoising": act * workload.denoise_peak_bytes,
                  "VAE decode": act * decode_activations}
    if offload != "none" and (quantize or "").startswith("bnb:"):
        # bitsandbytes quantizes as the weights reach the card: every quantized layer is there at
        # once before offload takes the components away
        phases["loading"] = sum(packed_bytes(workload.linear_parameters, quantize, workload.kept_parameters).values())
    phase = max(phases, key=lambda name: phases[name])
    total = sum(weights.values())
    return MemoryNeed(phases[phase] / GIB, phase, {k: v / GIB for k, v in phases.items()}, total / GIB,
                      host_gib=0.0 if offload == "none" else total / GIB)
