"""GPU telemetry during a generation, sampled by a background thread through NVML.

Power, clocks, temperature, utilisation, clock-throttle reasons, PCIe throughput and the
device's used memory, at 10-50 Hz. Energy comes from NVML's total-energy counter where the
card has one (Volta and later), else from integrating the power samples; the record says which.
The thread only reads NVML (no CUDA calls), so it does not synchronise the GPU.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_HZ = 20.0
TRACE_LIMIT = 600  # samples kept in a stored trace (30 s at 20 Hz); the summary uses all

# nvmlClocksThrottleReason* bits -> names. GPU idle is expected between generations and is ignored.
THROTTLE_BITS = {
    0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown", 0x10: "sync_boost",
    0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# Reasons that mean the card ran slower than it could for this workload.
SLOWING = {"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"}


def throttle_names(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_BITS.items() if mask & bit]


@dataclass
class _Samples:
    t: list[float] = field(default_factory=list)
    power_w: list[float | None] = field(default_factory=list)
    sm_mhz: list[float | None] = field(default_factory=list)
    mem_mhz: list[float | None] = field(default_factory=list)
    temp_c: list[float | None] = field(default_factory=list)
    util_gpu: list[float | None] = field(default_factory=list)
    util_mem: list[float | None] = field(default_factory=list)
    pcie_tx_kbs: list[float | None] = field(default_factory=list)
    pcie_rx_kbs: list[float | None] = field(default_factory=list)
    used_bytes: list[float | None] = field(default_factory=list)
    throttle: int = 0


def _stats(values: list[float | None]) -> tuple[float | None, float | None, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return None, None, None
    return sum(known) / len(known), min(known), max(known)


def _integrate(t: list[float], watts: list[float | None]) -> float | None:
    points = [(a, b) for a, b in zip(t, watts) if b is not None]
    if len(points) < 2:
        return None
    return sum((t2 - t1) * (w1 + w2) / 2 for (t1, w1), (t2, w2) in zip(points, points[1:]))


class TelemetrySampler:
    """Start before a generation, stop after: returns a summary (and optionally a trace)."""

    def __init__(self, nvml: Any, handle: Any, hz: float = DEFAULT_HZ) -> None:
        self._nvml = nvml
        self._handle = handle
        self.handle = handle
        self._interval = 1.0 / max(1.0, min(hz, 50.0))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples = _Samples()
        self._energy_start: int | None = None
        self._started = 0.0
        self.energy_counter = self._read(self._nvml.nvmlDeviceGetTotalEnergyConsumption) is not None

    def _read(self, call: Any, *args: Any) -> Any:
        try:
            return call(self._handle, *args)
        except Exception:  # NVMLError_NotSupported and friends: not measured, not zero
            return None

    def _sample(self) -> None:
        lib, s = self._nvml, self._samples
        s.t.append(time.perf_counter())
        power = self._read(lib.nvmlDeviceGetPowerUsage)
        s.power_w.append(power / 1000 if power is not None else None)
        s.sm_mhz.append(self._read(lib.nvmlDeviceGetClockInfo, lib.NVML_CLOCK_SM))
        s.mem_mhz.append(self._read(lib.nvmlDeviceGetClockInfo, lib.NVML_CLOCK_MEM))
        s.temp_c.append(self._read(lib.nvmlDeviceGetTemperature, lib.NVML_TEMPERATURE_GPU))
        rates = self._read(lib.nvmlDeviceGetUtilizationRates)
        s.util_gpu.append(rates.gpu if rates is not None else None)
        s.util_mem.append(rates.memory if rates is not None else None)
        s.pcie_tx_kbs.append(self._read(lib.nvmlDeviceGetPcieThroughput, lib.NVML_PCIE_UTIL_TX_BYTES))
        s.pcie_rx_kbs.append(self._read(lib.nvmlDeviceGetPcieThroughput, lib.NVML_PCIE_UTIL_RX_BYTES))
        memory = self._read(lib.nvmlDeviceGetMemoryInfo)
        s.used_bytes.append(float(memory.used) if memory is not None else None)
        mask = self._read(lib.nvmlDeviceGetCurrentClocksThrottleReasons)
        if mask:
            s.throttle |= int(mask)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> None:
        self._samples = _Samples()
        self._stop.clear()
        self._energy_start = self._read(self._nvml.nvmlDeviceGetTotalEnergyConsumption)
        self._started = time.perf_counter()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="diffbench-telemetry", daemon=True)
        self._thread.start()

    def stop(self, keep_trace: bool = False) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        duration = time.perf_counter() - self._started
        s = self._samples
        energy_end = self._read(self._nvml.nvmlDeviceGetTotalEnergyConsumption)
        if self._energy_start is not None and energy_end is not None:
            energy, source = (energy_end - self._energy_start) / 1000.0, "energy_counter"  # mJ -> J
        else:
            energy, source = _integrate(s.t, s.power_w), "integrated_power"
        power_avg, _, power_peak = _stats(s.power_w)
        sm_avg, sm_min, sm_max = _stats(s.sm_mhz)
        reasons = throttle_names(s.throttle)
        summary: dict[str, Any] = {
            "samples": len(s.t), "duration_s": duration, "energy_j": energy, "energy_source": source if energy is not None else None,
            "avg_power_w": energy / duration if energy is not None and duration > 0 else power_avg,
            "peak_power_w": power_peak, "sm_clock_mhz_avg": sm_avg, "sm_clock_mhz_min": sm_min,
            "sm_clock_mhz_max": sm_max, "mem_clock_mhz_avg": _stats(s.mem_mhz)[0],
            "temperature_c_max": _stats(s.temp_c)[2], "utilization_gpu_avg": _stats(s.util_gpu)[0],
            "utilization_mem_avg": _stats(s.util_mem)[0], "pcie_tx_kbs_avg": _stats(s.pcie_tx_kbs)[0],
            "pcie_rx_kbs_avg": _stats(s.pcie_rx_kbs)[0], "peak_device_used_bytes": _stats(s.used_bytes)[2],
            "throttle_reasons": reasons, "throttled": bool(SLOWING & set(reasons)),
        }
        if keep_trace:
            step = max(1, len(s.t) // TRACE_LIMIT)
            summary["trace"] = {
                "t_s": [round(t - s.t[0], 4) for t in s.t[::step]], "power_w": s.power_w[::step],
                "sm_clock_mhz": s.sm_mhz[::step], "temperature_c": s.temp_c[::step], "utilization_gpu": s.util_gpu[::step],
            }
        return summary
