"""compile (at load): torch.compile the denoiser; the first warm-up absorbs the compilation."""

from __future__ import annotations

from typing import Any

from . import Loading


def at_load(loading: Loading) -> None:
    if loading.settings["compile"]:
        compile_denoiser(loading.pipe)


def compile_denoiser(pipe: Any) -> None:
    import torch

    from ...measure.probe import denoiser_name

    name = denoiser_name(pipe)
    setattr(pipe, name, torch.compile(getattr(pipe, name)))
