"""The arithmetic of vram_limit (found wrong on an H200: other processes were charged to the card)."""

from __future__ import annotations

import pytest

from diffbench.execute.axes.vram_limit import vram_budget
from diffbench.execute.configure import NotApplicable

GiB = 2**30
TOTAL = 140 * GiB


def test_other_processes_are_not_charged_when_nvml_knows_our_share() -> None:
    # This process: 0.6 GiB context, nothing reserved yet; another process holds 9 GiB.
    own, others = int(0.6 * GiB), 9 * GiB
    info = vram_budget("8GiB", 8 * GiB, TOTAL - own - others, TOTAL, 0, own)
    assert info["vram_outside_allocator_bytes"] == own
    assert info["vram_other_processes_bytes"] == others
    assert info["vram_allocator_cap_bytes"] == 8 * GiB - own
    assert info["vram_outside_measured_by"] == "nvml_process"


def test_without_nvml_everything_outside_the_allocator_is_charged_and_said() -> None:
    used = 2 * GiB
    info = vram_budget("8GiB", 8 * GiB, TOTAL - used, TOTAL, 0, None)
    assert info["vram_allocator_cap_bytes"] == 6 * GiB
    assert info["vram_outside_measured_by"] == "device_free_memory"
    assert info["vram_other_processes_bytes"] is None


def test_a_cap_larger_than_the_free_memory_is_refused_with_the_reason() -> None:
    own, others = int(0.5 * GiB), 130 * GiB
    with pytest.raises(NotApplicable, match="cannot be emulated.*other processes hold 130.00 GiB"):
        vram_budget("24GiB", 24 * GiB, TOTAL - own - others, TOTAL, 0, own)


def test_a_limit_below_the_context_is_refused() -> None:
    with pytest.raises(NotApplicable, match="smaller than this process's CUDA context"):
        vram_budget("256MiB", 256 * 2**20, TOTAL - GiB, TOTAL, 0, GiB)


def test_a_limit_at_least_the_card_applies_no_cap() -> None:
    info = vram_budget("200GiB", 200 * GiB, TOTAL - GiB, TOTAL, 0, GiB)
    assert "no cap applied" in info["note"]


def test_group_offload_keeps_an_upcasting_vae_on_the_device() -> None:
    """Found on an H200: SDXL's fp16 VAE, cast to fp32 for decoding, broke diffusers' group offload.

    Only pipelines that upcast (SDXL) are affected; SD 1.5 decodes in its own dtype.
    """
    from pathlib import Path

    import torch

    from diffbench.execute.axes.offload import _vae_upcasts
    from diffbench.models.sources import load_pipeline

    sdxl = load_pipeline({"source": "builtin:tiny-sdxl"}, torch.float16, Path("."))
    sd = load_pipeline({"source": "builtin:tiny-sd"}, torch.float16, Path("."))
    assert _vae_upcasts(sdxl, sdxl.vae)
    assert not _vae_upcasts(sd, sd.vae)
    sdxl.vae.to(torch.float32)
    assert not _vae_upcasts(sdxl, sdxl.vae)
