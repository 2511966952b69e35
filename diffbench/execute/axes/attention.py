"""attention (at load): the diffusers attention backend of the denoiser."""

from __future__ import annotations

from typing import Any

from ..configure import NotApplicable
from . import Loading


def at_load(loading: Loading) -> None:
    from ...measure.probe import denoiser_of

    set_attention(denoiser_of(loading.pipe), loading.settings["attention"])


def set_attention(denoiser: Any, backend: str) -> None:
    if backend == "default":
        return
    if not hasattr(denoiser, "set_attention_backend"):
        raise NotApplicable("this diffusers version cannot choose an attention backend (needs >= 0.35)")
    try:
        denoiser.set_attention_backend(backend)
    except (ValueError, RuntimeError, ImportError) as exc:
        raise NotApplicable(f"attention backend '{backend}' is unavailable here: {exc}") from None
