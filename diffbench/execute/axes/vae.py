"""vae_tiling and vae_slicing (per cell): the VAE decodes tiled or one image at a time."""

from __future__ import annotations

from typing import Any

from . import Applied, Loaded


def set_vae_options(pipe: Any, settings: dict[str, Any]) -> None:
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return
    (vae.enable_tiling if settings["vae_tiling"] else vae.disable_tiling)()
    (vae.enable_slicing if settings["vae_slicing"] else vae.disable_slicing)()


def apply(pipe: Any, settings: dict[str, Any], applied: Any, loaded: Loaded) -> Applied:
    set_vae_options(pipe, settings)
    return Applied()
