"""Single-file checkpoints: which family a .safetensors file holds, read from its header alone.

A .safetensors file starts with 8 bytes of header length and a JSON header naming every
tensor; reading that needs neither torch nor the weights, so `validate` can do it. Each family's
key markers are in the family registry (families.FamilySpec.checkpoint_markers).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ..families import FAMILIES
from ..files import open_regular

MAX_HEADER_BYTES = 100 * 2**20  # real headers are a few MiB at most


class CheckpointError(ValueError):
    pass


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names of a .safetensors file (its header only)."""
    try:
        with open_regular(path) as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: too short to be a .safetensors file")
            (length,) = struct.unpack("<Q", head)
            if not 2 <= length <= MAX_HEADER_BYTES:
                raise CheckpointError(f"{path}: not a .safetensors file (header length {length})")
            header = json.loads(handle.read(length))
    except RecursionError:  # a header nested thousands deep: no real checkpoint is
        raise CheckpointError(f"{path}: not a .safetensors file (its header nests too deep)") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: cannot read its .safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a .safetensors file (the header is not a table)")
    return [k for k in header if k != "__metadata__"]


def single_file_families() -> list[str]:
    """Families whose whole pipeline loads from one file (those with known checkpoint layouts)."""
    return [spec.name for spec in FAMILIES.values() if spec.checkpoint_markers]


def family_from_keys(keys: list[str]) -> str | None:
    """The one family whose markers the keys carry; None when none (or several) do. SDXL's
    checkpoints also carry SD-like UNet keys, so the most specific marker is checked first."""
    found = [spec.name for spec in FAMILIES.values()
             if spec.checkpoint_markers and any(k.startswith(spec.checkpoint_markers) for k in keys)]
    return found[0] if len(found) == 1 else None


def checkpoint_family(path: Path) -> str:
    """The family of a single-file checkpoint, or a one-line CheckpointError saying to name it."""
    family = family_from_keys(safetensors_keys(path))
    if family is None:
        raise CheckpointError(f"cannot tell the model family of '{path.name}' from its tensor names; "
                              f"set family: ({', '.join(single_file_families())}) for this model")
    return family
