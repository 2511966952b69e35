"""The worker code of the setting axes, one module per axis, named by the axis's declaration
(`axes.Axis.worker`; vae_tiling and vae_slicing share `vae`).

A per-cell axis (one that changes on a loaded pipeline) has a module that defines

    apply(pipe, settings, applied, loaded) -> Applied

The worker calls it before each cell's first generation, for every per-cell axis in declaration
order (`worker_modules(at_load=False)`). `applied` is what the module left applied on this pipeline last time
(its `Applied.state`); it must leave nothing applied when it raises `configure.NotApplicable`,
which records the cell not_applicable. `Applied.context` goes into the cell's results lines,
`Applied.runtime` into their runtime description.

A load-time axis (`reloads`) has a module that defines

    at_load(loading: Loading) -> dict | None

The worker calls each in the order of their axes' `load_order` (`worker_modules(at_load=True)`):
below 0 before the pipeline exists (vram_limit caps the card), at 0 the model's module builds it,
then the task's pipeline, quantization, placement or offload, attention, compile, and an axis added
from outside (100 unless it says otherwise). Each works on `loading.pipe` (and may replace it) and
records on `loading.runtime`; a dict it returns goes into the load's (and its lines') runtime
description; `configure.NotApplicable` marks the load's cells not_applicable. Adding either kind
of axis is one declaration and its module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..configure import Runtime

PACKAGE = __name__


@dataclass(frozen=True)
class Loaded:
    """What a load leaves for the per-cell axes."""

    base_dir: str  # the suite's folder: relative paths (LoRA files, input images) start there
    scheduler_config: dict[str, Any]  # the model's own scheduler, before any sampler replaced it


@dataclass
class Loading:
    """A pipeline as the worker loads it, handed to each load-time axis's `at_load` in turn."""

    settings: dict[str, Any]  # the load's first cell's (its load-time settings are every cell's)
    runtime: Runtime
    model: dict[str, Any]  # the suite's model entry: source, base, family, ...
    base_dir: str  # the suite's folder: relative paths start there
    pipe: Any = None  # None until the model's module has built it
    file_format: str | None = None  # a .gguf denoiser's weight format ('Q8_0'): already quantized


@dataclass
class Applied:
    state: Any = None  # what stays applied on the pipeline, handed back on the next cell
    context: dict[str, Any] = field(default_factory=dict)  # fields of the cell's results lines
    runtime: dict[str, Any] = field(default_factory=dict)  # added to the lines' runtime description


def module(name: str) -> ModuleType:
    """An axis's worker module: one of this package's (`cache`), else a module importable by that
    name (an axis added from outside the package)."""
    import importlib.util

    inside = f"{PACKAGE}.{name}"
    return importlib.import_module(inside if importlib.util.find_spec(inside) is not None else name)


def worker_modules(at_load: bool, declared: Any = None) -> tuple[str, ...]:
    """The worker modules of the per-cell axes in declaration order, or of the load-time ones
    (`at_load`) in their load order, each once."""
    from ...rules import axes

    found = [a for a in (declared if declared is not None else axes.AXES) if a.worker and a.reloads == at_load]
    if at_load:
        found.sort(key=lambda a: a.load_order)  # stable: declaration order among equals
    return tuple(dict.fromkeys(str(a.worker) for a in found))
