"""Clocks for the timed region: CUDA events on a GPU (no host sync in the loop), wall clock elsewhere."""

from __future__ import annotations

import time
from typing import Any, Protocol


class Clock(Protocol):
    """Marks points in time during a generation and resolves them afterwards."""

    def mark(self) -> Any: ...

    def finish(self) -> None:
        """Called once after the generation; the only synchronisation point."""

    def seconds(self, start: Any, end: Any) -> float: ...


class WallClock:
    """Host clock: right for the CPU, where work is synchronous (and for MPS, synchronised at finish)."""

    def __init__(self, sync: Any = None) -> None:
        self._sync = sync

    def mark(self) -> float:
        return time.perf_counter()

    def finish(self) -> None:
        if self._sync is not None:
            self._sync()

    def seconds(self, start: float, end: float) -> float:
        return end - start


class CudaEventClock:
    """CUDA events recorded on the current stream: GPU-side time between marks.

    Recording an event does not block the host, so the denoising loop keeps its natural
    pipelining; one torch.cuda.synchronize() after the generation resolves all of them.
    """

    def __init__(self, device: Any) -> None:
        import torch

        self._torch = torch
        self._device = device
        self._spare: list[Any] = []
        self._used: list[Any] = []

    def mark(self) -> Any:
        event = self._spare.pop() if self._spare else self._torch.cuda.Event(enable_timing=True)
        event.record()
        self._used.append(event)
        return event

    def finish(self) -> None:
        self._torch.cuda.synchronize(self._device)

    def seconds(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end)) / 1000.0

    def recycle(self) -> None:
        """Reuse this generation's events for the next one (after finish and reading)."""
        self._spare.extend(self._used)
        self._used.clear()


def clock_for(device: Any) -> Clock:
    """The right clock for a torch device."""
    import torch

    if device.type == "cuda":
        return CudaEventClock(device)
    if device.type == "mps":
        return WallClock(sync=torch.mps.synchronize)
    return WallClock()
