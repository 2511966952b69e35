"""Built-in tiny pipelines: real diffusers architectures with tiny dimensions and random weights.

Each is written once to a cache folder as an ordinary diffusers folder (safetensors, configs,
locally built tokenizers) and then loaded through `from_pretrained`, exactly as a real model is.
No network is touched. Their images are noise; their job is to exercise every code path fast.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..rules.presets import BUILTINS

BUILTIN_FORMAT = 2  # bump when a builder changes, so stale caches are rebuilt
CLIP_MAX_LENGTH = 77
T5_MAX_LENGTH = 512
SEED = 1234  # random weights, but the same random weights on every machine


def cache_root() -> Path:
    """Where built-in pipelines live: $DIFFBENCH_CACHE, else ~/.cache/diffbench."""
    env = os.environ.get("DIFFBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "diffbench"


def _builder_versions() -> str:
    """What wrote a cached folder: a folder saved by one diffusers/transformers may not load in another
    (transformers 5 writes tokenizer and config files that 4 cannot read), so each gets its own."""
    from importlib import metadata

    parts = []
    for package in ("diffusers", "transformers"):
        try:
            parts.append(f"{package[0]}{metadata.version(package)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{package[0]}none")
    return "-".join(parts)


def builtin_path(name: str) -> Path:
    """The folder of built-in `name`, building it on first use."""
    if name not in BUILTINS:
        raise KeyError(name)
    return built_once(f"{name}-v{BUILTIN_FORMAT}", "model_index.json", _BUILDERS[name])


def built_once(stem: str, marker: str, build: Callable[[Path], None]) -> Path:
    """The cache folder `stem` (per diffusers/transformers version), written by `build` on first
    use; `marker` is the file whose presence says it is complete. Built in a private folder and
    renamed: parallel workers never see half a model."""
    folder = cache_root() / "builtin" / f"{stem}-{_builder_versions()}"
    if (folder / marker).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=folder.parent))
    try:
        build(staging)
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / marker).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


# ----- tokenizers, built from a byte-level vocabulary (no download) -----

def _byte_level_chars() -> list[str]:
    """GPT-2's printable stand-ins for the 256 byte values (the alphabet of byte-level BPE)."""
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = visible[:]
    extra = 0
    for byte in range(256):
        if byte not in visible:
            visible.append(byte)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def _write_clip_tokenizer(folder: Path) -> int:
    """A CLIP BPE tokenizer with single-byte tokens only; returns its vocabulary size."""
    folder.mkdir(parents=True)
    symbols = _byte_level_chars()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer", "model_max_length": CLIP_MAX_LENGTH,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "do_lower_case": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return len(vocab)


