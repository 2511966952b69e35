"""NVML access through nvidia-ml-py (`import pynvml`), tolerant of machines without an NVIDIA GPU.

NVML numbers devices in PCI order and ignores CUDA_VISIBLE_DEVICES, so devices are
always matched to torch's by UUID, never by index. Queries a card does not support raise
NVMLError_NotSupported (the energy counter before Volta, PCIe counters on some boards):
they read as None here, never as zero.
"""

from __future__ import annotations

import os
from typing import Any

_state: dict[str, Any] = {"module": None, "error": None}


def nvml() -> Any | None:
    """The initialised pynvml module, or None (the reason is in `unavailable_reason()`)."""
    if _state["module"] is not None or _state["error"] is not None:
        return _state["module"]
    try:
        import pynvml

        pynvml.nvmlInit()
        _state["module"] = pynvml
    except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded...
        _state["error"] = f"{type(exc).__name__}: {exc}"
    return _state["module"]


def reset() -> None:
    """Forget the initialised module (tests swap in a fake pynvml)."""
    _state.update(module=None, error=None)


def unavailable_reason() -> str | None:
    nvml()
    return _state["error"]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def safe(call: Any, *args: Any) -> Any:
    """Run an NVML query; None when the card or driver does not support it."""
    try:
        return call(*args)
    except Exception:
        return None


def handle_for_uuid(uuid: str) -> Any | None:
    lib = nvml()
    if lib is None or not uuid:
        return None
    return safe(lib.nvmlDeviceGetHandleByUUID, uuid)


def processes_on(handle: Any) -> list[dict[str, Any]]:
    """Compute and graphics processes holding memory on a GPU (other than this one)."""
    lib = nvml()
    found: dict[int, dict[str, Any]] = {}
    for query in (lib.nvmlDeviceGetComputeRunningProcesses, lib.nvmlDeviceGetGraphicsRunningProcesses):
        for process in safe(query, handle) or []:
            if process.pid != os.getpid():
                used = getattr(process, "usedGpuMemory", None)
                found[process.pid] = {"pid": int(process.pid), "used_bytes": int(used) if used else None}
    return list(found.values())


def own_usage(handle: Any) -> int | None:
    """Device memory NVML charges to this process (context included), or None if it cannot tell."""
    lib = nvml()
    if lib is None or handle is None:
        return None
    for process in safe(lib.nvmlDeviceGetComputeRunningProcesses, handle) or []:
        used = getattr(process, "usedGpuMemory", None)
        if process.pid == os.getpid() and isinstance(used, int) and used > 0:
            return used
    return None


def describe_gpus() -> list[dict[str, Any]]:
    """Every NVIDIA GPU NVML sees, with what makes results comparable and what spoils them."""
    lib = nvml()
    if lib is None:
        return []
    driver = text(safe(lib.nvmlSystemGetDriverVersion) or "")
    cuda_version = safe(lib.nvmlSystemGetCudaDriverVersion)
    cuda = f"{cuda_version // 1000}.{(cuda_version % 1000) // 10}" if cuda_version else None
    gpus = []
    for index in range(lib.nvmlDeviceGetCount()):
        handle = lib.nvmlDeviceGetHandleByIndex(index)
        memory = safe(lib.nvmlDeviceGetMemoryInfo, handle)
        capability = safe(lib.nvmlDeviceGetCudaComputeCapability, handle)
        limit = safe(lib.nvmlDeviceGetPowerManagementLimit, handle)
        default_limit = safe(lib.nvmlDeviceGetPowerManagementDefaultLimit, handle)
        gpus.append({
            "index": index,
            "name": text(lib.nvmlDeviceGetName(handle)),
            "uuid": text(safe(lib.nvmlDeviceGetUUID, handle) or ""),
            "vram_bytes": int(memory.total) if memory else None,
            "vram_free_bytes": int(memory.free) if memory else None,
            "driver": driver,
            "cuda": cuda,
            "compute_capability": f"{capability[0]}.{capability[1]}" if capability else None,
            "cuda_cores": safe(lib.nvmlDeviceGetNumGpuCores, handle),
            "power_limit_w": limit / 1000 if limit else None,
            "power_limit_default_w": default_limit / 1000 if default_limit else None,
            "max_sm_clock_mhz": safe(lib.nvmlDeviceGetMaxClockInfo, handle, lib.NVML_CLOCK_SM),
            "max_mem_clock_mhz": safe(lib.nvmlDeviceGetMaxClockInfo, handle, lib.NVML_CLOCK_MEM),
            "pcie_gen": safe(lib.nvmlDeviceGetCurrPcieLinkGeneration, handle),
            "pcie_gen_max": safe(lib.nvmlDeviceGetMaxPcieLinkGeneration, handle),
            "pcie_width": safe(lib.nvmlDeviceGetCurrPcieLinkWidth, handle),
            "pcie_width_max": safe(lib.nvmlDeviceGetMaxPcieLinkWidth, handle),
            "temperature_c": safe(lib.nvmlDeviceGetTemperature, handle, lib.NVML_TEMPERATURE_GPU),
            "other_processes": processes_on(handle),
        })
    return gpus


def gpu_warnings(gpus: list[dict[str, Any]]) -> list[str]:
    """What would spoil a benchmark on these GPUs, each saying what to change."""
    warnings = []
    for gpu in gpus:
        name = f"GPU {gpu['index']} ({gpu['name']})"
        others = gpu.get("other_processes") or []
        if others:
            used = sum(p["used_bytes"] or 0 for p in others)
            warnings.append(f"{name}: {len(others)} other process(es) hold {used / 2**30:.2f} GiB on it "
                            f"(pids {', '.join(str(p['pid']) for p in others)}): they take memory and time; "
                            "stop them for clean numbers")
        limit, default = gpu.get("power_limit_w"), gpu.get("power_limit_default_w")
        if limit and default and limit < 0.95 * default:
            warnings.append(f"{name}: power limit {limit:.0f} W is below its default {default:.0f} W: results "
                            "will be slower than the card's stock speed (nvidia-smi -pl to restore)")
        width, width_max = gpu.get("pcie_width"), gpu.get("pcie_width_max")
        if width and width_max and width < width_max:
            warnings.append(f"{name}: PCIe link runs x{width} of x{width_max}: offloading and loading will be "
                            "slower; check the slot and riser")
        # The link generation drops at idle to save power, so a lower one is only noted.
        gen, gen_max = gpu.get("pcie_gen"), gpu.get("pcie_gen_max")
        if gen and gen_max and gen < gen_max:
            warnings.append(f"{name}: PCIe gen {gen} of {gen_max} right now (normal when idle; if it stays low under "
                            "load, offloading will be slower)")
    return warnings
