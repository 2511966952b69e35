"""Input images (image-to-image, inpainting) read safely: a regular file only (never a FIFO or a
device, which could block or stream forever), at most MAX_INPUT_BYTES, and at most
MAX_INPUT_SIDE a side read from the header before anything is decoded (no decompression bomb)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DiffbenchError

MAX_INPUT_SIDE = 8192  # the largest resolution a suite accepts
MAX_INPUT_BYTES = 512 * 2**20


class InputImageError(DiffbenchError, ValueError):
    """An input image that cannot be read safely, with why in one line."""


def read_input_image(path: str | Path, mode: str) -> Any:
    """The image at `path`, decoded and converted to `mode` ('RGB', 'L'), or InputImageError."""
    from PIL import Image, UnidentifiedImageError

    from ..contract.files import FileError, open_regular

    path = Path(path)
    try:
        with open_regular(path, MAX_INPUT_BYTES) as handle, Image.open(handle) as image:
            width, height = image.size
            if width > MAX_INPUT_SIDE or height > MAX_INPUT_SIDE:
                raise InputImageError(f"'{path}' is {width}x{height}: an input image is at most "
                                      f"{MAX_INPUT_SIDE}x{MAX_INPUT_SIDE}")
            return image.convert(mode)
    except FileError as exc:
        raise InputImageError(str(exc)) from None
    except Image.DecompressionBombError:
        raise InputImageError(f"'{path}' declares more pixels than an input image can have (a decompression "
                              "bomb?)") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InputImageError):
            raise
        raise InputImageError(f"'{path}' is not an image that can be read ({type(exc).__name__})") from None
