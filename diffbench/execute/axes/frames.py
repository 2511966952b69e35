"""frames (per cell): a clip no longer than the denoiser's positions reach."""

from __future__ import annotations

from typing import Any

from ...rules import tasks
from ..configure import NotApplicable
from . import Applied, Loaded


def check_frames(pipe: Any, settings: dict[str, Any]) -> None:
    """NotApplicable where a clip is longer than the denoiser's positions reach (Wan's rotary
    embedding covers `rope_max_seq_len` latent frames): said as the limit, not as a reshape error
    from deep inside the transformer."""
    config = getattr(getattr(pipe, "transformer", None), "config", None)
    positions = getattr(config, "rope_max_seq_len", None)
    temporal = getattr(pipe, "vae_scale_factor_temporal", None)
    if not isinstance(positions, int) or not isinstance(temporal, int) or temporal < 1:
        return
    latent_frames = (int(settings["frames"]) - 1) // temporal + 1
    if latent_frames > positions:
        most = (positions - 1) * temporal + 1
        raise NotApplicable(f"frames {settings['frames']}: this model's positional embedding covers at most {most} "
                            f"frames ({positions} latent frames of {temporal})")


def apply(pipe: Any, settings: dict[str, Any], applied: Any, loaded: Loaded) -> Applied:
    if settings.get("task") in tasks.VIDEO_TASKS:
        check_frames(pipe, settings)
    return Applied()
