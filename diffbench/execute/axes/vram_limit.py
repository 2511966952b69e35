"""vram_limit (at load): cap what this process may take of the GPU, as a smaller card would."""

from __future__ import annotations

from typing import Any

from ..configure import NotApplicable
from . import Loading


def at_load(loading: Loading) -> None:
    """Before the pipeline exists: what it and the generations may take is capped from the start."""
    limit = loading.settings.get("vram_limit")
    if limit:
        loading.runtime.vram_cap = cap_cuda_memory(loading.runtime.device, limit, loading.runtime.gpu_uuid)


def cap_cuda_memory(device: Any, limit: str, gpu_uuid: str | None = None) -> dict[str, Any]:
    """Make this process see at most `limit` of VRAM, as a smaller card would (see `vram_budget`).

    Only capacity is emulated: bandwidth and compute stay those of the card in the machine.
    """
    import torch

    from ...hardware import nvml
    from ...rules.memsize import vram_limit_bytes

    torch.zeros(1, device=device)  # create the CUDA context so that its size is counted
    free, total = torch.cuda.mem_get_info(device)
    info = vram_budget(limit, vram_limit_bytes(limit), free, total, torch.cuda.memory_reserved(device),
                       nvml.own_usage(nvml.handle_for_uuid(gpu_uuid or "")))
    if "note" not in info:
        torch.cuda.set_per_process_memory_fraction(info["vram_allocator_cap_bytes"] / total, device)
    return info


def vram_budget(limit: str, limit_bytes: int, free: int, total: int, reserved: int,
                own: int | None) -> dict[str, Any]:
    """How much torch's allocator may take so that this process uses at most `limit_bytes`.

    This process's CUDA context and its other memory outside the allocator (`own` - `reserved`,
    `own` being NVML's per-process figure) are charged against the limit. Memory that other
    processes hold on the same GPU is not (a smaller card would not hold it), but a cap that the
    free memory cannot honour is refused. Where NVML cannot say what this process holds
    (`own` None), everything outside the allocator is charged, and the record says so.
    """
    if own is not None:
        outside, others = max(0, own - reserved), max(0, (total - free) - own)
    else:
        outside, others = (total - free) - reserved, None
    budget = limit_bytes - outside
    info: dict[str, Any] = {
        "vram_limit": limit, "vram_limit_bytes": limit_bytes, "vram_outside_allocator_bytes": int(outside),
        "vram_other_processes_bytes": None if others is None else int(others),
        "vram_outside_measured_by": "nvml_process" if own is not None else "device_free_memory",
        "vram_allocator_cap_bytes": int(min(budget, total)), "speed_emulated": False}
    if budget <= 0:
        raise NotApplicable(f"vram_limit {limit} is smaller than this process's CUDA context and other use "
                            f"({outside / 2**30:.2f} GiB) on this GPU")
    if limit_bytes >= total:
        info["note"] = "the limit is at least this GPU's memory: no cap applied"
    elif budget > free + reserved:
        held = f"other processes hold {others / 2**30:.2f} GiB" if others is not None else "it is in use"
        raise NotApplicable(f"vram_limit {limit} cannot be emulated: only {(free + reserved) / 2**30:.2f} GiB of "
                            f"this GPU is free ({held})")
    return info
