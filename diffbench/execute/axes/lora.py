"""lora (per cell): LoRA adapters loaded onto the pipeline, switched between cells."""

from __future__ import annotations

from typing import Any

from ..configure import NotApplicable
from . import Applied, Loaded


def apply_lora(pipe: Any, wanted: str | None, applied: str | None, base_dir: str) -> tuple[str | None, dict[str, Any]]:
    """Make the pipeline's LoRAs the cell's. Returns what is now applied and what it cost:
    `lora_unload_s` (removing the previous cell's), `lora_load_s` (loading and weighting this
    cell's), and the files' sizes. LoRAs stay unfused (peft layers, as diffusers loads them):
    unloading then restores the base weights exactly, so a later cell without a LoRA measures
    the untouched model. A `fuse:` setting merges them into the weights and drops the peft
    layers (`lora_fuse_s`), as a LoRA is deployed; the plan gives it a pipeline load of its own,
    so fused weights never meet another cell."""
    import time
    from pathlib import Path

    from ...rules.loras import is_fused, parse_loras

    wanted = None if wanted in (None, "none") else wanted
    costs: dict[str, Any] = {}
    if wanted == applied:
        return applied, costs
    if is_fused(applied):  # the plan's load groups rule this out; never measure merged weights as others
        raise RuntimeError(f"LoRAs '{applied}' are fused into this pipeline's weights; '{wanted}' needs a fresh load")
    if wanted and not hasattr(pipe, "load_lora_weights"):
        raise NotApplicable(f"{type(pipe).__name__} cannot load LoRAs in this diffusers version")
    if applied is not None:
        started = time.perf_counter()
        pipe.unload_lora_weights()
        costs["lora_unload_s"] = time.perf_counter() - started
    if wanted is None:
        return None, costs
    uses = parse_loras(wanted)
    started = time.perf_counter()
    names = []
    try:
        for index, use in enumerate(uses):
            path = Path(use.path) if Path(use.path).is_absolute() else Path(base_dir) / use.path
            names.append(f"lora{index}")
            pipe.load_lora_weights(str(path), adapter_name=names[-1])
        pipe.set_adapters(names, adapter_weights=[u.scale for u in uses])
    except ImportError as exc:
        raise NotApplicable(f"LoRAs need peft: pip install 'diffbench[lora]' ({exc})") from None
    except (ValueError, KeyError, OSError) as exc:
        if names:
            pipe.unload_lora_weights()
        raise NotApplicable(f"LoRA '{wanted}' does not fit {type(pipe).__name__}: {str(exc)[:300]}") from None
    costs["lora_load_s"] = time.perf_counter() - started
    if is_fused(wanted):
        started = time.perf_counter()
        pipe.fuse_lora(adapter_names=names)
        pipe.unload_lora_weights()  # the merged weights stay; the peft layers go
        costs["lora_fuse_s"] = time.perf_counter() - started
    return wanted, costs


def apply(pipe: Any, settings: dict[str, Any], applied: Any, loaded: Loaded) -> Applied:
    """The cell's LoRAs on the pipeline (state: those loaded now; None when it raises: a failed
    switch unloads first), and what loading or fusing them cost."""
    state, costs = apply_lora(pipe, settings.get("lora"), applied, loaded.base_dir)
    return Applied(state, context=costs)
