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

from ..errors import DiffbenchError
from .tasks import StrengthRounding

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
    # Regular expressions (searched in the lower-cased Hub id or path) that name this family; the
    # first family in NAME_PRECEDENCE whose pattern matches wins. Plain substrings work too.
    name_hints: tuple[str, ...] = field(default_factory=tuple)
    # Key prefixes of the single-file checkpoints people download (A1111, ComfyUI, Civitai, the
    # original releases): a file holding any of them is of this family.
    checkpoint_markers: tuple[str, ...] = field(default_factory=tuple)
    # Tasks besides the family's own (text-to-image, or text-to-video for a video family), each
    # with the diffusers pipeline that runs it on the same weights (built with `from_pipe`).
    other_tasks: tuple[tuple[str, str], ...] = ()
    strength_rounding: StrengthRounding = "floor_kept"  # see tasks.effective_steps
    task_notes: tuple[tuple[str, str], ...] = ()  # task -> why this family's weights cannot run it
    # Video families: frames come in frame_multiple*k+1 (what the VAE packs), and the defaults.
    frame_multiple: int = 0
    default_frames: int | None = None
    default_fps: int | None = None
    # The VAE decoder's last block's channels: what decoding holds at full resolution (memoryfloor.py)
    decoder_channels: int = 128
    # The published VAE's sample_size: diffusers' tiled decode tiles only a picture larger than it
    # (AutoencoderKL._decode compares the latent with sample_size / 8), so VAE tiling changes nothing
    # at or below it. 0: not known (the memory floor then takes tiling at its word).
    vae_tile: int = 0
    # The pipeline decodes in fp32 when its VAE is fp16 and the config says force_upcast (only
    # StableDiffusionXLPipeline checks it; SD, SD3 and FLUX decode in the pipeline's dtype).
    vae_upcast: bool = False
    # Width and height must be multiples of this: the VAE's 8 times the denoiser's patch (SD 3, FLUX and
    # Wan patch 2x2 latents: 16; LTX-Video 32); the pipelines refuse or resize anything else
    resolution_multiple: int = 8
    # Step caches that run only where a family lists them (caches.CacheKind.per_family)
    step_caches: tuple[str, ...] = ()
    # MagCache's calibrated magnitude ratios: the name of diffusers.hooks.mag_cache's constant
    magcache_ratios: str = ""

    @property
    def video(self) -> bool:
        return self.frame_multiple > 0

    @property
    def own_task(self) -> str:
        return "text-to-video" if self.video else "text-to-image"

    @property
    def tasks(self) -> tuple[str, ...]:
        return (self.own_task, *(task for task, _ in self.other_tasks))

    def pipeline_for(self, task: str) -> str:
        """The diffusers pipeline class that runs `task` with this family's weights."""
        return self.pipeline_class if task == self.own_task else dict(self.other_tasks)[task]


class UnknownFamily(DiffbenchError, ValueError):
    """A family name no registry entry has, or a model whose family cannot be told."""


FAMILIES: dict[str, FamilySpec] = {}


def register(spec: FamilySpec) -> FamilySpec:
    if "magcache" in spec.step_caches and not spec.magcache_ratios:
        raise ValueError(f"family '{spec.name}' lists magcache in step_caches but names no magcache_ratios")
    FAMILIES[spec.name] = spec
    return spec


register(FamilySpec("sd", "ddpm", "StableDiffusionPipeline", "unet", "512x512", 7.5, "fp16",
                    (r"stable-diffusion-v-?1", r"stable-diffusion-2", r"(?<![a-z0-9])sd-?v?1[._-]?[45](?![0-9])",
                     r"(?<![a-z0-9])sd-?2[._-]?[01](?![0-9])", r"^runwayml/", r"^compvis/", r"^stabilityai/sd-turbo$"),
                    checkpoint_markers=("cond_stage_model.transformer.",), vae_tile=512,
                    other_tasks=(("image-to-image", "StableDiffusionImg2ImgPipeline"),
                                 ("inpainting", "StableDiffusionInpaintPipeline"))))
register(FamilySpec("sdxl", "ddpm", "StableDiffusionXLPipeline", "unet", "1024x1024", 5.0, "fp16",
                    (r"sdxl", r"sd-xl", r"stable-diffusion-xl", r"[a-z]xl[_-]?v?[0-9]", r"[a-z]xl$",
                     r"(?<![a-z])xl[_-]v[0-9]", r"playground-v2"),
                    checkpoint_markers=("conditioner.embedders.1.",), vae_tile=1024, vae_upcast=True,
                    other_tasks=(("image-to-image", "StableDiffusionXLImg2ImgPipeline"),
                                 ("inpainting", "StableDiffusionXLInpaintPipeline"))))
register(FamilySpec("sd3", "flow", "StableDiffusion3Pipeline", "transformer", "1024x1024", 4.5, "bf16",
                    (r"stable-diffusion-3", r"(?<![a-z0-9])sd-?3"), checkpoint_markers=("model.diffusion_model.joint_blocks.",
                                                                      "joint_blocks."),
                    other_tasks=(("image-to-image", "StableDiffusion3Img2ImgPipeline"),
                                 ("inpainting", "StableDiffusion3InpaintPipeline")),
                    strength_rounding="floor_skipped", vae_tile=1024, resolution_multiple=16))
register(FamilySpec("flux", "flow", "FluxPipeline", "transformer", "1024x1024", 3.5, "bf16", ("flux",),
                    checkpoint_markers=("double_blocks.", "model.diffusion_model.double_blocks."),
                    other_tasks=(("image-to-image", "FluxImg2ImgPipeline"), ("inpainting", "FluxInpaintPipeline")),
                    strength_rounding="floor_skipped", step_caches=("fastercache", "magcache"), vae_tile=1024,
                    resolution_multiple=16,
                    magcache_ratios="FLUX_MAG_RATIOS"))
