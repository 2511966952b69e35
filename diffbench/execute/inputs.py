"""Input images for image-to-image, inpainting and image-to-video: a file the suite names, or
one generated from the cell's seed (the same picture on every machine, so runs compare).

Built before the timed region; the pipeline's own preprocessing (resize, VAE encode) is timed.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from ..intake.inputimages import read_input_image

GENERATED_GRID = 8  # the generated picture: an 8x8 grid of random colours, smoothly interpolated


def _size(settings: dict[str, Any]) -> tuple[int, int]:
    width, height = (int(v) for v in settings["resolution"].split("x"))
    return width, height


def init_image(settings: dict[str, Any], base_dir: str | Path) -> Any:
    """The cell's input image, at its resolution (RGB). Made once per cell, not per generation
    (pipelines copy it into tensors and never change it)."""
    given = str(Path(base_dir) / settings["init_image"]) if settings.get("init_image") else None
    return _init_image(given, _size(settings), settings["seed"])


def mask_image(settings: dict[str, Any], base_dir: str | Path) -> Any:
    """The inpainting mask (white: repaint): the suite's file, or the middle half of each side."""
    given = str(Path(base_dir) / settings["mask_image"]) if settings.get("mask_image") else None
    return _mask_image(given, _size(settings))


@functools.lru_cache(maxsize=8)
def _init_image(path: str | None, size: tuple[int, int], seed: int) -> Any:
    from PIL import Image

    if path is not None:
        return read_input_image(path, "RGB").resize(size, Image.Resampling.BICUBIC)
    # Smooth colour fields rather than white noise: like a photograph, most of the picture is
    # low frequency, which is what image-to-image starts from in practice.
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 256, size=(GENERATED_GRID, GENERATED_GRID, 3), dtype=np.uint8)
    return Image.fromarray(grid, "RGB").resize(size, Image.Resampling.BICUBIC)


@functools.lru_cache(maxsize=8)
def _mask_image(path: str | None, size: tuple[int, int]) -> Any:
    from PIL import Image

    if path is not None:
        return read_input_image(path, "L").resize(size, Image.Resampling.NEAREST)
    width, height = size
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 4: height - height // 4, width // 4: width - width // 4] = 255
    return Image.fromarray(mask, "L")
