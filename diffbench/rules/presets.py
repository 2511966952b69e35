"""The models diffbench provides itself, declared: the built-in tiny pipelines here, the synthetic
full-size architectures in models/synthetic.py. Plain data, read by the rules (a built-in model's VAE
for the memory floor) and by the builders in models/ alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelPreset:
    """A model diffbench provides itself: built-in tiny or synthetic full-size."""

    name: str
    family: str
    description: str
    defaults: dict[str, Any]
    # Components saved as null that from_pretrained must be told to leave out (SD3 without T5).
    absent_components: tuple[str, ...] = ()
    # Published parameter counts per component, for the record and the tests (see README).
    published: dict[str, int] = field(default_factory=dict)
    decoder_channels: int = 8  # the tiny VAE decoder's last block (memoryfloor.py)
    # Video: the longest clip its denoiser's positions reach (Wan: rope_max_seq_len latent frames of
    # the VAE's 4), known before anything is built, so plan and validate say it, not the run
    max_frames: int | None = None
    # The VAE's tile where it is not its family's (SD 2.1's VAE is published with sample_size 768,
    # SD 1.5's with 512): diffusers decodes a picture no larger than it whole, tiling on or not
    vae_tile: int | None = None
    # Synthetic architectures whose work diffbench counts (estimate, recommend, gpus with no results):
    # `counted`, the names people type for it (compared without case, dashes, dots or spaces), and
    # its denoiser's published config where its family has more than one architecture
    counted: bool = False
    typed: tuple[str, ...] = ()
    denoiser_config: dict[str, Any] | None = None
    # A step-distilled model's step count, from its model card: what a ranking uses when not told
    # (a distilled model at a full model's 30 steps would read many times too slow); None: 30
    usual_steps: int | None = None


BUILTINS: dict[str, ModelPreset] = {
    m.name: m
    for m in (
        ModelPreset("tiny-sd", "sd", "Stable Diffusion 1.x layout (UNet, CLIP, VAE), tiny",
                     {"resolution": "64x64", "guidance_scale": 7.5}),
        ModelPreset("tiny-sdxl", "sdxl", "SDXL layout (UNet with text-time conditioning, two CLIP encoders), tiny",
                     {"resolution": "64x64", "guidance_scale": 5.0}),
        ModelPreset("tiny-sd3", "sd3", "SD3 layout (MMDiT transformer, two CLIP encoders, no T5), tiny",
                     {"resolution": "64x64", "guidance_scale": 4.5}, ("text_encoder_3", "tokenizer_3")),
        ModelPreset("tiny-flux", "flux", "FLUX.1 schnell layout (MMDiT + single blocks, CLIP + T5), tiny",
                     {"resolution": "64x64", "guidance_scale": 0.0}),
        ModelPreset("tiny-wan", "wan", "Wan 2.1 text-to-video layout (3D DiT, UMT5, causal 3D VAE), tiny",
                     {"resolution": "64x64", "guidance_scale": 5.0, "frames": 9, "fps": 16}, decoder_channels=3,
                     max_frames=(32 - 1) * 4 + 1),  # rope_max_seq_len=32 in _build_wan
        ModelPreset("tiny-ltx", "ltx", "LTX-Video layout (video DiT, T5, 3D VAE with 8x compression), tiny",
                     {"resolution": "64x64", "guidance_scale": 3.0, "frames": 9, "fps": 24}),
    )
}
