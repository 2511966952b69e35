"""What a .gguf file holds, read from its header alone: tensor names and their weight formats.

GGUF (the llama.cpp file format that ComfyUI's GGUF loaders and city96's FLUX/SD3.5 builds use)
starts with a header: magic, version, counts, key-value metadata, then one entry per tensor
(name, shape, type, offset). Reading it needs neither torch nor the gguf package, so `validate`
can check a file and the results can say which format it was (Q8_0, Q4_K, ...). Loading the
weights is diffusers' job (GGUFQuantizationConfig), with the gguf package installed.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..contract.files import FileError, open_regular

MAGIC = b"GGUF"
MAX_COUNT = 1_000_000  # tensors or metadata entries: real files hold a few thousand at most
MAX_STRING = 1 << 20  # bytes in one name or metadata string
MAX_NESTING = 8  # arrays within arrays in the metadata (real files: arrays of numbers or strings)
# GGML tensor types (ggml.h, enum ggml_type): the float types and the block formats people use
TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
              11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS",
              18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8",
              25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16"}
FLOAT_TYPES = {"F32", "F16", "BF16", "F64"}
# metadata value types: fixed sizes, 8 = string, 9 = array
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


class GgufError(ValueError):
    """A file that is not a readable GGUF file (one line, naming it)."""


@dataclass(frozen=True)
class GgufTensor:
    name: str
    shape: tuple[int, ...]
    type_name: str


def _read(handle: BinaryIO, size: int, path: Path) -> bytes:
    data = handle.read(size)
    if len(data) < size:
        raise GgufError(f"{path}: the GGUF header ends early (a truncated or partial download?)")
    return data


def _count(handle: BinaryIO, path: Path, what: str) -> int:
    (value,) = struct.unpack("<Q", _read(handle, 8, path))
    if value > MAX_COUNT:
        raise GgufError(f"{path}: not a GGUF file this reader accepts ({value} {what})")
    return int(value)


def _string(handle: BinaryIO, path: Path) -> str:
    (length,) = struct.unpack("<Q", _read(handle, 8, path))
    if length > MAX_STRING:
        raise GgufError(f"{path}: a GGUF string of {length} bytes; not a GGUF file this reader accepts")
    return _read(handle, length, path).decode("utf-8", errors="replace")


def _skip_value(handle: BinaryIO, kind: int, path: Path, depth: int = 0) -> None:
    if depth > MAX_NESTING:  # a crafted file must not run the reader out of stack
        raise GgufError(f"{path}: GGUF metadata nested {depth} arrays deep; not a GGUF file this reader accepts")
    if kind in _SCALAR_SIZES:
        _read(handle, _SCALAR_SIZES[kind], path)
    elif kind == 8:
        _string(handle, path)
    elif kind == 9:
        (item_kind,) = struct.unpack("<I", _read(handle, 4, path))
        count = _count(handle, path, "array items")
        if item_kind in _SCALAR_SIZES:
            _read(handle, _SCALAR_SIZES[item_kind] * count, path)
        else:
            for _ in range(count):
                _skip_value(handle, item_kind, path, depth + 1)
    else:
        raise GgufError(f"{path}: unknown GGUF metadata type {kind}; not a GGUF file this reader accepts")


def gguf_tensors(path: Path) -> list[GgufTensor]:
    """Every tensor a .gguf file declares (its header only), or a one-line GgufError."""
    try:
        with open_regular(path) as handle:
            if _read(handle, 4, path) != MAGIC:
                raise GgufError(f"{path}: not a GGUF file (it does not start with 'GGUF')")
            (version,) = struct.unpack("<I", _read(handle, 4, path))
            if version not in (2, 3):
                raise GgufError(f"{path}: GGUF version {version}; versions 2 and 3 are read")
            tensors, entries = _count(handle, path, "tensors"), _count(handle, path, "metadata entries")
            for _ in range(entries):
                _string(handle, path)
                (kind,) = struct.unpack("<I", _read(handle, 4, path))
                _skip_value(handle, kind, path)
            found = []
            for _ in range(tensors):
                name = _string(handle, path)
                (dims,) = struct.unpack("<I", _read(handle, 4, path))
                if dims > 8:
                    raise GgufError(f"{path}: tensor '{name}' has {dims} dimensions; not a GGUF file this reader accepts")
                shape = struct.unpack(f"<{dims}Q", _read(handle, 8 * dims, path))
                (kind,) = struct.unpack("<I", _read(handle, 4, path))
                _read(handle, 8, path)  # the data offset
                found.append(GgufTensor(name, tuple(reversed(shape)), TYPE_NAMES.get(kind, f"type {kind}")))
    except FileError as exc:  # a FIFO, a device, a file that cannot be opened
        raise GgufError(str(exc)) from None
    except OSError as exc:
        raise GgufError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not found:
        raise GgufError(f"{path}: a GGUF file with no tensors")
    return found


def weight_format(tensors: list[GgufTensor]) -> str:
    """The file's format as people name it: its most common block format ('Q8_0'), with the others
    it mixes in ('Q4_K+Q6_K'); a file of float tensors only is named by its float type."""
    quantized = Counter(t.type_name for t in tensors if t.type_name not in FLOAT_TYPES)
    counts = quantized or Counter(t.type_name for t in tensors)
    return "+".join(name for name, _ in counts.most_common())
