"""builtin:tiny-clip: a CLIP image-text model with tiny dimensions and random weights.

Written once to a cache folder as an ordinary transformers folder (config, safetensors, a locally
built tokenizer and image processor) and then loaded through `from_pretrained`, as a real CLIP
checkpoint is. Its scores are those of random weights: they exercise the CLIP-score path offline
(the tiny suites, the tests) and say nothing about the pictures.
"""

from __future__ import annotations

from pathlib import Path

from .builtin import _clip_config, _seeded, _write_clip_tokenizer, built_once

NAME = "tiny-clip"
FORMAT = 1  # bump when the builder changes, so stale caches are rebuilt
IMAGE_SIDE = 32  # the vision tower's input: every picture is resized and centre-cropped to this


def tiny_clip_path() -> Path:
    """The folder of builtin:tiny-clip, building it on first use."""
    return built_once(f"{NAME}-v{FORMAT}", "config.json", _build)


def _build(folder: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPVisionConfig

    tokenizer_folder = folder / "tokenizer"
    vocab = _write_clip_tokenizer(tokenizer_folder)
    for item in tokenizer_folder.iterdir():  # one folder, as a Hub CLIP checkpoint is laid out
        item.rename(folder / item.name)
    tokenizer_folder.rmdir()
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=IMAGE_SIDE, patch_size=8, projection_dim=32, hidden_act="quick_gelu")
    config = CLIPConfig(text_config=_clip_config(vocab).to_dict(), vision_config=vision.to_dict(), projection_dim=32)
    _seeded()
    model = CLIPModel(config)
    model.train(False)  # inference mode, as eval() sets it
    model.save_pretrained(folder, safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": IMAGE_SIDE}, crop_size={"height": IMAGE_SIDE, "width": IMAGE_SIDE}
                       ).save_pretrained(folder)
