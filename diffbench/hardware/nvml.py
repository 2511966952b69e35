"""NVML access through nvidia-ml-py (`import pynvml`), tolerant of machines without an NVIDIA GPU.

NVML numbers devices in PCI order and ignores CUDA_VISIBLE_DEVICES, so devices are
always matched to torch's by UUID, never by index.
"""

from __future__ import annotations

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


def unavailable_reason() -> str | None:
    nvml()
    return _state["error"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _safe(call: Any, *args: Any) -> Any:
    """NVML queries a card does not support raise NVMLError_NotSupported: report None instead."""
    try:
        return call(*args)
    except Exception:
        return None


def handle_for_uuid(uuid: str) -> Any | None:
    lib = nvml()
    if lib is None or not uuid:
        return None
    try:
        return lib.nvmlDeviceGetHandleByUUID(uuid)
    except Exception:
        return None


def describe_gpus() -> list[dict[str, Any]]:
    """Every NVIDIA GPU NVML sees, with what makes results comparable."""
    lib = nvml()
    if lib is None:
        return []
    driver = _text(_safe(lib.nvmlSystemGetDriverVersion) or "")
    cuda_version = _safe(lib.nvmlSystemGetCudaDriverVersion)
    cuda = f"{cuda_version // 1000}.{(cuda_version % 1000) // 10}" if cuda_version else None
    gpus = []
    for index in range(lib.nvmlDeviceGetCount()):
        handle = lib.nvmlDeviceGetHandleByIndex(index)
        memory = _safe(lib.nvmlDeviceGetMemoryInfo, handle)
        capability = _safe(lib.nvmlDeviceGetCudaComputeCapability, handle)
        power_limit = _safe(lib.nvmlDeviceGetPowerManagementLimit, handle)
        gpus.append({
            "index": index,
            "name": _text(lib.nvmlDeviceGetName(handle)),
            "uuid": _text(_safe(lib.nvmlDeviceGetUUID, handle) or ""),
            "vram_bytes": int(memory.total) if memory else None,
            "driver": driver,
            "cuda": cuda,
            "compute_capability": f"{capability[0]}.{capability[1]}" if capability else None,
            "power_limit_w": power_limit / 1000 if power_limit else None,
        })
    return gpus
