"""Instrumentation of a loaded pipeline: per-step and per-phase marks for one generation at a time.

Step boundaries: a step starts at the first denoiser call of a loop iteration (a forward
pre-hook, so offload transfers triggered by that call are inside the step) and ends at the
pipeline's `callback_on_step_end` for that iteration (after the scheduler update). So every
iteration that ran yields exactly one value, step 0 included; text encoding before the loop
is never a step; and marks are cleared at the start of each generation so nothing carries
over from the previous call (the bug that optimum-benchmark's timer has).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from .clocks import Clock


@dataclass
class GenerationTiming:
    """What one instrumented generation measured, in seconds on its clock."""

    step_s: list[float]
    denoiser_calls: int
    phases_s: dict[str, float]
    total_s: float
    decode_peak_bytes: int | None = None  # torch's allocated peak while the VAE decoded (CUDA only)


@dataclass
class _Marks:
    start: Any = None
    end: Any = None
    step_open: Any = None
    steps: list[tuple[Any, Any]] = field(default_factory=list)
    text: list[tuple[Any, Any]] = field(default_factory=list)
    decode: list[tuple[Any, Any]] = field(default_factory=list)
    encode: list[tuple[Any, Any]] = field(default_factory=list)  # the input image into latents (img2img, ...)
    decode_peak: int | None = None
    denoiser_calls: int = 0


def denoiser_name(pipe: Any) -> str:
    """The component evaluated once (or more, with true CFG) per denoising step: the one its family
    declares (FamilySpec.denoiser); for a pipeline class of no registered family, the one it holds."""
    from ..rules.families import DENOISER_COMPONENTS, denoiser_component

    declared = denoiser_component(type(pipe).__name__)
    for name in (declared,) if declared else DENOISER_COMPONENTS:
        if getattr(pipe, name, None) is not None:
            return name
    raise ValueError(f"{type(pipe).__name__} has no {declared or ' or '.join(DENOISER_COMPONENTS)}")


def denoiser_of(pipe: Any) -> Any:
    """The denoiser module itself (see denoiser_name)."""
    return getattr(pipe, denoiser_name(pipe))


class PipelineProbe:
    """Installed once per loaded pipeline; `begin`/`end` bracket each generation."""

    def __init__(self, pipe: Any, clock: Clock) -> None:
        self.pipe = pipe
        self.clock = clock
        self.marks = _Marks()
        self._active = False
        # Set capture=True before a generation to keep the inputs of its first denoiser call
        # (for counting FLOPs afterwards, outside the timed region).
        self.capture = False
        self.captured: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        # A memory meter with phase_begin/phase_peak (TorchCudaPeak): the VAE decode's own peak,
        # the notorious spike of video pipelines, is then kept apart from the generation's.
        self.memory: Any = None
        # The latents the last step produced, kept by reference (no copy, no synchronisation):
        # checked once after the generation for NaN or infinity (latents_finite).
        self.last_latents: Any = None
        self._handles = [denoiser_of(pipe).register_forward_pre_hook(self._on_denoiser_call, with_kwargs=True)]
        self._restore: list[tuple[Any, str, Any]] = []
        self._wrap(pipe, "encode_prompt", "text")
        if getattr(pipe, "vae", None) is not None:
            self._wrap(pipe.vae, "decode", "decode")
            if hasattr(pipe.vae, "encode"):
                self._wrap(pipe.vae, "encode", "encode")

    def _wrap(self, owner: Any, method: str, phase: str) -> None:
        original = getattr(owner, method)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self._active:
                return original(*args, **kwargs)
            meter = self.memory if phase == "decode" else None
            if meter is not None:
                meter.phase_begin()
            begin = self.clock.mark()
            try:
                return original(*args, **kwargs)
            finally:
                getattr(self.marks, phase).append((begin, self.clock.mark()))
                if meter is not None:
                    self.marks.decode_peak = max(self.marks.decode_peak or 0, meter.phase_peak())

        # An instance attribute shadows the class method; `remove` deletes it again.
        self._restore.append((owner, method, owner.__dict__.get(method)))
        setattr(owner, method, timed)

    def _on_denoiser_call(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if not self._active:
            return
        if self.capture:
            self.captured, self.capture = (args, dict(kwargs)), False
        self.marks.denoiser_calls += 1
        if self.marks.step_open is None:
            self.marks.step_open = self.clock.mark()

    def on_step_end(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Passed to the pipeline as callback_on_step_end."""
        if self._active and self.marks.step_open is not None:
            self.marks.steps.append((self.marks.step_open, self.clock.mark()))
            self.marks.step_open = None
        if self._active:
            self.last_latents = callback_kwargs.get("latents")
        return callback_kwargs

    def latents_finite(self) -> bool | None:
        """Whether the last step's latents hold only finite values (None: no latents seen).
        An fp16 overflow in the denoiser (torchao's int8 weight-only SDXL did so on an H200)
        turns them into NaN, and the pipeline still returns a picture: a blank one."""
        latents, self.last_latents = self.last_latents, None
        if latents is None or not hasattr(latents, "isfinite"):
            return None
        return bool(latents.isfinite().all())

    def begin(self) -> None:
        self.marks = _Marks()
        self.last_latents = None
        self._active = True
        self.marks.start = self.clock.mark()

    def end(self) -> GenerationTiming:
        """Close the generation, synchronise once, and resolve every mark into seconds."""
        self.marks.end = self.clock.mark()
        self._active = False
        self.clock.finish()
        m, sec = self.marks, self.clock.seconds
        step_s = [sec(a, b) for a, b in m.steps]
        total = sec(m.start, m.end)
        text = sum(sec(a, b) for a, b in m.text)
        decode = sum(sec(a, b) for a, b in m.decode)
        encode = sum(sec(a, b) for a, b in m.encode)
        denoise = sec(m.steps[0][0], m.steps[-1][1]) if m.steps else 0.0
        phases = {"text_encode": text, "denoise": denoise, "decode": decode,
                  "other": max(0.0, total - text - encode - denoise - decode)}
        if m.encode:  # only tasks that start from an image have this phase
            phases["image_encode"] = encode
        recycle = getattr(self.clock, "recycle", None)
        if recycle:
            recycle()
        return GenerationTiming(step_s, m.denoiser_calls, phases, total, m.decode_peak)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        for owner, method, previous in self._restore:
            if previous is None:
                owner.__dict__.pop(method, None)
            else:
                setattr(owner, method, previous)
