"""What offloading costs: the bytes each mode moves between host and card, over what moves them.

Offloaded weights live in host RAM and cross to the card when a component or layer runs. Each
mode moves its own bytes (counted from the component sizes, measure/workload.py):

- model: every component once per image onto the card and once back (accelerate moves the last
  one off when the next one is needed): twice all the weights;
- sequential: the denoiser's weights on every evaluation, layer by layer, and the text encoders and
  VAE once per image; nothing is copied back (the card's copy is dropped);
- group-leaf and group-block: the denoiser's weights on every evaluation, from pinned memory on a
  side stream that overlaps the transfer of the next group with the compute of this one, so an
  evaluation takes the longer of the two; the text encoders once per image.

The rate is the host's, not the link's: on the H200 host (PCIe 5.0 x16, 63 GB/s) each mode moved
its bytes at 4-20 GB/s (pageable copies and per-layer hooks cost far more than the wire), fitted
per mode from the H200 cells (docs/gpu-validation.md §4; benchmarks/offload_check.py prints them).
A card keeps that rate where its own link carries it (LINK_EFFICIENCY of its PCIe x16 rate) and is
bound by its link where not (a PCIe 3.0 card). Those are the assumptions to check on another host.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hardware.gpus import GpuSpec

GB = 1e9
# The share of a PCIe link's x16 rate that pinned host-to-device copies reach (25 of 31.5 GB/s on
# PCIe 4.0, about 80% as CUDA's bandwidthTest shows on such hosts): the link's own ceiling.
LINK_EFFICIENCY = 0.8


@dataclass(frozen=True)
class OffloadRate:
    """A mode's bytes per second on the H200 host, and for group modes the text encoders' own."""

    per_image_gbs: float  # model: all its bytes; sequential: its per-image bytes; group: the text encoders
    per_evaluation_gbs: float  # sequential and group: the denoiser's weights each evaluation
    overlapped: bool  # the evaluation's transfer runs beside its compute (group offload's side stream)


# Fitted on the H200 host's SDXL 1024² cells (offload-fast/-slow, 4 steps, 2 generations each):
# bytes counted by this module's rules over the time each phase took beyond the no-offload cell.
RATES: dict[str, OffloadRate] = {
    "model": OffloadRate(5.4, 0.0, False),  # 13.9 GB in 2.57 s
    "sequential": OffloadRate(4.4, 4.4, False),  # 20.5 GB of UNet weights in 4.69 s of steps
    "group-leaf": OffloadRate(20.0, 19.8, True),  # a 5.13 GB UNet per 0.259 s step; 1.64 GB of encoders in 0.08 s
    "group-block": OffloadRate(1.7, 16.1, True),  # 0.319 s steps; encoders as one block each: 1.0 s
}


# How far another host's rate for a mode is from the H200's: the widest ratio over the published
# offload timings of two other hosts (hardware/published_offload.py; analysis/hostrates.py computes
# it, a test holds these to that, benchmarks/offload_check.py prints each rate). Model offload: 2.13
# GB/s (SD 1.5 on a PCIe 3.0 host) against 5.40; sequential: 1.70 (SD 2.1 there) against 4.39. Small
# denoisers move fewer bytes per hook, so the rate also falls with the model. Group offload ran on
# one host only: it takes the widest seen. The time an answer spends on transfers carries this
# factor on top of the compute's interval.
HOST_RATE_SPREAD = {"model": 2.54, "sequential": 2.58}
UNSEEN_HOST_SPREAD = max(HOST_RATE_SPREAD.values())


def host_spread(offload: str) -> float:
    """The x/÷ factor on the transfer time of `offload` between hosts (1 for no offload)."""
    if offload not in RATES:
        return 1.0
    return HOST_RATE_SPREAD.get(offload, UNSEEN_HOST_SPREAD)


def carry_rate_spread(spread: float, share: float, rate_spread: float) -> float:
    """A projection's x/÷ `spread` widened for the `share` of its time spent on transfers, whose
    rate differs x/÷ `rate_spread` between hosts (counted and projected answers alike)."""
    return spread * rate_spread ** min(1.0, max(0.0, share))


def rate_on(target: GpuSpec, gbs: float) -> float:
    """A host rate as the target card sees it: bound by its link where the link is slower."""
    return min(gbs, target.link_gbs * LINK_EFFICIENCY)


@dataclass(frozen=True)
class TransferCost:
    per_image_s: float  # added to the fixed part of an image
    per_evaluation_s: float  # the transfer of one evaluation (overlapped or added, as `overlapped` says)
    overlapped: bool
    per_image_bytes: float
    per_evaluation_bytes: float

    def evaluation(self, compute_s: float) -> float:
        """One evaluation's time with its transfer: the longer of the two where they overlap."""
        if self.overlapped:
            return max(compute_s, self.per_evaluation_s)
        return compute_s + self.per_evaluation_s


def transfer_cost(offload: str, weights: dict[str, float], target: GpuSpec, vae_stays: bool = False) -> TransferCost:
    """The transfers of `offload` for weights (bytes per component) on `target`; 'none' moves nothing."""
    rate = RATES.get(offload)
    if rate is None:
        return TransferCost(0.0, 0.0, False, 0.0, 0.0)
    denoiser = weights.get("unet", weights.get("transformer", 0.0))
    texts = sum(v for k, v in weights.items() if k.startswith("text_encoder"))
    vae = weights.get("vae", 0.0)
    if offload == "model":
        image_bytes, eval_bytes = 2 * sum(weights.values()), 0.0
    elif offload == "sequential":
        image_bytes, eval_bytes = texts + vae, denoiser
    else:
        image_bytes, eval_bytes = texts + (0.0 if vae_stays else vae), denoiser
    per_image = image_bytes / (rate_on(target, rate.per_image_gbs) * GB) if image_bytes else 0.0
    per_eval = eval_bytes / (rate_on(target, rate.per_evaluation_gbs) * GB) if eval_bytes else 0.0
    return TransferCost(per_image, per_eval, rate.overlapped, image_bytes, eval_bytes)


def transfer_ratio(offload: str, source: GpuSpec, target: GpuSpec) -> float:
    """How much longer the same transfers take on `target` than on `source` (1 where both carry the
    host's rate: a PCIe 4.0 card keeps what the H200's host reached; a PCIe 3.0 card is link-bound)."""
    rate = RATES.get(offload)
    if rate is None:
        return 1.0
    gbs = rate.per_evaluation_gbs if offload != "model" else rate.per_image_gbs
    return rate_on(source, gbs) / rate_on(target, gbs)
