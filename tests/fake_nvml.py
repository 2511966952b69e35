"""A stand-in for nvidia-ml-py on machines without an NVIDIA GPU.

It is the real `pynvml` module with only the functions that touch hardware replaced, so
constants, error classes and structure names are the library's own; every replaced function
keeps the real one's name and parameters (tests/test_telemetry.py checks that). GPUs are
simulated by FakeGpu objects, which serve as NVML handles.
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import pynvml as real


def _not_supported() -> Exception:
    return real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED)  # an NVMLError_NotSupported instance


@dataclass
class FakeProcess:
    pid: int
    usedGpuMemory: int  # noqa: N815 - the real structure's field name


@dataclass
class FakeGpu:
    name: str = "NVIDIA GeForce RTX 4090"
    uuid: str = "GPU-00000000-1111-2222-3333-444444444444"
    total_bytes: int = 24 * 2**30
    used_bytes: int = 2 * 2**30
    power_w: Callable[[float], float] = lambda t: 300.0
    energy_counter: bool = True  # False: an older card (before Volta) without the counter
    power_limit_w: float = 450.0
    default_power_limit_w: float = 450.0
    sm_clock_mhz: int = 2520
    mem_clock_mhz: int = 10501
    temperature_c: int = 62
    utilization: tuple[int, int] = (97, 60)
    throttle_mask: int = 0
    pcie: tuple[int, int, int, int] = (4, 4, 16, 16)  # gen, max gen, width, max width
    processes: list[FakeProcess] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def energy_mj(self) -> int:
        """Integral of power_w from `started` to now, in millijoules, as NVML's counter counts."""
        now = time.perf_counter() - self.started
        steps = max(1, int(now * 1000))
        dt = now / steps
        return int(sum(self.power_w(i * dt) * dt for i in range(steps)) * 1000)


@dataclass
class _Memory:
    total: int
    free: int
    used: int


@dataclass
class _Utilization:
    gpu: int
    memory: int


def make_fake_pynvml(gpus: list[FakeGpu], driver: str = "580.65.06", cuda: int = 13000) -> types.ModuleType:
    fake = types.ModuleType("pynvml")
    fake.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})

    def nvmlInit() -> None:  # noqa: N802 - the library's names
        return None

    def nvmlShutdown() -> None:  # noqa: N802
        return None

    def nvmlDeviceGetCount() -> int:  # noqa: N802
        return len(gpus)

    def nvmlDeviceGetHandleByIndex(index: int) -> FakeGpu:  # noqa: N802
        if not 0 <= index < len(gpus):
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return gpus[index]

    def nvmlDeviceGetHandleByUUID(uuid: str) -> FakeGpu:  # noqa: N802
        for gpu in gpus:
            if gpu.uuid == (uuid.decode() if isinstance(uuid, bytes) else uuid):
                return gpu
        raise real.NVMLError(real.NVML_ERROR_NOT_FOUND)

    def nvmlSystemGetDriverVersion() -> str:  # noqa: N802
        return driver

    def nvmlSystemGetCudaDriverVersion() -> int:  # noqa: N802
        return cuda

    def nvmlDeviceGetName(handle: FakeGpu) -> str:  # noqa: N802
        return handle.name

    def nvmlDeviceGetUUID(handle: FakeGpu) -> str:  # noqa: N802
        return handle.uuid

    def nvmlDeviceGetMemoryInfo(handle: FakeGpu, version: Any = None) -> _Memory:  # noqa: N802
        return _Memory(handle.total_bytes, handle.total_bytes - handle.used_bytes, handle.used_bytes)

    def nvmlDeviceGetCudaComputeCapability(handle: FakeGpu) -> tuple[int, int]:  # noqa: N802
        return (8, 9)

    def nvmlDeviceGetNumGpuCores(device: FakeGpu) -> int:  # noqa: N802
        return 16384

    def nvmlDeviceGetPowerManagementLimit(handle: FakeGpu) -> int:  # noqa: N802
        return int(handle.power_limit_w * 1000)

    def nvmlDeviceGetPowerManagementDefaultLimit(handle: FakeGpu) -> int:  # noqa: N802
        return int(handle.default_power_limit_w * 1000)

    def nvmlDeviceGetPowerUsage(handle: FakeGpu) -> int:  # noqa: N802
        return int(handle.power_w(time.perf_counter() - handle.started) * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(handle: FakeGpu) -> int:  # noqa: N802
        if not handle.energy_counter:
            raise _not_supported()
        return handle.energy_mj()

    def nvmlDeviceGetClockInfo(handle: FakeGpu, type: int) -> int:  # noqa: N802, A002
        return handle.sm_clock_mhz if type == real.NVML_CLOCK_SM else handle.mem_clock_mhz

    def nvmlDeviceGetMaxClockInfo(handle: FakeGpu, type: int) -> int:  # noqa: N802, A002
        return handle.sm_clock_mhz + 200 if type == real.NVML_CLOCK_SM else handle.mem_clock_mhz

    def nvmlDeviceGetTemperature(handle: FakeGpu, sensor: int) -> int:  # noqa: N802
        return handle.temperature_c

    def nvmlDeviceGetUtilizationRates(handle: FakeGpu) -> _Utilization:  # noqa: N802
        return _Utilization(*handle.utilization)

    def nvmlDeviceGetCurrentClocksThrottleReasons(handle: FakeGpu) -> int:  # noqa: N802
        return handle.throttle_mask

    def nvmlDeviceGetCurrPcieLinkGeneration(handle: FakeGpu) -> int:  # noqa: N802
        return handle.pcie[0]

    def nvmlDeviceGetMaxPcieLinkGeneration(handle: FakeGpu) -> int:  # noqa: N802
        return handle.pcie[1]

    def nvmlDeviceGetCurrPcieLinkWidth(handle: FakeGpu) -> int:  # noqa: N802
        return handle.pcie[2]

    def nvmlDeviceGetMaxPcieLinkWidth(handle: FakeGpu) -> int:  # noqa: N802
        return handle.pcie[3]

    def nvmlDeviceGetPcieThroughput(device: FakeGpu, counter: int) -> int:  # noqa: N802
        raise _not_supported()  # as on many consumer boards

    def nvmlDeviceGetComputeRunningProcesses(handle: FakeGpu) -> list[FakeProcess]:  # noqa: N802
        return list(handle.processes)

    def nvmlDeviceGetGraphicsRunningProcesses(handle: FakeGpu) -> list[FakeProcess]:  # noqa: N802
        return []

    for function in list(locals().values()):
        if callable(function) and getattr(function, "__name__", "").startswith("nvml"):
            setattr(fake, function.__name__, function)
    fake.REPLACED = sorted(name for name, value in vars(fake).items()
                           if name.startswith("nvml") and getattr(value, "__module__", "") == __name__)
    return fake
