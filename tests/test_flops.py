"""FLOP counts of the built-in tiny denoisers against a hand count of their layers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers.models.attention_processor import Attention

from diffbench.measure.flops import count_call_flops
from diffbench.models.sources import load_pipeline


def hand_count(module: torch.nn.Module, args: tuple, kwargs: dict, attention_layers: bool = True) -> int:
    """Count multiply-adds layer by layer from the shapes each layer sees (2 FLOPs each).

    Convolutions: out_elements x in_channels/groups x kernel area. Linear layers: tokens x
    in x out. Attention: Q·Kᵀ and P·V, 2 x batch x heads x Lq x Lk x head_dim each.
    """
    total = 0
    handles = []

    def conv(layer: torch.nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kernel = layer.kernel_size[0] * layer.kernel_size[1]
        total += 2 * output.numel() * (layer.in_channels // layer.groups) * kernel

    def linear(layer: torch.nn.Linear, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += 2 * (inputs[0].numel() // layer.in_features) * layer.in_features * layer.out_features

    def attention(layer: Attention, args: tuple, kwargs: dict) -> None:
        nonlocal total
        hidden = args[0] if args else kwargs["hidden_states"]
        context = kwargs.get("encoder_hidden_states")
        if hidden.ndim == 4:  # (B, C, H, W) attention in VAE-style blocks
            hidden = hidden.flatten(2).transpose(1, 2)
        batch, queries = hidden.shape[0], hidden.shape[1]
        keys = context.shape[1] if context is not None else queries
        head_dim = layer.inner_dim // layer.heads
        total += 2 * 2 * batch * layer.heads * queries * keys * head_dim

    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d):
            handles.append(layer.register_forward_hook(conv))
        elif isinstance(layer, torch.nn.Linear):
            handles.append(layer.register_forward_hook(linear))
        elif isinstance(layer, Attention) and attention_layers:
            handles.append(layer.register_forward_pre_hook(attention, with_kwargs=True))
    with torch.no_grad():
        module(*args, **kwargs)
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("name", ["tiny-sd", "tiny-sdxl"])
def test_unet_flops_match_the_hand_count(name: str) -> None:
    pipe = load_pipeline({"source": f"builtin:{name}"}, torch.float32, Path("."))
    unet = pipe.unet
    batch = 2  # one image with classifier-free guidance
    sample = torch.randn(batch, 4, 8, 8)
    context = torch.randn(batch, 77, unet.config.cross_attention_dim)
    kwargs = {"encoder_hidden_states": context}
    if unet.config.addition_embed_type == "text_time":
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.randn(batch, 32), "time_ids": torch.randn(batch, 6)}
    args = (sample, torch.tensor(500))
    counted = count_call_flops(unet, args, kwargs)
    expected = hand_count(unet, args, kwargs)
    assert counted == expected
    assert counted > 50_000_000  # a real count, not an empty one


def test_mmdit_flops_match_the_hand_count() -> None:
    pipe = load_pipeline({"source": "builtin:tiny-sd3"}, torch.float32, Path("."))
    transformer = pipe.transformer
    args = ()
    kwargs = {"hidden_states": torch.randn(2, 16, 8, 8), "encoder_hidden_states": torch.randn(2, 154, 64),
              "pooled_projections": torch.randn(2, 64), "timestep": torch.tensor([500.0, 500.0])}
    counted = count_call_flops(transformer, args, kwargs)
    assert counted is not None and counted > 0
    # Joint attention in SD3 attends over image and text tokens together: count it by hand too.
    image_tokens, text_tokens = (8 // 2) * (8 // 2), 154
    heads, head_dim, layers, batch = 4, 8, 2, 2
    joint_attention = layers * 2 * 2 * batch * heads * (image_tokens + text_tokens) ** 2 * head_dim
    linear_and_conv = hand_count(transformer, args, kwargs, attention_layers=False)
    assert counted == linear_and_conv + joint_attention

