"""Single-file checkpoints: which family a .safetensors file holds, read from its header alone.

A .safetensors file starts with 8 bytes of header length and a JSON header naming every
tensor; reading that needs neither torch nor the weights, so `validate` can do it. Each family's
key markers are in the family registry (families.FamilySpec.checkpoint_markers).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from ..contract.files import open_regular
from ..errors import one_line
from ..rules.families import FAMILIES

MAX_HEADER_BYTES = 100 * 2**20  # real headers are a few MiB at most


class CheckpointError(ValueError):
    pass


# Bytes per element of each dtype the safetensors format names (its specification).
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}
MAX_DIMENSIONS = 8


def safetensors_header(path: Path) -> dict[str, dict[str, object]]:
    """The tensors a .safetensors file names, each checked against the file as the format requires:
    a known dtype, a shape of non-negative integers, data offsets inside the file whose span is the
    shape's size. A file cut short, a pickle under the name, a header that lies about its length or
    nests deep: each is a one-line CheckpointError, decided from the header and the file size alone."""
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: too short to be a .safetensors file")
            (length,) = struct.unpack("<Q", head)
            if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
                raise CheckpointError(f"{path}: not a .safetensors file (header length {length} in a file of "
                                      f"{size} bytes)")
            header = json.loads(handle.read(length))
    except RecursionError:  # a header nested thousands deep: no real checkpoint is
        raise CheckpointError(f"{path}: not a .safetensors file (its header nests too deep)") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: cannot read its .safetensors header ({one_line(str(exc))[:200]})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a .safetensors file (the header is not a table)")
    data_bytes = size - 8 - length
    tensors = {key: entry for key, entry in header.items() if key != "__metadata__"}
    for key, entry in tensors.items():
        problem = _tensor_entry_problem(entry, data_bytes)
        if problem:
            raise CheckpointError(f"{path}: tensor '{one_line(key)[:80]}' {problem}")
    return tensors


def _tensor_entry_problem(entry: object, data_bytes: int) -> str | None:
    if not isinstance(entry, dict):
        return "is not described by a table"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        return f"has dtype {one_line(repr(dtype))[:40]}; the format knows {', '.join(DTYPE_BYTES)}"
    if not isinstance(shape, list) or len(shape) > MAX_DIMENSIONS or \
            not all(type(d) is int and d >= 0 for d in shape):
        return "has a shape that is not a short list of non-negative integers"
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets):
        return "has data_offsets that are not two integers"
    begin, end = offsets
    if not 0 <= begin <= end <= data_bytes:
        return (f"lies at bytes {begin}-{end} of a data section of {data_bytes}: the file is cut short "
                "or its header is wrong")
    elements = 1
    for dimension in shape:
        elements *= dimension
    if elements * DTYPE_BYTES[str(dtype)] != end - begin:
        return f"spans {end - begin} bytes; its shape {shape} in {dtype} needs {elements * DTYPE_BYTES[str(dtype)]}"
    return None


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names of a .safetensors file whose header agrees with its size (safetensors_header)."""
    return list(safetensors_header(path))


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
