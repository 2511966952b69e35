"""Weight quantization settings: `quantize: torchao:int8`, `quanto:int4@all`, `none`.

A setting names a library, a weight format and what it applies to: the denoiser (the default,
where the weights and the time are) or `@all` (the text encoders too, as people do to fit FLUX's
T5 on a 12 GB card). Weights only: activations stay in the run's dtype.

Pure string handling: no torch import (`validate` and `plan` read it). Applying a setting to a
loaded pipeline is `execute.axes.quantize.apply_quantization`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DiffbenchError

# library -> (the module to import, the pip package) and the weight formats diffbench applies
LIBRARIES: dict[str, tuple[str, str]] = {"torchao": ("torchao", "torchao"),
                                         "quanto": ("optimum.quanto", "optimum-quanto"),
                                         "bnb": ("bitsandbytes", "bitsandbytes")}
FORMATS: dict[str, tuple[str, ...]] = {"torchao": ("int8", "fp8", "int4"), "quanto": ("int8", "fp8", "int4"),
                                       "bnb": ("nf4", "int8")}
CUDA_ONLY = {"bnb"}  # bitsandbytes quantizes as the weights move onto a CUDA GPU
SCOPES = ("denoiser", "all")


class QuantizeError(DiffbenchError, ValueError):
    """A quantize value that names no known library, format or scope."""


@dataclass(frozen=True)
class Quantization:
    library: str
    format: str
    scope: str = "denoiser"

    @property
    def text(self) -> str:
        return f"{self.library}:{self.format}" + ("@all" if self.scope == "all" else "")


def _allowed() -> str:
    options = [f"{library}:{fmt}" for library, formats in FORMATS.items() for fmt in formats]
    return f"none, or {', '.join(options)} (add @all to quantize the text encoders too)"


def parse_quantization(text: str) -> Quantization | None:
    """'torchao:int8' -> Quantization; 'none' -> None; anything else a one-line QuantizeError."""
    value = text.strip().lower()
    if value in {"none", ""}:
        return None
    body, _, scope = value.partition("@")
    library, _, fmt = body.partition(":")
    scope = scope or "denoiser"
    if library not in FORMATS or fmt not in FORMATS[library] or scope not in SCOPES:
        raise QuantizeError(f"'{text}' is not a quantization; allowed: {_allowed()}")
    return Quantization(library, fmt, scope)


def canonical_quantization(text: str) -> str:
    parsed = parse_quantization(text)
    return parsed.text if parsed else "none"
