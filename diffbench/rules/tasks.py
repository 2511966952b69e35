"""What a generation does (text-to-image, image-to-image, inpainting, text-to-video,
image-to-video) and the rules that follow from it: which settings apply, how many denoising
steps `strength` leaves, which frame counts a video model accepts.

Pure data and arithmetic: no torch or diffusers import (`validate` and `plan` read it).
"""

from __future__ import annotations

from typing import Any, Literal

Task = Literal["text-to-image", "image-to-image", "inpainting", "text-to-video", "image-to-video"]
TASKS: tuple[str, ...] = ("text-to-image", "image-to-image", "inpainting", "text-to-video", "image-to-video")
VIDEO_TASKS = frozenset({"text-to-video", "image-to-video"})
IMAGE_INPUT_TASKS = frozenset({"image-to-image", "inpainting", "image-to-video"})
STRENGTH_TASKS = frozenset({"image-to-image", "inpainting"})
# diffusers' own defaults: img2img keeps some of the input; inpainting repaints the masked part fully.
DEFAULT_STRENGTH = {"image-to-image": 0.8, "inpainting": 1.0}

# How a pipeline turns `strength` into the steps it runs (diffusers' get_timesteps):
# "floor_kept"    SD 1.x / SDXL: kept = int(steps * strength)
# "floor_skipped" SD3 / FLUX:    skipped = int(steps - steps * strength), kept = steps - skipped
StrengthRounding = Literal["floor_kept", "floor_skipped"]


def effective_steps(steps: int, strength: float | None, rounding: StrengthRounding) -> int:
    """The denoising steps an image-to-image or inpainting generation runs (all of them without
    strength). The arithmetic is diffusers', float rounding included, so that 0.29 x 100 gives
    the 28 steps the pipeline runs, not 29."""
    if strength is None:
        return steps
    if rounding == "floor_kept":
        return min(int(steps * strength), steps)
    kept = min(steps * strength, steps)
    return steps - int(max(steps - kept, 0))


def frames_problem(frames: int, multiple: int) -> str | None:
    """Why a video model cannot make `frames` frames (its VAE packs `multiple` frames per latent
    frame after the first), or None."""
    if frames < 1 or (frames - 1) % multiple:
        low = (frames - 1) // multiple * multiple + 1
        return (f"this model makes {multiple}k+1 frames (e.g. {max(low, 1)} or {max(low, 1) + multiple}); "
                f"{frames} is not one")
    return None


def video_seconds(frames: Any, fps: Any) -> float | None:
    """How long a clip plays: frames / fps."""
    try:
        return float(frames) / float(fps) if frames and fps else None
    except (TypeError, ValueError):
        return None
