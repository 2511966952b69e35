"""The worker code of the setting axes, one module per axis, named by the axis's declaration
(`axes.Axis.worker`; vae_tiling and vae_slicing share `vae`).

A per-cell axis (one that changes on a loaded pipeline) has a module that defines

    apply(pipe, settings, applied, loaded) -> Applied

The worker calls it before each cell's first generation, for every per-cell axis in declaration
order (`worker_modules(at_load=False)`). `applied` is what the module left applied on this pipeline last time
(its `Applied.state`); it must leave nothing applied when it raises `configure.NotApplicable`,
which records the cell not_applicable. `Applied.context` goes into the cell's results lines,
`Applied.runtime` into their runtime description.

A load-time axis (`reloads`) acts where the worker builds the pipeline (`execute/worker.Worker._load`).
The shipped ones are called there in the order they need: the task's pipeline, quantization,
placement or offload, attention, compile. A load-time axis's module may instead define

    prepare(pipe, settings, runtime) -> dict

which the worker calls, in declaration order, once the pipeline is placed and compiled; what it
returns goes into the load's (and its lines') runtime description. Adding a load-time axis is then
one declaration and such a module, as it is for a per-cell axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

PACKAGE = __name__


@dataclass(frozen=True)
class Loaded:
    """What a load leaves for the per-cell axes."""

    base_dir: str  # the suite's folder: relative paths (LoRA files, input images) start there
    scheduler_config: dict[str, Any]  # the model's own scheduler, before any sampler replaced it


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
    """The worker modules of the load-time (`at_load`) or per-cell axes, in declaration order, each once."""
    from ...rules import axes

    found = [a.worker for a in (declared if declared is not None else axes.AXES) if a.worker and a.reloads == at_load]
    return tuple(dict.fromkeys(found))
