"""Whether this host has the device a cell asks for, told before any worker or model loads.

`plan` asks NVML (no torch import: the CLI must answer at once); `run` asks torch itself, once
per distinct device and GPU name, so that a suite of CUDA cells on a CPU-only host is recorded
not_applicable in a second rather than after one worker start per pipeline load.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

from ..rules.applicability import expected_device, memory_fit_problem, setting_problem


def _cuda_names_from_torch() -> list[str] | str:
    import torch

    if not torch.cuda.is_available():
        return "this host has no usable CUDA GPU (torch.cuda.is_available() is False)"
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _cuda_names_from_nvml() -> list[str] | str:
    from . import nvml

    if nvml.nvml() is None:
        return f"no NVIDIA GPU found here (NVML: {nvml.unavailable_reason()})"
    names = [gpu["name"] for gpu in nvml.describe_gpus()]
    return names or "NVML finds no NVIDIA GPU on this host"


def _mps_problem() -> str | None:
    if platform.system() != "Darwin":
        return "device mps (Apple GPUs) exists only on macOS"
    return None


class DeviceCheck:
    """Answers 'can this host run device D (on a GPU named like G)?', asking once per question."""

    def __init__(self, cuda_names: Callable[[], list[str] | str]) -> None:
        self._cuda_names = cuda_names
        self._cuda: list[str] | str | None = None

    @classmethod
    def with_torch(cls) -> DeviceCheck:
        return cls(_cuda_names_from_torch)

    @classmethod
    def with_nvml(cls) -> DeviceCheck:
        return cls(_cuda_names_from_nvml)

    def cuda(self) -> list[str] | str:
        if self._cuda is None:
            self._cuda = self._cuda_names()
        return self._cuda

    def problem(self, settings: dict[str, Any]) -> str | None:
        """Why this host cannot run the cell, or None: its device, then its settings on the device
        it will get here (the worker applies the same rules, applicability.setting_problem), then
        its memory floor against this host's memory (`settings`: the cell's resolved settings)."""
        problem = self._device_problem(settings)
        if problem:
            return problem
        device = str(settings.get("device") or "auto")
        device_type = expected_device(settings, self.cuda() if device == "auto" else [])
        problem = setting_problem(settings, device_type) or memory_fit_problem(settings, device_type)
        if problem and device == "auto":
            problem += f" (device auto is {device_type} on this host)"
        return problem

    def _device_problem(self, settings: dict[str, Any]) -> str | None:
        device, gpu = str(settings.get("device") or "auto"), settings.get("gpu")
        if device == "mps":
            return _mps_problem()
        if device.startswith("cuda"):
            names = self.cuda()
            if isinstance(names, str):
                return names
            index = device.partition(":")[2]
            if index and int(index) >= len(names):
                return f"{device} does not exist on this host (it has {len(names)} CUDA GPU(s))"
            if gpu and not any(str(gpu).lower() in name.lower() for name in names):
                return f"no GPU matching '{gpu}' on this host (it has: {', '.join(names)})"
        return None
