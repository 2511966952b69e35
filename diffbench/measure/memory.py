"""Peak memory per generation: host RSS, torch's CUDA peaks, and NVML's device-wide use."""

from __future__ import annotations

import resource
import sys
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

    def current_bytes(self) -> int | None:
        """Resident set size now (the baseline a generation starts from), where /proc tells it."""
        try:
            for line in _PROC_STATUS.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def peak_bytes(self) -> int:
        if self.resettable:
            for line in _PROC_STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


class TorchCudaPeak:
    """torch's own view: peak bytes allocated by tensors and reserved by its caching allocator.

    A phase (the VAE decode) can have its own peak without losing the generation's: at the
    phase's start the peak so far is carried aside and the counters reset; the generation's peak
    is then the larger of the carried and the current."""

    def __init__(self, device: Any, cuda: Any = None) -> None:
        import torch

        self._cuda = cuda if cuda is not None else torch.cuda  # torch.cuda's memory statistics
        self._device = device
        self._carried = (0, 0)

    def reset(self) -> None:
        self._carried = (0, 0)
        self._cuda.reset_peak_memory_stats(self._device)

    def phase_begin(self) -> None:
        allocated, reserved = self._current()
        self._carried = (max(self._carried[0], allocated), max(self._carried[1], reserved))
        self._cuda.reset_peak_memory_stats(self._device)

    def phase_peak(self) -> int:
        """Peak bytes allocated since phase_begin (what was held when it began included)."""
        return int(self._cuda.max_memory_allocated(self._device))

    def peaks(self) -> tuple[int, int]:
        allocated, reserved = self._current()
        return max(allocated, self._carried[0]), max(reserved, self._carried[1])

    def _current(self) -> tuple[int, int]:
        return int(self._cuda.max_memory_allocated(self._device)), int(self._cuda.max_memory_reserved(self._device))
