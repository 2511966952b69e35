"""Synthetic full-size models: the real architectures of SD1.5, SD 2.1, SDXL, SD3 Medium, SD3.5 Medium and Large, FLUX.1,
Wan 2.1 (1.3B, 14B) and LTX-Video from their public configurations, with random weights, built without downloading anything.

Modules are created on the meta device (no memory, no initialisation) and then materialised
directly on the target device, where weights are filled with scaled random values: a 12B
FLUX transformer appears on a GPU in seconds instead of minutes of CPU initialisation.
Speed and memory are those of the real models; the images are noise.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from ..rules.presets import ModelPreset
from .builtin import (
    CLIP_MAX_LENGTH,
    _write_clip_tokenizer,
    _write_t5_tokenizer,
)

# Text encoder configurations (transformers), as published with the models.
CLIP_L = {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
          "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768}
# OpenCLIP ViT-H/14's text tower, SD 2.x's text encoder (stabilityai/stable-diffusion-2-1, text_encoder/config.json)
OPENCLIP_H = {"vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
              "num_attention_heads": 16, "max_position_embeddings": 77, "hidden_act": "gelu", "projection_dim": 512}
CLIP_G = {"vocab_size": 49408, "hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
          "num_attention_heads": 20, "max_position_embeddings": 77, "hidden_act": "gelu", "projection_dim": 1280}
T5_XXL = {"vocab_size": 32128, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
          "relative_attention_num_buckets": 32, "feed_forward_proj": "gated-gelu", "is_gated_act": True,
          "dense_act_fn": "gelu_new", "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}
VAE_4 = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": (128, 256, 512, 512),
         "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
         "layers_per_block": 2, "sample_size": 512, "scaling_factor": 0.18215}
# SDXL's VAE is SD's shape with another scale, published with sample_size 1024 (stabilityai/
# stable-diffusion-xl-base-1.0, vae/config.json): its tiled decode does not tile a 1024² picture.
SDXL_VAE = {**VAE_4, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
VAE_16 = {**VAE_4, "latent_channels": 16, "use_quant_conv": False, "use_post_quant_conv": False, "sample_size": 1024}

SD15_UNET = {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
             "block_out_channels": (320, 640, 1280, 1280),
             "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
             "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
             "cross_attention_dim": 768, "attention_head_dim": 8}
# SD 2.1 (768-v): SD 1.5's layout with linear projections, per-level heads and OpenCLIP-H's 1024-wide context
SD21_UNET = {**SD15_UNET, "sample_size": 96, "cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20),
             "use_linear_projection": True, "upcast_attention": True}
SDXL_UNET = {"sample_size": 128, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
             "block_out_channels": (320, 640, 1280),
             "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
             "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
             "transformer_layers_per_block": (1, 2, 10), "attention_head_dim": (5, 10, 20),
             "cross_attention_dim": 2048, "use_linear_projection": True, "addition_embed_type": "text_time",
             "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816}
SD35_MEDIUM = {"sample_size": 128, "patch_size": 2, "in_channels": 16, "num_layers": 24, "attention_head_dim": 64,
               "num_attention_heads": 24, "joint_attention_dim": 4096, "caption_projection_dim": 1536,
               "pooled_projection_dim": 2048, "out_channels": 16, "pos_embed_max_size": 384,
               "dual_attention_layers": tuple(range(13)), "qk_norm": "rms_norm"}
# SD3 Medium (2B MMDiT): SD 3.5 Medium's width and depth, without its dual attention and QK norm, and
# a 192x192 positional table (stabilityai/stable-diffusion-3-medium-diffusers, transformer/config.json)
SD3_MEDIUM = {key: value for key, value in SD35_MEDIUM.items() if key not in ("dual_attention_layers", "qk_norm")}
SD3_MEDIUM["pos_embed_max_size"] = 192
# SD 3.5 Large (8.1B MMDiT): 38 blocks of 38 heads, QK norm, no dual attention, a 192x192 positional
# table (stabilityai/stable-diffusion-3.5-large, transformer/config.json)
SD35_LARGE = {**SD3_MEDIUM, "num_layers": 38, "num_attention_heads": 38, "caption_projection_dim": 2432,
              "qk_norm": "rms_norm"}
# UMT5-XXL's encoder (Wan's text encoder): T5-XXL's shape with UMT5's 256k multilingual vocabulary.
UMT5_XXL = {**T5_XXL, "vocab_size": 256384}
# Wan 2.1 text-to-video, from the Wan team's published configs (wan/configs/wan_t2v_1_3B.py and
# wan_t2v_14B.py: dim, ffn_dim, heads, layers); the VAE is AutoencoderKLWan's default, Wan 2.1's.
WAN_COMMON = {"patch_size": (1, 2, 2), "attention_head_dim": 128, "in_channels": 16, "out_channels": 16,
              "text_dim": 4096, "freq_dim": 256, "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads",
              "eps": 1e-6, "rope_max_seq_len": 1024}
WAN_1_3B = {**WAN_COMMON, "num_attention_heads": 12, "ffn_dim": 8960, "num_layers": 30}  # dim 1536
WAN_14B = {**WAN_COMMON, "num_attention_heads": 40, "ffn_dim": 13824, "num_layers": 40}  # dim 5120
# LTX-Video 0.9 (2B): LTXVideoTransformer3DModel's and AutoencoderKLLTXVideo's defaults are its config.
# PixArt-Σ XL-2 1024-MS (PixArt-alpha/PixArt-Sigma-XL-2-1024-MS, transformer/config.json): a 0.6B DiT
# over T5-XXL with 300 tokens and the SDXL VAE; PixArt-α XL-2 1024-MS the same network with the
# resolution and aspect-ratio embeddings (use_additional_conditions, diffusers' default at
# sample_size 128), 120 tokens and the SD VAE.
PIXART_SIGMA = {"sample_size": 128, "patch_size": 2, "in_channels": 4, "out_channels": 8, "num_layers": 28,
                "num_attention_heads": 16, "attention_head_dim": 72, "cross_attention_dim": 1152,
                "caption_channels": 4096, "attention_bias": True, "activation_fn": "gelu-approximate",
                "norm_type": "ada_norm_single", "norm_elementwise_affine": False, "norm_eps": 1e-6,
                "num_embeds_ada_norm": 1000, "interpolation_scale": 2, "use_additional_conditions": False}
PIXART_ALPHA = {**PIXART_SIGMA, "use_additional_conditions": True}
del PIXART_ALPHA["interpolation_scale"]
FLUX = {"patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38, "attention_head_dim": 128,
        "num_attention_heads": 24, "joint_attention_dim": 4096, "pooled_projection_dim": 768,
        "axes_dims_rope": (16, 56, 56)}


SYNTHETIC: dict[str, ModelPreset] = {
    m.name: m
    for m in (
        ModelPreset("sd15", "sd", "Stable Diffusion 1.5 architecture (860M UNet, CLIP ViT-L, VAE)",
                    {"resolution": "512x512", "guidance_scale": 7.5},
                    published={"unet": 859_520_964, "text_encoder": 123_060_480, "vae": 83_653_863},
                    counted=True, typed=("sd15", "stablediffusion15"), denoiser_config=SD15_UNET),
        ModelPreset("sd21", "sd", "Stable Diffusion 2.1 architecture (865M UNet, OpenCLIP ViT-H, VAE)",
                    {"resolution": "768x768", "guidance_scale": 7.5},
                    published={"unet": 865_910_724, "text_encoder": 340_387_840, "vae": 83_653_863}, vae_tile=768,
                    counted=True, typed=("sd21", "sd2", "stablediffusion21"), denoiser_config=SD21_UNET),
        ModelPreset("sdxl", "sdxl", "SDXL base 1.0 architecture (2.6B UNet, CLIP ViT-L + OpenCLIP bigG, VAE)",
                       {"resolution": "1024x1024", "guidance_scale": 5.0},
                    published={"unet": 2_567_463_684, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840,
                               "vae": 83_653_863},
                    counted=True, typed=("sdxl",), denoiser_config=SDXL_UNET),
        ModelPreset("sd35-medium", "sd3", "SD 3.5 Medium architecture (MMDiT-X, CLIP-L, bigG, T5-XXL, 16-ch VAE)",
                    {"resolution": "1024x1024", "guidance_scale": 4.5},
                    published={"transformer+text_encoder+text_encoder_2+vae": 3_371_793_763},
                    counted=True, typed=("sd35medium",), denoiser_config=SD35_MEDIUM),
        # Stability AI's model card: 8.1 billion parameters, 28 steps at guidance 3.5
        ModelPreset("sd35-large", "sd3", "SD 3.5 Large architecture (8.1B MMDiT, CLIP-L, bigG, T5-XXL, 16-ch VAE)",
                    {"resolution": "1024x1024", "guidance_scale": 3.5}, published={"transformer": 8_100_000_000},
                    counted=True, typed=("sd35large", "stablediffusion35large"), denoiser_config=SD35_LARGE),
        ModelPreset("sd3-medium", "sd3", "SD3 Medium architecture (2B MMDiT, CLIP-L, bigG, T5-XXL, 16-ch VAE)",
                    {"resolution": "1024x1024", "guidance_scale": 7.0}, published={"transformer": 2_028_328_000},
                    counted=True, typed=("sd3medium",), denoiser_config=SD3_MEDIUM),
        ModelPreset("flux-schnell", "flux", "FLUX.1 schnell architecture (12B MMDiT, CLIP-L, T5-XXL, 16-ch VAE)",
                    {"resolution": "1024x1024", "guidance_scale": 0.0}, published={"transformer": 12_000_000_000},
                    counted=True, typed=("fluxschnell", "flux1schnell"), denoiser_config=FLUX,
                    usual_steps=4),  # black-forest-labs/FLUX.1-schnell model card: 1 to 4 steps
        ModelPreset("flux-dev", "flux", "FLUX.1 dev architecture (12B MMDiT with guidance embedding)",
                    {"resolution": "1024x1024", "guidance_scale": 3.5}, published={"transformer": 12_000_000_000},
                    counted=True, typed=("flux", "fluxdev", "flux1dev"),
                    denoiser_config={**FLUX, "guidance_embeds": True}),
        # Counted, not run (families.COUNTED_ONLY): the quanto-diffusers post counts 0.611B parameters
        ModelPreset("pixart-sigma", "pixart", "PixArt-Σ XL-2 1024 architecture (0.6B DiT, T5-XXL, SDXL VAE)",
                    {"resolution": "1024x1024", "guidance_scale": 4.5}, published={"transformer": 611_000_000},
                    counted=True, typed=("pixartsigma", "pixart"), denoiser_config=PIXART_SIGMA),
        ModelPreset("pixart-alpha", "pixart", "PixArt-α XL-2 1024 architecture (0.6B DiT, T5-XXL, SD VAE)",
                    {"resolution": "1024x1024", "guidance_scale": 4.5}, published={"transformer": 611_000_000},
                    counted=True, typed=("pixartalpha",), denoiser_config=PIXART_ALPHA),
        # Video: the names round (1.3B is 1.42B: 2.84 GB of bf16 weights); published = the name's figure.
        ModelPreset("wan-1.3b", "wan", "Wan 2.1 T2V 1.3B architecture (DiT, UMT5-XXL, Wan-VAE)",
                    {"resolution": "832x480", "guidance_scale": 5.0, "frames": 81, "fps": 16},
                    published={"transformer": 1_300_000_000}),
        ModelPreset("wan-14b", "wan", "Wan 2.1 T2V 14B architecture (DiT, UMT5-XXL, Wan-VAE)",
                    {"resolution": "832x480", "guidance_scale": 5.0, "frames": 81, "fps": 16},
                    published={"transformer": 14_000_000_000}),
        ModelPreset("ltx-video", "ltx", "LTX-Video 0.9 architecture (2B video DiT, T5-XXL, 128-ch video VAE)",
                    {"resolution": "704x480", "guidance_scale": 3.0, "frames": 161, "fps": 25},
                    published={"transformer": 2_000_000_000}),
    )
}


# The architectures whose work is counted (each declares itself above): what estimate, recommend
# and gpus answer with no results, and the counts shipped with the package
COUNTED = tuple(name for name, preset in SYNTHETIC.items() if preset.counted)


def _on_meta(factory: Any, *args: Any, **kwargs: Any) -> Any:
    import torch

    with torch.device("meta"):
        return factory(*args, **kwargs)


def _text_models(family: str, name: str) -> dict[str, Any]:
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        T5Config,
        T5EncoderModel,
    )

    if family == "sd":
        return {"text_encoder": _on_meta(CLIPTextModel, CLIPTextConfig(**(OPENCLIP_H if name == "sd21" else CLIP_L)))}
    if family == "sdxl":
        return {"text_encoder": _on_meta(CLIPTextModel, CLIPTextConfig(**CLIP_L)),
                "text_encoder_2": _on_meta(CLIPTextModelWithProjection, CLIPTextConfig(**CLIP_G))}
    if family == "sd3":
        return {"text_encoder": _on_meta(CLIPTextModelWithProjection, CLIPTextConfig(**CLIP_L)),
                "text_encoder_2": _on_meta(CLIPTextModelWithProjection, CLIPTextConfig(**CLIP_G)),
                "text_encoder_3": _on_meta(T5EncoderModel, T5Config(**T5_XXL))}
    if family == "flux":
        return {"text_encoder": _on_meta(CLIPTextModel, CLIPTextConfig(**CLIP_L)),
                "text_encoder_2": _on_meta(T5EncoderModel, T5Config(**T5_XXL))}
    if family == "wan":
        from transformers import UMT5Config, UMT5EncoderModel

        return {"text_encoder": _on_meta(UMT5EncoderModel, UMT5Config(**UMT5_XXL))}
    if family in ("ltx", "pixart"):
        return {"text_encoder": _on_meta(T5EncoderModel, T5Config(**T5_XXL))}
    raise ValueError(f"no synthetic text encoders for family '{family}'")


def build_modules(name: str) -> dict[str, Any]:
    """Every weighted component of a synthetic model, on the meta device (no memory used)."""
    from diffusers import (
        AutoencoderKL,
        AutoencoderKLLTXVideo,
        AutoencoderKLWan,
        FluxTransformer2DModel,
        LTXVideoTransformer3DModel,
        SD3Transformer2DModel,
        UNet2DConditionModel,
        WanTransformer3DModel,
    )

    spec = SYNTHETIC[name]
    modules = _text_models(spec.family, name)
    if spec.family == "sd":
        modules["unet"] = _on_meta(UNet2DConditionModel, **(spec.denoiser_config or SD15_UNET))
        modules["vae"] = _on_meta(AutoencoderKL, **({**VAE_4, "sample_size": 768} if name == "sd21" else VAE_4))
    elif spec.family == "sdxl":
        modules["unet"] = _on_meta(UNet2DConditionModel, **SDXL_UNET)
        modules["vae"] = _on_meta(AutoencoderKL, **SDXL_VAE)
    elif spec.family == "sd3":
        modules["transformer"] = _on_meta(SD3Transformer2DModel, **(spec.denoiser_config or SD35_MEDIUM))
        modules["vae"] = _on_meta(AutoencoderKL, **{**VAE_16, "scaling_factor": 1.5305, "shift_factor": 0.0609})
    elif spec.family == "flux":
        modules["transformer"] = _on_meta(FluxTransformer2DModel, **(spec.denoiser_config or FLUX))
        modules["vae"] = _on_meta(AutoencoderKL, **{**VAE_16, "scaling_factor": 0.3611, "shift_factor": 0.1159})
    elif spec.family == "wan":
        modules["transformer"] = _on_meta(WanTransformer3DModel, **(WAN_14B if name == "wan-14b" else WAN_1_3B))
        modules["vae"] = _on_meta(AutoencoderKLWan)
    elif spec.family == "pixart":
        from diffusers import PixArtTransformer2DModel

        modules["transformer"] = _on_meta(PixArtTransformer2DModel, **(spec.denoiser_config or PIXART_SIGMA))
        modules["vae"] = _on_meta(AutoencoderKL, **(SDXL_VAE if name == "pixart-sigma" else VAE_4))
    elif spec.family == "ltx":
        modules["transformer"] = _on_meta(LTXVideoTransformer3DModel)
        modules["vae"] = _on_meta(AutoencoderKLLTXVideo)
    return modules


def parameter_counts(name: str) -> dict[str, int]:
    """Parameters of each component, counted on the meta device in a fraction of a second."""
    return {component: sum(p.numel() for p in module.parameters()) for component, module in build_modules(name).items()}


def materialise(module: Any, device: Any, dtype: Any, seed: int, fill_device: Any = None) -> Any:
    """Allocate a meta module on `device` and fill it: weights ~ N(0, 1/fan_in), norms 1, biases 0.

    The scale keeps activations of a deep random network finite in fp16, so that speed is
    measured on ordinary numbers (no NaN or denormal slow paths). With `fill_device` (an
    accelerator) each weight is drawn there and copied to `device`, one tensor at a time: for
    offloaded runs, whose weights live in host RAM, seconds instead of minutes of CPU sampling,
    and never more accelerator memory than the largest single tensor.
    """
    import torch

    module = module.to(dtype).to_empty(device=device)  # cast on meta: no full-precision copy is ever allocated
    fill = torch.device(fill_device) if fill_device is not None else torch.device(device)
    generator = torch.Generator(device=fill).manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.ndim >= 2:
                fan_in = parameter[0].numel()
                if fill == parameter.device:
                    parameter.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=generator)
                else:
                    drawn = torch.empty(parameter.shape, dtype=parameter.dtype, device=fill)
                    parameter.copy_(drawn.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=generator))
            elif name.endswith("bias") or "bias" in name.split(".")[-1]:
                parameter.zero_()
            else:
                parameter.fill_(1.0)
        for buffer in module.buffers():
            buffer.zero_()
    _restore_computed_buffers(module, device)
    return module


def _restore_computed_buffers(module: Any, device: Any) -> None:
    """Buffers that are computed at construction (position ids, RoPE tables) cannot be random or zero."""
    import torch

    for child in module.modules():
        position_ids = getattr(child, "position_ids", None)
        if isinstance(position_ids, torch.Tensor) and position_ids.ndim == 2:
            position_ids.copy_(torch.arange(position_ids.shape[1], device=device).expand_as(position_ids))
    positional = getattr(module, "pos_embed", None)
    if positional is not None and hasattr(positional, "pos_embed") and hasattr(positional, "pos_embed_max_size"):
        from diffusers.models.embeddings import get_2d_sincos_pos_embed

        size = positional.pos_embed_max_size
        table = get_2d_sincos_pos_embed(positional.pos_embed.shape[-1], size, base_size=positional.base_size,
                                        interpolation_scale=positional.interpolation_scale, output_type="pt")
        positional.pos_embed.copy_(table.float().unsqueeze(0).to(positional.pos_embed.dtype))


def build_pipeline(name: str, device: Any, dtype: Any, seed: int = 1234, fill_device: Any = None) -> Any:
    """A ready diffusers pipeline of the synthetic model, with its weights on `device` (drawn on
    `fill_device` where given, see `materialise`)."""
    import diffusers
    import torch
    from transformers import AutoTokenizer, CLIPTokenizer

    spec = SYNTHETIC[name]
    modules = build_modules(name)
    for index, (component, module) in enumerate(sorted(modules.items())):
        # The VAE decodes in float32 where the real one is upcast (SDXL), as diffusers does.
        modules[component] = materialise(module, device, dtype, seed + index, fill_device).eval()
    if fill_device is not None and torch.device(fill_device).type == "cuda" and torch.device(device).type == "cpu":
        torch.cuda.empty_cache()  # the staging draws must not count as the run's device memory
    scratch = Path(tempfile.mkdtemp(prefix="diffbench-synthetic-tok-"))
    _write_clip_tokenizer(scratch / "clip")
    clip = CLIPTokenizer.from_pretrained(scratch / "clip", model_max_length=CLIP_MAX_LENGTH)
    if spec.family == "sd":
        return diffusers.StableDiffusionPipeline(
            **modules, tokenizer=clip, scheduler=_ddpm_scheduler(), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)
    if spec.family == "sdxl":
        return diffusers.StableDiffusionXLPipeline(**modules, tokenizer=clip, tokenizer_2=clip,
                                                   scheduler=_ddpm_scheduler())
    _write_t5_tokenizer(scratch / "t5")
    t5 = AutoTokenizer.from_pretrained(scratch / "t5")
    if spec.family == "sd3":
        return diffusers.StableDiffusion3Pipeline(
            **modules, tokenizer=clip, tokenizer_2=clip, tokenizer_3=t5,
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0))
    if spec.family == "wan":  # Wan 2.1's scheduler: UniPC on flow sigmas, shift 3 at 480p
        scheduler = diffusers.UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                      flow_shift=3.0)
        return diffusers.WanPipeline(**modules, tokenizer=t5, scheduler=scheduler)
    if spec.family == "ltx":
        return diffusers.LTXPipeline(**modules, tokenizer=t5, scheduler=diffusers.FlowMatchEulerDiscreteScheduler())
    if spec.family != "flux":
        raise ValueError(f"no synthetic pipeline for family '{spec.family}'")
    shift = {"use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15} if name == "flux-dev" else {
        "use_dynamic_shifting": False, "shift": 1.0}
    return diffusers.FluxPipeline(**modules, tokenizer=clip, tokenizer_2=t5,
                                  scheduler=diffusers.FlowMatchEulerDiscreteScheduler(**shift))


def _ddpm_scheduler() -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  timestep_spacing="leading", steps_offset=1)