# Video. Wan 2.1 text-to-video (1.3B and 14B): 832x480, 81 frames at 16 fps, 4k+1 frames.
register(FamilySpec("wan", "flow", "WanPipeline", "transformer", "832x480", 5.0, "bf16", (r"^wan-ai/", r"wan2\.[0-9]"),
                    frame_multiple=4, default_frames=81, default_fps=16, decoder_channels=96, resolution_multiple=16,
                    task_notes=(("image-to-video", "Wan image-to-video is its own checkpoint, with an image "
                                                   "encoder: name it as a model"),)))
# LTX-Video: 704x480, 8k+1 frames at 25 fps (its model card's defaults); image-to-video on the same weights.
register(FamilySpec("ltx", "flow", "LTXPipeline", "transformer", "704x480", 3.0, "bf16", (r"ltx-video", r"lightricks/ltx"),
                    other_tasks=(("image-to-video", "LTXImageToVideoPipeline"),),
                    frame_multiple=8, default_frames=161, default_fps=25, resolution_multiple=32))

# Architectures whose work diffbench counts (estimate, recommend and gpus answer them with no results)
# but does not run: no tiny pipeline of theirs proves a run path. Never a suite's family; a name of
# theirs is refused for runs (OTHER_ARCHITECTURES) with the command that answers it.
COUNTED_ONLY: dict[str, FamilySpec] = {
    # PixArt-α and -Σ: a 0.6B DiT over T5-XXL, 4-channel SD/SDXL VAEs decoded in the pipeline's dtype
    "pixart": FamilySpec("pixart", "ddpm", "PixArtSigmaPipeline", "transformer", "1024x1024", 4.5, "fp16",
                         vae_tile=1024, resolution_multiple=16),
}


def counting_spec(name: str) -> FamilySpec | None:
    """The spec the counting uses: a registered family's, or a counted-only architecture's; None."""
    return FAMILIES.get(name) or COUNTED_ONLY.get(name)


def counting_family(name: str) -> FamilySpec:
    """counting_spec, or UnknownFamily naming the known ones."""
    spec = counting_spec(name)
    if spec is None:
        raise UnknownFamily(f"unknown model family '{name}' (known: {', '.join([*FAMILIES, *COUNTED_ONLY])})")
    return spec


# When a name matches several families, the more specific wins (flux and sd3 before sdxl, sdxl
# before sd); families registered later come after these.
NAME_PRECEDENCE = ("flux", "sd3", "ltx", "wan", "sdxl", "sd")

# Architectures diffbench has no family for, as their names give them away: named so that
# 'PixArt-alpha/PixArt-Sigma-XL-2-1024-MS' is refused as PixArt, never run as SDXL for its "XL".
OTHER_ARCHITECTURES = {r"pixart": "PixArt", r"kandinsky": "Kandinsky", r"hunyuan": "HunyuanDiT/HunyuanVideo",
                       r"cogvideo": "CogVideoX", r"(?<![a-z])sana(?![a-z])": "Sana", r"lumina": "Lumina",
                       r"kolors": "Kolors", r"auraflow": "AuraFlow", r"mochi": "Mochi", r"allegro": "Allegro",
                       r"stable-cascade|wuerstchen": "Stable Cascade", r"deepfloyd|(?<![a-z])if-i-": "DeepFloyd IF"}


def family(name: str) -> FamilySpec:
    """The spec of a registered family, or UnknownFamily naming those there are."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamily(f"unknown model family '{name}' (known: {', '.join(FAMILIES)})") from None


def by_pipeline_class(class_name: str) -> FamilySpec | None:
    return next((f for f in FAMILIES.values() if f.pipeline_class == class_name), None)


# The components a pipeline's denoiser can be (FamilySpec.denoiser), in the order a pipeline of no
# registered family is searched for one.
DENOISER_COMPONENTS: tuple[str, ...] = ("transformer", "unet")


def denoiser_component(pipeline_class: str) -> str | None:
    """The denoiser's component name for a pipeline class of a registered family (its own task's
    pipeline, or another task's built on the same weights), from its FamilySpec."""
    for spec in FAMILIES.values():
        if pipeline_class == spec.pipeline_class or pipeline_class in dict(spec.other_tasks).values():
            return spec.denoiser
    return None


def guess_from_name(text: str) -> str:
    """A family from a Hub id or path when nothing better is known: the first family in
    NAME_PRECEDENCE whose patterns match. An architecture diffbench has no family for, or a name
    that matches none, is UnknownFamily (say `family:`), never a guess."""
    import re

    lowered = text.lower()
    for pattern, architecture in OTHER_ARCHITECTURES.items():
        if re.search(pattern, lowered):
            counted = "; diffbench estimate and gpus answer it from counts (`diffbench models` names it)" \
                if architecture.lower() in COUNTED_ONLY else ""
            raise UnknownFamily(f"'{text}' looks like {architecture}, which diffbench has no family for (known: "
                                f"{', '.join(FAMILIES)}){counted}")
    ordered = [FAMILIES[n] for n in NAME_PRECEDENCE if n in FAMILIES] + [f for n, f in FAMILIES.items()
                                                                        if n not in NAME_PRECEDENCE]
    for spec in ordered:
        if any(re.search(pattern, lowered) for pattern in spec.name_hints):
            return spec.name
    raise UnknownFamily(f"cannot tell the family of '{text}' from its name: set family: for this model "
                        f"({', '.join(FAMILIES)})")
