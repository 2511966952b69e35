"""Whether a cell's settings can apply on a device: one rule set for `plan` and the worker.

`plan` asks it with the device it expects the cell to get ("auto" resolved through NVML, no
torch import); the worker asks it with the device torch gave. Both record the same reason, so
what plan calls "not applicable here" is exactly what run records as not_applicable.
"""

from __future__ import annotations

import platform
from typing import Any

from .backends import installed
from .quantization import CUDA_ONLY, LIBRARIES, parse_quantization


def setting_problem(settings: dict[str, Any], device_type: str, placed_by_cluster: bool = False,
                    check_packages: bool = True) -> str | None:
    """Why these settings cannot run on a device of `device_type` (cuda, mps, cpu), or None.
    `check_packages=False` leaves out what depends on this host's installed packages (a plan made
    here for a cluster whose nodes have their own)."""
    if settings.get("gpu") and device_type != "cuda" and not placed_by_cluster:
        return f"gpu '{settings['gpu']}' was asked for but the device is {device_type}"
    if settings.get("vram_limit") and device_type != "cuda":
        return f"vram_limit caps CUDA memory; the device is {device_type}"
    offload = settings.get("offload") or "none"
    if device_type == "mps" and offload in {"sequential", "group-block", "group-leaf"}:
        return f"offload '{offload}' is not supported on mps by diffusers"
    if device_type == "cpu" and offload != "none":
        return f"offload '{offload}' moves weights between CPU and an accelerator; the device is cpu"
    return quantization_problem(settings.get("quantize"), device_type, check_packages)


def memory_fit_problem(settings: dict[str, Any], device_type: str, device_total: int | None = None) -> str | None:
    """Why a cell cannot fit its device's memory, from its floor (memoryfloor.py) before anything
    loads: a CUDA cell against its vram_limit or the card (`device_total`, where known), a CPU or
    Apple GPU cell against this host's memory. `settings` are the resolved ones (source, family)."""
    from .memoryfloor import host_memory_bytes, memory_problem

    if device_type == "cuda":
        limit = settings.get("vram_limit")
        if limit:
            from .memsize import vram_limit_bytes

            return memory_problem(settings, device_type, vram_limit_bytes(str(limit)), f"its vram_limit {limit}")
        return memory_problem(settings, device_type, device_total, "this GPU's memory")
    from .memoryfloor import cpu_work_problem

    problem = memory_problem(settings, device_type, host_memory_bytes(), "this host's memory")
    return problem or (cpu_work_problem(settings) if device_type == "cpu" else None)


def quantization_problem(wanted: str | None, device_type: str, check_packages: bool = True) -> str | None:
    """Why a quantization cannot run here: a CUDA-only library off CUDA, or its package missing."""
    setting = parse_quantization(wanted or "none")
    if setting is None:
        return None
    if setting.library in CUDA_ONLY and device_type != "cuda":
        return (f"quantize '{setting.text}' needs a CUDA GPU: bitsandbytes quantizes as the weights move onto one "
                f"(this cell's device is {device_type})")
    module_name, package = LIBRARIES[setting.library]
    if check_packages and not installed(module_name):
        return f"quantize '{setting.text}' needs {package}, which is not installed (pip install {package}, or " \
               "diffbench[quantization])"
    return None


def expected_device(settings: dict[str, Any], cuda_names: list[str] | str) -> str:
    """The device type a cell will get: its own, or for "auto" what the worker picks (CUDA when this
    host has an NVIDIA GPU, Apple's GPU on an Apple silicon Mac, else the CPU)."""
    device = str(settings.get("device") or "auto")
    if device != "auto":
        return device.partition(":")[0]
    if isinstance(cuda_names, list) and cuda_names:
        return "cuda"
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"
