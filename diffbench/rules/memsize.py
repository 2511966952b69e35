"""Memory sizes as people write them ('12GiB', '8 GB', '24000MiB') and VRAM caps named by GPU."""

from __future__ import annotations

import re

# VRAM is sold in binary sizes: a "12 GB" card has 12 GiB. So GB and GiB both mean 2**30 here.
_UNITS = {"b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
          "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}


def parse_size(text: str) -> int | None:
    """'12GiB' -> 12884901888; None when the text is not a size."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def vram_limit_bytes(value: str) -> int:
    """A vram_limit setting ('12GiB' or a GPU name such as 'RTX 3060') in bytes, or ValueError."""
    size = parse_size(value)
    if size is not None:
        if size < 256 * 2**20:
            raise ValueError("a VRAM limit below 256 MiB cannot hold a CUDA context")
        return size
    from ..hardware.gpus import GpuNameError, resolve_gpu

    try:
        spec = resolve_gpu(value)
    except GpuNameError as exc:
        if exc.ambiguous:  # 'A100': 40 or 80 GB; never pick one silently
            raise ValueError(str(exc).removeprefix("GPU ")) from None
        raise ValueError("expected a size such as 12GiB or a known GPU name such as 'RTX 3060' "
                         "(see `diffbench gpus`)") from None
    return spec.vram_bytes
