"""Each published host's offload rate, and how far the hosts part from the H200's.

A mode's rate on a host is the bytes analysis/transfer.py counts for it over the seconds it added
to the plain call there (hardware/published_offload.py). The rates differ by host (pageable copies,
the CPU's memory, per-layer hooks: not the link) and by model (smaller denoisers move fewer bytes per
hook): `rate_spread` is the widest ratio between the H200's rate and any other seen, the factor
an answer's transfer time carries between hosts (transfer.HOST_RATE_SPREAD holds it; a test
recomputes it from these figures).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hardware.gpus import resolve_gpu
from ..hardware.published_offload import PUBLISHED_OFFLOAD, PublishedOffload
from .memoryneed import weight_bytes
from .transfer import RATES, transfer_cost

CROSS_HOST_MODES = ("model", "sequential")


@dataclass(frozen=True)
class HostRate:
    figure: PublishedOffload
    mode: str
    moved_bytes: float
    added_s: float

    @property
    def gbs(self) -> float:
        return self.moved_bytes / self.added_s / 1e9


def moved_bytes(mode: str, model: str, resolution: str, steps: int, guided: bool, gpu: str = "h200",
                vae_stays: bool = False) -> float:
    """The bytes `mode` moves for one call of `steps` evaluations, as analysis/transfer.py counts them."""
    from ..measure.workload import count_workload

    workload = count_workload(model, resolution, 1, "fp16", guided=guided)
    weights = weight_bytes(workload.parameters, workload.linear_parameters, "fp16", None)
    moves = transfer_cost(mode, weights, resolve_gpu(gpu), vae_stays=vae_stays)
    return moves.per_image_bytes + steps * moves.per_evaluation_bytes


def host_rates() -> list[HostRate]:
    return [HostRate(f, mode, moved_bytes(mode, f.model, f.resolution, f.steps, f.guided, f.gpu),
                     f.walls[mode] - f.walls["none"])
            for f in PUBLISHED_OFFLOAD for mode in CROSS_HOST_MODES if mode in f.walls]


def h200_rate(mode: str) -> float:
    """The rate analysis/transfer.py uses for `mode`: the H200 host's, fitted on its SDXL cells."""
    rate = RATES[mode]
    return rate.per_image_gbs if mode == "model" else rate.per_evaluation_gbs


def rate_spread(rates: list[HostRate]) -> dict[str, float]:
    """Per mode, the widest x/÷ between the H200's rate and another host's."""
    spread: dict[str, float] = {}
    for rate in rates:
        ratio = h200_rate(rate.mode) / rate.gbs
        spread[rate.mode] = max(spread.get(rate.mode, 1.0), ratio, 1 / ratio)
    return spread
