"""The host and software a run happens on, read without importing torch."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import SCHEMA_VERSION, __version__
from .nvml import describe_gpus

LIBRARIES = ("torch", "diffusers", "transformers", "accelerate", "safetensors", "nvidia-ml-py")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def host_description() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_bytes": ram_bytes(),
        "gpus": describe_gpus(),
    }


def software_description() -> dict[str, Any]:
    versions: dict[str, Any] = {"python": platform.python_version(), "diffbench": __version__,
                                "schema_version": SCHEMA_VERSION}
    for name in LIBRARIES:
        try:
            versions[name.replace("-", "_")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name.replace("-", "_")] = None
    versions["executable"] = sys.executable
    return versions


def torch_view() -> dict[str, Any]:
    """What torch sees: its CUDA build, and per device the SM count and UUID (to match NVML's)."""
    try:
        import torch
    except ImportError:
        return {"available": False}
    view: dict[str, Any] = {"version": torch.__version__, "cuda_build": torch.version.cuda,
                            "cuda_available": torch.cuda.is_available(), "devices": []}
    mps = getattr(torch.backends, "mps", None)
    view["mps_available"] = bool(mps and mps.is_available())
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            view["devices"].append({"index": index, "name": props.name, "sm_count": props.multi_processor_count,
                                    "vram_bytes": props.total_memory,
                                    "uuid": f"GPU-{props.uuid}" if getattr(props, "uuid", None) else None,
                                    "compute_capability": f"{props.major}.{props.minor}"})
    return view


def environment_description() -> dict[str, Any]:
    """What shapes CPU-side timing on this host: thread settings, CPU affinity and load now."""
    described: dict[str, Any] = {name: os.environ.get(name) for name in
                                 ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES")}
    try:
        described["cpu_affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        described["cpu_affinity"] = None
    try:
        described["load_avg"] = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        described["load_avg"] = None
    return described


def load_warnings() -> list[str]:
    """A machine already busier than its cores measures that business, not the model."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return []
    cores = os.cpu_count() or 1
    if load > cores:
        return [f"load average {load:.1f} exceeds the {cores} cores: other work will slow and scatter the "
                "measurements; close it, or expect diffbench to flag cells as noisy"]
    return []


def system_report() -> dict[str, Any]:
    """Everything `diffbench sysinfo` shows: host, GPUs (NVML, matched to torch by UUID), software, warnings."""
    from .gpus import find_gpu
    from .nvml import gpu_warnings, unavailable_reason

    host = host_description()
    torch_info = torch_view()
    by_uuid = {d["uuid"]: d for d in torch_info.get("devices", []) if d.get("uuid")}
    for gpu in host["gpus"]:
        seen = by_uuid.get(gpu["uuid"])
        gpu["sm_count"] = seen["sm_count"] if seen else None
        gpu["torch_index"] = seen["index"] if seen else None  # differs from NVML's under CUDA_VISIBLE_DEVICES
        spec = find_gpu(gpu["name"], gpu.get("vram_bytes"))
        gpu["spec"] = spec.name if spec else None
    reason = unavailable_reason()
    return {
        **host,
        "software": software_description(),
        "torch": torch_info,
        "telemetry": "nvml" if not reason else f"unavailable: {reason}",
        "warnings": gpu_warnings(host["gpus"]) + load_warnings(),
    }
