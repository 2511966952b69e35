"""Peak memory per generation: host RSS, torch's CUDA peaks, and NVML's device-wide use."""

from __future__ import annotations

import resource
import sys
import threading
from pathlib import Path
from typing import Any

_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class HostPeak:
    """Peak resident set size of this process during a window.

    On Linux the kernel keeps the high-water mark (VmHWM) and lets a process reset it
    by writing 5 to /proc/self/clear_refs: exact, and free of a sampling thread inside
    the timed region. Elsewhere, the lifetime peak from getrusage (it cannot be reset,
    so it is an upper bound; `resettable` says which).
    """

    def __init__(self) -> None:
        self.resettable = self._try_reset()

    @staticmethod
    def _try_reset() -> bool:
        try:
            _CLEAR_REFS.write_text("5")
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.resettable:
            self._try_reset()

    def peak_bytes(self) -> int:
        if self.resettable:
            for line in _PROC_STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


class TorchCudaPeak:
    """torch's own view: peak bytes allocated by tensors and reserved by its caching allocator."""

    def __init__(self, device: Any) -> None:
        import torch

        self._cuda = torch.cuda
        self._device = device

    def reset(self) -> None:
        self._cuda.reset_peak_memory_stats(self._device)

    def peaks(self) -> tuple[int, int]:
        return int(self._cuda.max_memory_allocated(self._device)), int(self._cuda.max_memory_reserved(self._device))


class NvmlMemorySampler:
    """Device-wide used memory from NVML, sampled in a background thread during a generation.

    It sees what torch does not: the CUDA context, cuDNN/cuBLAS workspaces, other processes.
    """

    def __init__(self, nvml: Any, handle: Any, interval_s: float = 0.02) -> None:
        self._nvml = nvml
        self._handle = handle
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak = 0

    def _sample(self) -> None:
        used = int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)
        self.peak = max(self.peak, used)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> None:
        self.peak = 0
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="nvml-memory", daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        return self.peak
