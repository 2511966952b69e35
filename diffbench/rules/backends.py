"""Optional backends a setting needs, and whether this environment has them.

Found with importlib's spec lookup, never imported: `diffbench models` must stay fast and must
not pull torch in.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    module: str
    used_for: str
    install: str


BACKENDS = (
    Backend("peft", "the lora axis (diffusers loads LoRAs through peft)", "pip install 'diffbench[lora]'"),
    Backend("ray", "--executor ray: cells on the nodes of a Ray cluster", "pip install 'diffbench[ray]'"),
    Backend("pyarrow", "export --format parquet", "pip install 'diffbench[parquet]'"),
    Backend("torchao", "quantize: torchao:int8|fp8|int4", "pip install 'diffbench[quantization]'"),
    Backend("optimum.quanto", "quantize: quanto:int8|fp8|int4", "pip install 'diffbench[quantization]'"),
    Backend("bitsandbytes", "quantize: bnb:nf4|int8 (CUDA only)", "pip install bitsandbytes"),
    Backend("gguf", "model sources ending .gguf (with base:)", "pip install 'diffbench[quantization]'"),
)


def installed(module: str) -> bool:
    """Whether a module can be imported, without importing it (a parent package is imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def backend_lines() -> list[str]:
    width = max(len(b.module) for b in BACKENDS)
    return [f"  {b.module:<{width}} {'installed' if installed(b.module) else 'missing  '}  {b.used_for}"
            + ("" if installed(b.module) else f" ({b.install})") for b in BACKENDS]
