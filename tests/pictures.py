"""Pictures compared on their pixels, with a stated tolerance, not byte for byte.

The same weights through two load paths (a folder, a single file, a GGUF file, a cached Hub
copy) compute the same picture up to float summation order, which differs between CPUs and
BLAS builds in the last bit: on an AMD EPYC two such PNGs differed at byte 6050. A last-bit
difference moves a rounded 8-bit channel by at most one step either way, so "the same picture"
allows a channel to differ by SAME_PICTURE_MAX and nothing more; "another picture" (other
weights, a LoRA at scale 1, a cache that skips) differs somewhere by more than rounding can.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

SAME_PICTURE_MAX = 2  # 8-bit steps per channel


def pixels(picture: Path | bytes) -> np.ndarray:
    data = picture if isinstance(picture, bytes) else picture.read_bytes()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def same_picture(a: Path | bytes, b: Path | bytes) -> bool:
    first, second = pixels(a), pixels(b)
    return first.shape == second.shape and int(np.abs(first - second).max()) <= SAME_PICTURE_MAX


def other_picture(a: Path | bytes, b: Path | bytes) -> bool:
    first, second = pixels(a), pixels(b)
    return first.shape != second.shape or int(np.abs(first - second).max()) > SAME_PICTURE_MAX
