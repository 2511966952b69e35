"""Write a diffusers Stable Diffusion 1.x pipeline as the single .safetensors checkpoint that
A1111, ComfyUI and Civitai use (the original CompVis/LDM key layout), so that tests can load a
real single-file checkpoint offline.

The mapping follows the LDM UNet's numbering: input_blocks count every resnet (with its
attention) and every downsampler of every level in order; output_blocks count layers_per_block
+ 1 per level, with the upsampler after the last one; the VAE's decoder levels run in reverse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
          "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _rename(rest: str, table: dict[str, str]) -> str:
    for new, old in table.items():
        if rest == new or rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest


def unet_key(key: str, config: dict[str, Any]) -> str:
    per_level = config["layers_per_block"]
    parts = key.split(".")
    simple = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
              "time_embedding.linear_2": "time_embed.2", "conv_norm_out": "out.0", "conv_out": "out.2",
              "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}  # SDXL's
    for new, old in simple.items():
        if key.startswith(new + "."):
            return old + key[len(new):]
    if parts[0] == "down_blocks":
        level, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "downsamplers":
            return f"input_blocks.{(level + 1) * (per_level + 1)}.0.op.{rest.removeprefix('conv.')}"
        block = 1 + level * (per_level + 1) + index
        return f"input_blocks.{block}.{0 if kind == 'resnets' else 1}.{_rename(rest, RESNET) if kind == 'resnets' else rest}"
    if parts[0] == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "attentions":
            return f"middle_block.1.{rest}"
        return f"middle_block.{0 if index == 0 else 2}.{_rename(rest, RESNET)}"
    if parts[0] == "up_blocks":
        level, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "upsamplers":
            has_attention = config["up_block_types"][level].startswith("CrossAttn")
            return f"output_blocks.{level * (per_level + 1) + per_level}.{2 if has_attention else 1}.{rest}"
        block = level * (per_level + 1) + index
        return f"output_blocks.{block}.{0 if kind == 'resnets' else 1}.{_rename(rest, RESNET) if kind == 'resnets' else rest}"
    raise KeyError(f"no LDM name for UNet key {key}")


def vae_key(key: str, levels: int) -> tuple[str, bool]:
    """The LDM name, and whether the weight is a 1x1 convolution there (attention projections)."""
    parts = key.split(".")
    side = parts[0]
    if side not in {"encoder", "decoder"}:
        return key, False  # quant_conv, post_quant_conv
    rest = ".".join(parts[1:])
    if rest.startswith(("conv_in.", "conv_out.")):
        return key, False
    if rest.startswith("conv_norm_out."):
        return f"{side}.norm_out.{rest.removeprefix('conv_norm_out.')}", False
    sub = parts[1:]
    if sub[0] == "mid_block":
        kind, index, inner = sub[1], int(sub[2]), ".".join(sub[3:])
        if kind == "attentions":
            name = _rename(inner, VAE_ATTENTION)
            return f"{side}.mid.attn_1.{name}", name.split(".")[0] in {"q", "k", "v", "proj_out"} and name.endswith("weight")
        return f"{side}.mid.block_{index + 1}.{_rename(inner, VAE_RESNET)}", False
    if sub[0] in {"down_blocks", "up_blocks"}:
        level, kind, index, inner = int(sub[1]), sub[2], int(sub[3]), ".".join(sub[4:])
        if side == "encoder":
            if kind == "downsamplers":
                return f"encoder.down.{level}.downsample.{inner}", False
            return f"encoder.down.{level}.block.{index}.{_rename(inner, VAE_RESNET)}", False
        original = levels - 1 - level
        if kind == "upsamplers":
            return f"decoder.up.{original}.upsample.{inner}", False
        return f"decoder.up.{original}.block.{index}.{_rename(inner, VAE_RESNET)}", False
    raise KeyError(f"no LDM name for VAE key {key}")


def _ldm_tensors(pipe: Any, clip_prefix: str) -> dict[str, Any]:
    """The pipeline's UNet and VAE in the LDM layout, its (first) CLIP text encoder under `clip_prefix`."""
    tensors = {}
    unet_config = dict(pipe.unet.config)
    for key, value in pipe.unet.state_dict().items():
        tensors[f"model.diffusion_model.{unet_key(key, unet_config)}"] = value
    levels = len(pipe.vae.config.block_out_channels)
    for key, value in pipe.vae.state_dict().items():
        name, conv = vae_key(key, levels)
        tensors[f"first_stage_model.{name}"] = value[:, :, None, None] if conv else value
    for key, value in pipe.text_encoder.state_dict().items():
        tensors[f"{clip_prefix}text_model.{key.removeprefix('text_model.')}"] = value
    return tensors


def _save(tensors: dict[str, Any], path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def write_sd_checkpoint(pipe: Any, path: Path) -> Path:
    """The pipeline's UNet, VAE and CLIP text encoder in one LDM-layout .safetensors file."""
    return _save(_ldm_tensors(pipe, "cond_stage_model.transformer."), path)


OPEN_CLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
                   "self_attn.out_proj": "attn.out_proj"}


def open_clip_tensors(encoder: Any, prefix: str) -> dict[str, Any]:
    """A CLIPTextModelWithProjection as OpenCLIP names it (SDXL's second text encoder): q, k and v
    as one in_proj, the projection transposed."""
    import torch

    state = encoder.state_dict()
    out = {f"{prefix}positional_embedding": state["text_model.embeddings.position_embedding.weight"],
           f"{prefix}token_embedding.weight": state["text_model.embeddings.token_embedding.weight"],
           f"{prefix}ln_final.weight": state["text_model.final_layer_norm.weight"],
           f"{prefix}ln_final.bias": state["text_model.final_layer_norm.bias"],
           f"{prefix}text_projection": state["text_projection.weight"].T}
    for index in range(encoder.config.num_hidden_layers):
        layer, block = f"text_model.encoder.layers.{index}.", f"{prefix}transformer.resblocks.{index}."
        for kind in ("weight", "bias"):
            out[f"{block}attn.in_proj_{kind}"] = torch.cat(
                [state[f"{layer}self_attn.{p}_proj.{kind}"] for p in ("q", "k", "v")])
            for new, old in OPEN_CLIP_LAYER.items():
                out[f"{block}{old}.{kind}"] = state[f"{layer}{new}.{kind}"]
    return out


def write_sdxl_checkpoint(pipe: Any, path: Path) -> Path:
    """An SDXL pipeline in the layout of the SDXL checkpoints on Civitai: the LDM UNet (with its
    label embedding), the VAE, CLIP-L under conditioner.embedders.0 and OpenCLIP under
    conditioner.embedders.1."""
    tensors = _ldm_tensors(pipe, "conditioner.embedders.0.transformer.")
    tensors.update(open_clip_tensors(pipe.text_encoder_2, "conditioner.embedders.1.model."))
    return _save(tensors, path)
