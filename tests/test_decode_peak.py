"""The VAE decode's own VRAM peak, kept apart from the generation's without losing it.

CI has no CUDA, so torch.cuda's memory statistics are replaced by an allocator with the same
three functions (reset_peak_memory_stats, max_memory_allocated, max_memory_reserved); the
pipeline, the probe and the meter are the real ones."""

from __future__ import annotations

from typing import Any

import torch

from diffbench.execute.configure import call_arguments
from diffbench.execute.generation import Meters, measure_generation
from diffbench.measure.clocks import clock_for
from diffbench.measure.memory import HostPeak, TorchCudaPeak
from diffbench.measure.probe import PipelineProbe
from diffbench.models.builtin import builtin_path


class FakeCudaMemory:
    """torch.cuda's peak statistics over a counter that tests move by hand."""

    def __init__(self) -> None:
        self.allocated = self.reserved = self.peak_allocated = self.peak_reserved = 0

    def move(self, allocated: int) -> None:
        self.allocated = allocated
        self.reserved = max(self.reserved, allocated)
        self.peak_allocated = max(self.peak_allocated, allocated)
        self.peak_reserved = max(self.peak_reserved, self.reserved)

    def reset_peak_memory_stats(self, device: Any = None) -> None:
        self.peak_allocated, self.peak_reserved = self.allocated, self.reserved

    def max_memory_allocated(self, device: Any = None) -> int:
        return self.peak_allocated

    def max_memory_reserved(self, device: Any = None) -> int:
        return self.peak_reserved


def test_a_phase_peak_neither_hides_nor_loses_the_generations_peak() -> None:
    for before, during, after in ((10, 14, 3), (10, 6, 3), (2, 5, 9)):
        memory = FakeCudaMemory()
        meter = TorchCudaPeak("cuda:0", cuda=memory)
        meter.reset()
        memory.move(before)
        memory.move(1)
        meter.phase_begin()
        memory.move(during)
        phase = meter.phase_peak()
        memory.move(after)
        assert phase == during
        assert meter.peaks()[0] == max(before, during, after)
        meter.reset()  # the next generation starts from what is held now
        assert meter.peaks()[0] == after


def test_the_probe_measures_the_decode_of_a_real_pipeline_apart() -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(builtin_path("tiny-sd"))
    pipe.set_progress_bar_config(disable=True)
    memory = FakeCudaMemory()
    # what the allocator would see: 10 units while the UNet runs, 14 while the VAE decodes, 2 after each
    pipe.unet.register_forward_pre_hook(lambda module, args: memory.move(10))
    pipe.unet.register_forward_hook(lambda module, args, output: memory.move(2))
    pipe.vae.decoder.register_forward_pre_hook(lambda module, args: memory.move(14))
    pipe.vae.decoder.register_forward_hook(lambda module, args, output: memory.move(2))
    probe = PipelineProbe(pipe, clock_for(torch.device("cpu")))
    meter = TorchCudaPeak("cuda:0", cuda=memory)
    probe.memory = meter
    settings = {"prompt": "a boat", "steps": 3, "resolution": "64x64", "batch_size": 1, "guidance_scale": 7.5,
                "seed": 0, "negative_prompt": None}
    measured, _ = measure_generation(pipe, probe, Meters(HostPeak(), cuda=meter), call_arguments(pipe, settings))
    assert measured.peak_vram_decode_bytes == 14
    assert measured.peak_vram_allocated_bytes == 14 and measured.evaluations == 3

    pipe.vae.decoder._forward_pre_hooks.clear()  # now the decode needs less than the denoiser
    pipe.vae.decoder.register_forward_pre_hook(lambda module, args: memory.move(6))
    measured, _ = measure_generation(pipe, probe, Meters(HostPeak(), cuda=meter), call_arguments(pipe, settings))
    assert measured.peak_vram_decode_bytes == 6
    assert measured.peak_vram_allocated_bytes == 10  # the denoiser's peak, carried across the decode
