"""sampler (per cell): a fresh scheduler for the cell's sampler, from the model's own scheduler config."""

from __future__ import annotations

import importlib
from typing import Any

from ...rules import samplers
from ..configure import NotApplicable
from . import Applied, Loaded


def scheduler_for(pipe: Any, base_config: dict[str, Any], sampler_name: str, family: str) -> tuple[Any, str]:
    """A fresh scheduler for the sampler, built from the model's own scheduler config."""
    sampler = samplers.resolve(sampler_name, family)
    if sampler.key == "default":
        cls = type(pipe.scheduler)
        return cls.from_config(base_config), cls.__name__
    module = importlib.import_module("diffusers")
    named: Any = getattr(module, sampler.scheduler_class, None)
    if named is None:
        raise NotApplicable(f"this diffusers version has no {sampler.scheduler_class}")
    return named.from_config(base_config, **sampler.kwargs), sampler.scheduler_class


def apply(pipe: Any, settings: dict[str, Any], applied: Any, loaded: Loaded) -> Applied:
    pipe.scheduler, name = scheduler_for(pipe, loaded.scheduler_config, settings["sampler"], settings["family"])
    return Applied(runtime={"scheduler": name})
