"""Model families: everything diffbench decides per family, in one registry.

A family is an architecture line that shares a pipeline class, a denoiser, a noise schedule
kind and usual settings (SD 1.x, SDXL, SD3, FLUX). Every module asks this registry; a family
that is not registered is an error, never a silent default (issue 11: "an unknown family is
treated as FLUX or as sd"). Adding a family is one `register(FamilySpec(...))` here, plus its
tiny and synthetic builders if it has them (see docs/architecture.md).

No torch or diffusers import: `validate` and `plan` read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["ddpm", "flow"]  # noise-prediction (DDPM-family schedulers) or rectified flow


@dataclass(frozen=True)
class FamilySpec:
    name: str
    kind: Kind
    pipeline_class: str  # diffusers pipeline class (model_index.json `_class_name`)
    denoiser: Literal["unet", "transformer"]
    native_resolution: str
    default_guidance: float
    gpu_dtype: Literal["fp16", "bf16"]  # what `dtype: auto` means on a GPU
    name_hints: tuple[str, ...] = field(default_factory=tuple)  # lower-case substrings of Hub ids / paths
    # Key prefixes of the single-file checkpoints people download (A1111, ComfyUI, Civitai, the
    # original releases): a file holding any of them is of this family.
    checkpoint_markers: tuple[str, ...] = field(default_factory=tuple)


class UnknownFamily(ValueError):
    """A family name no registry entry has."""


FAMILIES: dict[str, FamilySpec] = {}


def register(spec: FamilySpec) -> FamilySpec:
    FAMILIES[spec.name] = spec
    return spec


register(FamilySpec("sd", "ddpm", "StableDiffusionPipeline", "unet", "512x512", 7.5, "fp16",
                    checkpoint_markers=("cond_stage_model.transformer.",)))
register(FamilySpec("sdxl", "ddpm", "StableDiffusionXLPipeline", "unet", "1024x1024", 5.0, "fp16", ("xl",),
                    checkpoint_markers=("conditioner.embedders.1.",)))
register(FamilySpec("sd3", "flow", "StableDiffusion3Pipeline", "transformer", "1024x1024", 4.5, "bf16",
                    ("stable-diffusion-3", "sd3"), checkpoint_markers=("model.diffusion_model.joint_blocks.",
                                                                      "joint_blocks.")))
register(FamilySpec("flux", "flow", "FluxPipeline", "transformer", "1024x1024", 3.5, "bf16", ("flux",),
                    checkpoint_markers=("double_blocks.", "model.diffusion_model.double_blocks.")))

# When a name matches several hints, the more specific family wins (flux and sd3 before sdxl).
HINT_ORDER = ("flux", "sd3", "sdxl")


def family(name: str) -> FamilySpec:
    """The spec of a registered family, or UnknownFamily naming those there are."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamily(f"unknown model family '{name}' (known: {', '.join(FAMILIES)})") from None


def by_pipeline_class(class_name: str) -> FamilySpec | None:
    return next((f for f in FAMILIES.values() if f.pipeline_class == class_name), None)


def guess_from_name(text: str) -> str:
    """A family from a Hub id or path when nothing better is known (the most specific hint wins;
    plain Stable Diffusion when none matches)."""
    lowered = text.lower()
    ordered = [FAMILIES[n] for n in HINT_ORDER if n in FAMILIES] + [f for n, f in FAMILIES.items()
                                                                   if n not in HINT_ORDER]
    for spec in ordered:
        if any(hint in lowered for hint in spec.name_hints):
            return spec.name
    return "sd"
