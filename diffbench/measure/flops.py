"""FLOPs of one denoiser call at a cell's real shapes, counted once per cell outside the timed region.

The probe keeps the inputs of the first denoiser call of a cell (the real batch, doubled by
classifier-free guidance where the pipeline does that); the denoiser is then run once more on
them under torch.utils.flop_counter, after the generation has been timed.
"""

from __future__ import annotations

from typing import Any


def _attention_flops(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    """Q·Kᵀ and P·V of scaled dot-product attention: 2·b·h·Lq·Lk·(d + d_v)."""
    from torch.utils.flop_counter import sdpa_flop_count

    return int(sdpa_flop_count(query, key, value))


def _extra_formulas() -> dict[Any, Any]:
    """Attention kernels torch's counter has no formula for (the CPU flash kernel among them)."""
    import torch

    ops = []
    for name in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable"):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            ops.append(op)  # the counter looks formulas up by overload packet
    return {op: _attention_flops for op in ops}


def count_call_flops(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """Total FLOPs (a multiply-add counts 2) of module(*args, **kwargs); None if it cannot be counted."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    module = getattr(module, "_orig_mod", module)  # count the eager module under torch.compile
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_extra_formulas()) as counter:
            module(*args, **kwargs)
    except Exception:
        return None
    return int(counter.get_total_flops())
