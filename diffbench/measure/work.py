"""How much of the denoiser actually ran: the work a step cache saves.

Counts the calls of every linear and convolution layer inside the denoiser, bucketed by
denoiser call. The fullest call is one full evaluation (a cache always computes its first
step in full); `work` is the total in those units. A generation of 8 steps whose cache skipped
most blocks on 5 of them does e.g. 3.4 evaluations' work rather than 8.

The hooks cost time, so they are installed only for a generation that is not measured (the
cell's warm-up, or an extra untimed one), never in a timed region.
"""

from __future__ import annotations

from typing import Any


class WorkCounter:
    def __init__(self, denoiser: Any) -> None:
        import torch

        self.calls: list[int] = []
        layers = [m for m in denoiser.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv3d))]
        self._handles = [denoiser.register_forward_pre_hook(self._on_denoiser_call)]
        self._handles += [layer.register_forward_pre_hook(self._on_layer_call) for layer in layers]

    def _on_denoiser_call(self, module: Any, args: Any) -> None:
        self.calls.append(0)

    def _on_layer_call(self, module: Any, args: Any) -> None:
        if self.calls:
            self.calls[-1] += 1

    def work(self) -> float | None:
        """Full-evaluation equivalents run (None when the denoiser never ran)."""
        fullest = max(self.calls, default=0)
        return sum(self.calls) / fullest if fullest else None

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