def _write_t5_tokenizer(folder: Path) -> int:
    """A T5 (Unigram) tokenizer over single characters, saved as tokenizer.json; returns vocabulary size."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    folder.mkdir(parents=True)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(chr(c), -3.0) for c in range(ord(" ") + 1, ord("~") + 1)]
    pieces += [(f"<extra_id_{i}>", 0.0) for i in range(99, -1, -1)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Replace(" +", " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "T5Tokenizer", "model_max_length": T5_MAX_LENGTH, "eos_token": "</s>",
        "pad_token": "<pad>", "unk_token": "<unk>", "extra_ids": 100,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return len(pieces)


def _clip_config(vocab_size: int, hidden: int = 32, projection: int = 32) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=CLIP_MAX_LENGTH, projection_dim=projection,
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
        hidden_act="quick_gelu",
    )


def _vae(latent_channels: int, **extra: Any) -> Any:
    from diffusers import AutoencoderKL

    # Four blocks, as in the real VAEs, so that the latent is 1/8 of the image on each side.
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=8, sample_size=64, **extra,
    )


def _seeded() -> None:
    import torch

    torch.manual_seed(SEED)


def _build_sd(folder: Path) -> None:
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    _seeded()
    vocab = _write_clip_tokenizer(folder / "_tok")
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=16,
    )
    pipe = StableDiffusionPipeline(
        vae=_vae(4), text_encoder=CLIPTextModel(_clip_config(vocab)),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "_tok"), unet=unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         timestep_spacing="leading", steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    _save(pipe, folder)


def _build_sdxl(folder: Path) -> None:
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    _seeded()
    vocab = _write_clip_tokenizer(folder / "_tok")
    # Two encoders of different widths (CLIP-L 768 and OpenCLIP bigG 1280 in SDXL, 32 and 48 here),
    # their hidden states concatenated for cross-attention: the widths are how diffusers tells the
    # two apart in a single-file checkpoint.
    time_dim, projection, width_2 = 8, 32, 48
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32 + width_2, attention_head_dim=(2, 4), transformer_layers_per_block=(1, 2),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + projection, norm_num_groups=16,
    )
    tokenizer = CLIPTokenizer.from_pretrained(folder / "_tok")
    pipe = StableDiffusionXLPipeline(
        vae=_vae(4, force_upcast=True), text_encoder=CLIPTextModel(_clip_config(vocab)),
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(vocab, hidden=width_2, projection=projection)),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         timestep_spacing="leading", steps_offset=1),
    )
    _save(pipe, folder)


def _build_sd3(folder: Path) -> None:
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    _seeded()
    vocab = _write_clip_tokenizer(folder / "_tok")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "_tok")
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4,
        joint_attention_dim=64, caption_projection_dim=32, pooled_projection_dim=64, out_channels=16,
        pos_embed_max_size=32,
    )
    # SD3 runs without its T5 encoder (a supported configuration); T5 embeddings are then zeros.
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_vae(16, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5305),
        text_encoder=CLIPTextModelWithProjection(_clip_config(vocab)), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(vocab)), tokenizer_2=tokenizer,
        text_encoder_3=None, tokenizer_3=None,
    )
    _save(pipe, folder, null_components=BUILTINS["tiny-sd3"].absent_components)


def _build_flux(folder: Path) -> None:
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import (
        AutoTokenizer,
        CLIPTextModel,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
    )

    _seeded()
    vocab = _write_clip_tokenizer(folder / "_tok")
    t5_vocab = _write_t5_tokenizer(folder / "_tok2")
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=False,
        axes_dims_rope=(4, 4, 8),
    )
    t5 = T5EncoderModel(T5Config(vocab_size=t5_vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                 decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))
    pipe = FluxPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False),
        vae=_vae(4, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611),
        text_encoder=CLIPTextModel(_clip_config(vocab)), tokenizer=CLIPTokenizer.from_pretrained(folder / "_tok"),
        text_encoder_2=t5, tokenizer_2=AutoTokenizer.from_pretrained(folder / "_tok2"),
    )
    _save(pipe, folder)


def _t5_encoder(vocab: int, umt5: bool = False) -> Any:
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    sizes = {"vocab_size": vocab, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4,
             "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}
    return UMT5EncoderModel(UMT5Config(**sizes)) if umt5 else T5EncoderModel(T5Config(**sizes))


def _build_wan(folder: Path) -> None:
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import AutoTokenizer

    _seeded()
    vocab = _write_t5_tokenizer(folder / "_tok")
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    # The real VAE's layout (4x in time, 8x in space), with 3 base channels instead of 96.
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    pipe = WanPipeline(
        tokenizer=AutoTokenizer.from_pretrained(folder / "_tok"), text_encoder=_t5_encoder(vocab, umt5=True),
        vae=vae, transformer=transformer,
        # Wan 2.1's own scheduler: UniPC on flow sigmas, shift 3 (its 480p setting)
        scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
    )
    _save(pipe, folder)


def _build_ltx(folder: Path) -> None:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import AutoTokenizer

    _seeded()
    vocab = _write_t5_tokenizer(folder / "_tok")
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, num_layers=1, caption_channels=32,
    )
    # Three space-time downsamplings: 8x in time and space, as LTX-Video's frame rule (8k+1) expects.
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )
    pipe = LTXPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=_t5_encoder(vocab),
                       tokenizer=AutoTokenizer.from_pretrained(folder / "_tok"), transformer=transformer)
    _save(pipe, folder)


def _save(pipe: Any, folder: Path, null_components: tuple[str, ...] = ()) -> None:
    pipe.save_pretrained(folder, safe_serialization=True)
    # Optional components left out (SD3 without T5) must still be listed, as null, to load again.
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    for name in null_components:
        index[name] = [None, None]
    index_path.write_text(json.dumps(index, indent=2), encoding="utf-8")
    for scratch in folder.glob("_tok*"):
        shutil.rmtree(scratch)


_BUILDERS: dict[str, Callable[[Path], None]] = {
    "tiny-sd": _build_sd, "tiny-sdxl": _build_sdxl, "tiny-sd3": _build_sd3, "tiny-flux": _build_flux,
    "tiny-wan": _build_wan, "tiny-ltx": _build_ltx,
}
