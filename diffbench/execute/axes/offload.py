"""offload (at load): place the pipeline on its device, or offload it as the cell asks."""

from __future__ import annotations

from typing import Any

from ..configure import NotApplicable, Runtime
from . import Loading


def at_load(loading: Loading) -> None:
    place(loading.pipe, loading.settings, loading.runtime)


def place(pipe: Any, settings: dict[str, Any], runtime: Runtime) -> None:
    """Move the pipeline to its device, or set up offloading, as the cell asks."""
    import torch

    offload = settings["offload"]
    device = runtime.device
    if offload == "none":
        pipe.to(device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        level = "block_level" if offload == "group-block" else "leaf_level"
        extra: dict[str, Any] = {"num_blocks_per_group": 1} if level == "block_level" else {}
        vae = getattr(pipe, "vae", None)
        if vae is not None and _vae_upcasts(pipe, vae):
            # The pipeline casts an upcasting VAE to fp32 around decode; diffusers' group-offload
            # hooks keep the fp16 copies and decode then fails ("mixed dtype"). The VAE is small:
            # it stays on the device, and the runtime description says so.
            import inspect

            if "exclude_modules" not in inspect.signature(pipe.enable_group_offload).parameters:
                raise NotApplicable("group offload of a pipeline whose VAE decodes in fp32 needs diffusers "
                                    "with enable_group_offload(exclude_modules=...)")
            extra["exclude_modules"] = ["vae"]
            vae.to(device)
            runtime.notes.append("group offload: the VAE (upcast to fp32 for decoding) stays on the device")
        pipe.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                  offload_type=level, use_stream=device.type == "cuda", **extra)


def _vae_upcasts(pipe: Any, vae: Any) -> bool:
    """True when the pipeline will cast its fp16 VAE to fp32 for decoding (SDXL's force_upcast)."""
    import torch

    return bool(getattr(vae.config, "force_upcast", False)) and vae.dtype == torch.float16 and \
        "upcast_vae" in dir(pipe)
