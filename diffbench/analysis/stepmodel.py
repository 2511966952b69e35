"""The step-cost model: what one denoiser evaluation costs on a card, from counted work.

For each kernel-launching operator i of a call (measure/opcount.py), on card c of architecture a:

    gpu_i  = max(floor, F_i / (P_c · e_k · r_a),  B_i / (W_c · e_m · r_a))
    gpu    = Σ_i gpu_i
    host   = N · h                                     (N launches, h seconds of host work each)
    step   = (host^q + gpu^q)^(1/q)

F_i and B_i are the operator's FLOPs and bytes moved; P_c the card's dense FP16 tensor peak
(half of it for fp32 operators, which run on TF32 at best), W_c its memory bandwidth; e_k the
achievable fraction of peak for kind k (matmul, convolution, attention) and e_m of bandwidth,
both measured on Hopper (an H200's kernel profile, docs/gpu-validation.md §7); r_a how much more
or less of its peaks architecture a achieves than Hopper, fitted on published figures; `floor`
the shortest a kernel takes (launch latency, a tail of idle SMs). The host issues kernels while
the GPU runs earlier ones, so neither part simply adds: a step takes the larger of the two when
one dominates and more than either when they are close (phases of small kernels wait on the
host, phases of large ones on the GPU). The q-norm says that with one parameter, fitted on the
H200's measured steps (q = 1 would be no overlap, q = ∞ perfect overlap).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DiffbenchError
from ..hardware.gpus import GpuSpec, architecture_record
from ..measure.opcount import CallCounts

COMPUTE_KINDS = ("matmul", "convolution", "attention")


@dataclass(frozen=True)
class ModelParameters:
    """The fitted constants of the step model (analysis/calibration.py fits them)."""

    compute_efficiency: dict[str, float]  # e_k on Hopper, per compute kind
    bandwidth_efficiency: float  # e_m on Hopper
    kernel_floor_s: float
    overlap: float  # q
    architecture_factor: dict[str, float] = field(default_factory=dict)  # r_a; Hopper is 1
    measured_host_s: float = 25e-6  # h of the host that measured docs/gpu-runs
    typical_host_s: float = 15e-6  # h fitted on the published figures' hosts

    def factor(self, architecture: str) -> float:
        """r_a, as the architecture's record says (hardware/gpus.py): Hopper's is 1 by definition (the
        H200 anchors the model), a borrowing one takes its lender's, any other comes from its published
        figures, and one with none is refused, never given Hopper's."""
        if architecture in self.architecture_factor:
            return self.architecture_factor[architecture]
        record = architecture_record(architecture)  # hardware/gpus.py: how this architecture gets its factor
        if record.factor == "anchor":
            return 1.0
        if record.borrows is not None and record.borrows in self.architecture_factor:
            return self.architecture_factor[record.borrows]
        raise UnfittedArchitecture(architecture)

    def has_factor(self, architecture: str) -> bool:
        try:
            self.factor(architecture)
        except UnfittedArchitecture:
            return False
        return True


class UnfittedArchitecture(DiffbenchError):
    """A card whose architecture no published figure calibrates: projecting to it would be a guess."""

    def __init__(self, architecture: str) -> None:
        super().__init__(f"no published figure calibrates {architecture} cards, so diffbench cannot project to them: "
                         "measure one (diffbench run) or add a published figure to diffbench/hardware/published.py")
        self.architecture = architecture


@dataclass(frozen=True)
class StepCost:
    """One call's projected cost on a card, and what bounds it."""

    seconds: float
    gpu_s: float
    host_s: float
    compute_s: float  # of gpu_s, operators bound by compute
    memory_s: float  # of gpu_s, operators bound by bandwidth
    floor_s: float  # of gpu_s, operators at the kernel floor

    @property
    def bound(self) -> str:
        """'host' when dispatch dominates, else the GPU resource that takes most of its time."""
        if self.host_s >= self.gpu_s:
            return "host"
        parts = {"compute": self.compute_s, "memory": self.memory_s, "kernel launch latency": self.floor_s}
        return max(parts, key=lambda k: parts[k])


_ARRAYS: dict[int, tuple[CallCounts, tuple[np.ndarray, ...]]] = {}  # by the counts' identity: a report projects one count many times


def _arrays(counts: CallCounts) -> tuple[np.ndarray, ...]:
    """(kinds, flops, bytes moved, single precision?, the distinct kinds, each op's index into them)."""
    known = _ARRAYS.get(id(counts))
    if known is not None and known[0] is counts:
        return known[1]
    kinds = np.array([op.kind for op in counts.ops])
    flops = np.array([op.flops for op in counts.ops], dtype=float)
    moved = np.array([op.bytes for op in counts.ops], dtype=float)
    single = np.array([op.single for op in counts.ops], dtype=bool)
    distinct, index = np.unique(kinds, return_inverse=True) if len(kinds) else (kinds, np.zeros(0, dtype=int))
    arrays = (kinds, flops, moved, single, distinct, index)
    if len(_ARRAYS) >= 256:
        _ARRAYS.clear()
    _ARRAYS[id(counts)] = (counts, arrays)
    return arrays


def gpu_time(counts: CallCounts, card: GpuSpec, params: ModelParameters) -> tuple[float, float, float, float]:
    """(total, compute-bound, memory-bound, at-floor) seconds of GPU work for one call."""
    kinds, flops, moved, single, distinct, index = _arrays(counts)
    if not len(kinds):
        return 0.0, 0.0, 0.0, 0.0
    r = params.factor(card.architecture)
    efficiency = np.array([params.compute_efficiency.get(str(k), 1.0) for k in distinct])[index]
    peak = card.fp16_tflops * 1e12 * np.where(single, 0.5, 1.0)
    compute = np.where(flops > 0, flops / (peak * efficiency * r), 0.0)
    memory = moved / (card.bandwidth_gbs * 1e9 * params.bandwidth_efficiency * r)
    each = np.maximum(np.maximum(compute, memory), params.kernel_floor_s)
    at_floor = params.kernel_floor_s >= np.maximum(compute, memory)
    by_compute = ~at_floor & (compute >= memory)
    return (float(each.sum()), float(each[by_compute].sum()), float(each[~at_floor & ~by_compute].sum()),
            float(each[at_floor].sum()))


def combine(host_s: float, gpu_s: float, overlap: float) -> float:
    """The q-norm of the host and GPU parts (see the module's equations)."""
    if host_s <= 0 or gpu_s <= 0:
        return max(host_s, gpu_s)
    larger = max(host_s, gpu_s)
    return float(larger * ((host_s / larger) ** overlap + (gpu_s / larger) ** overlap) ** (1 / overlap))


def call_cost(counts: CallCounts, card: GpuSpec, params: ModelParameters, host_s_per_launch: float) -> StepCost:
    gpu, compute, memory, floor = gpu_time(counts, card, params)
    host = counts.launches * host_s_per_launch
    return StepCost(combine(host, gpu, params.overlap), gpu, host, compute, memory, floor)


def host_from_measurement(measured_s: float, counts: CallCounts, card: GpuSpec, params: ModelParameters) -> float | None:
    """The per-launch host cost that makes the model meet a measured step on `card`; None when the
    measured step is not longer than the model's GPU time (the host cannot be read from it)."""
    gpu = gpu_time(counts, card, params)[0]
    if measured_s <= gpu or not counts.launches:
        return None
    q = params.overlap
    host = (measured_s**q - gpu**q) ** (1 / q)
    return float(host / counts.launches)
