"""task (at load): the pipeline that runs the cell's task on the loaded weights."""

from __future__ import annotations

from typing import Any

from ..configure import NotApplicable
from . import Loading


def at_load(loading: Loading) -> None:
    loading.pipe = task_pipeline(loading.pipe, loading.settings)  # image-to-image, inpainting, ...: same weights


def task_pipeline(pipe: Any, settings: dict[str, Any]) -> Any:
    """The pipeline that runs the cell's task on the loaded weights (`from_pipe` shares every
    component: nothing is loaded or copied)."""
    import diffusers

    from ...rules.families import family

    wanted = family(settings["family"]).pipeline_for(settings.get("task") or "text-to-image")
    if type(pipe).__name__ == wanted:
        return pipe
    cls = getattr(diffusers, wanted, None)
    if cls is None:
        raise NotApplicable(f"task '{settings['task']}' needs {wanted}, which this diffusers version lacks")
    return cls.from_pipe(pipe)
