"""The least memory a generation needs, known before anything is loaded.

A cell whose floor exceeds what its device holds is not tried: `plan` says so and `run` records it
not_applicable with the figures, instead of loading the model and failing on an allocation of
tens of GiB (8192x8192 at batch 64 asked one for 17 GiB on a 24 GiB machine).

The floor counts only what no pipeline can avoid at that size: the VAE decoder's last block holds
its input and output at full resolution (`decoder_channels` wide, 128 for the SD/SDXL/SD3/FLUX/LTX
VAEs, 96 for Wan's), and the decoded batch itself. Weights, the denoiser's activations and the
allocator's slack all come on top, so a cell under the floor may still run out; one above it cannot
run. VAE tiling bounds the decoder by its tile (not counted then) where the picture is larger than the
VAE's published tile (at or below it diffusers decodes whole); slicing decodes one image at a time.
"""

from __future__ import annotations

import os
from typing import Any

GIB = 2**30


def element_bytes(dtype: str | None, device_type: str) -> int:
    """Bytes per value: fp32 4; fp16/bf16 2; 'auto' is fp32 on the CPU, a half type on accelerators."""
    if dtype == "fp32" or (dtype in (None, "auto") and device_type == "cpu"):
        return 4
    return 2


def decoder_channels(settings: dict[str, Any]) -> int:
    """Channels of the VAE decoder's last block: the built-in model's own, else its family's."""
    from .families import FAMILIES
    from .presets import BUILTINS

    source = str(settings.get("source") or "")
    if source.startswith("builtin:") and source[len("builtin:"):] in BUILTINS:
        return BUILTINS[source[len("builtin:"):]].decoder_channels
    spec = FAMILIES.get(str(settings.get("family") or ""))
    return spec.decoder_channels if spec is not None else 128


def floor_bytes(settings: dict[str, Any], device_type: str) -> tuple[int, str] | None:
    """(bytes, how they were counted) that one generation of these settings needs at least, or
    None where the resolution is not known."""
    from .families import FAMILIES

    resolution = settings.get("resolution")
    if not resolution:
        spec = FAMILIES.get(str(settings.get("family") or ""))
        resolution = spec.native_resolution if spec is not None else None
    if not resolution:
        return None
    width, height = (int(side) for side in str(resolution).lower().split("x"))
    batch = int(settings.get("batch_size") or 1)
    frames = int(settings.get("frames") or 1)
    size = element_bytes(settings.get("dtype"), device_type)
    pictures = batch * frames * 3 * width * height * size
    counted = [(pictures, f"the decoded {batch} x {frames} frame(s) of {width}x{height}" if frames > 1
                else f"the decoded batch of {batch} at {width}x{height}")]
    if not tiling_applies(settings, width, height):
        decoded_together = 1 if settings.get("vae_slicing") else batch
        channels = decoder_channels(settings)
        counted.append((2 * decoded_together * channels * width * height * size,
                        f"the VAE decoder's last block at {width}x{height}: input and output, "
                        f"{decoded_together} x {channels} channels x {size} bytes"))
    return max(counted)


def tiling_applies(settings: dict[str, Any], width: int, height: int) -> bool:
    """Whether VAE tiling bounds this decode: asked for, and the picture larger than the family's
    published VAE tile (diffusers decodes a picture at or below it whole, tiling on or not)."""
    from .families import FAMILIES

    if not settings.get("vae_tiling"):
        return False
    spec = FAMILIES.get(str(settings.get("family") or ""))
    tile = spec.vae_tile if spec is not None else 0
    return not tile or width > tile or height > tile


def host_memory_bytes() -> int | None:
    """This machine's physical memory (what a CPU or Apple GPU run can use at most)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_problem(settings: dict[str, Any], device_type: str, capacity: int | None, what: str) -> str | None:
    """Why a cell cannot fit the `capacity` bytes of its device (`what` names them), or None."""
    if capacity is None or capacity <= 0:
        return None
    floor = floor_bytes(settings, device_type)
    if floor is None or floor[0] <= capacity:
        return None
    needed, counted = floor
    return (f"needs at least {needed / GIB:.1f} GiB before any weights ({counted}), more than {what} "
            f"({capacity / GIB:.1f} GiB): not tried")


# Self-attention tokens of one frame, per family: the latent (1/8) for SD 1.5's first attention
# level; 1/16 for SDXL (no attention at full latent size), SD 3 and FLUX (2x2 patches) and Wan;
# 1/32 for LTX-Video. Video families attend over every latent frame at once.
ATTENTION_STRIDE = {"sd": 8, "sdxl": 16, "sd3": 16, "flux": 16, "wan": 16, "ltx": 32}
# Beyond this many tokens a CPU spends minutes to hours on one step's attention (its work grows
# with the square: 262,144 tokens, tiny-sd at 4096x4096, ran one step for over ten minutes).
CPU_ATTENTION_TOKENS = 65_536


def attention_tokens(settings: dict[str, Any]) -> int | None:
    """The longest self-attention sequence one denoiser call runs for these settings, or None."""
    from .families import FAMILIES

    family = str(settings.get("family") or "")
    spec = FAMILIES.get(family)
    stride = ATTENTION_STRIDE.get(family)
    resolution = settings.get("resolution") or (spec.native_resolution if spec is not None else None)
    if stride is None or not resolution:
        return None
    width, height = (int(side) for side in str(resolution).lower().split("x"))
    tokens = max(1, width // stride) * max(1, height // stride)
    if spec is not None and spec.video:
        frames = int(settings.get("frames") or spec.default_frames or 1)
        tokens *= (frames - 1) // spec.frame_multiple + 1
    return tokens


def cpu_work_problem(settings: dict[str, Any]) -> str | None:
    """Why a CPU cell is not tried: its attention is quadratic in a sequence too long for a CPU."""
    tokens = attention_tokens(settings)
    if tokens is None or tokens <= CPU_ATTENTION_TOKENS:
        return None
    return (f"one denoiser call attends over {tokens:,} tokens at {settings.get('resolution')} (its work grows with "
            f"the square; a CPU takes minutes to hours per step beyond {CPU_ATTENTION_TOKENS:,}): not tried on a CPU; "
            "lower the resolution or run it on a GPU")

