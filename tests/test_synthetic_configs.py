"""Synthetic models equal the published ones in every field that shapes cost: each preset's
component configs, field by field, against tests/golden/published_configs.json (copied by hand
from the config.json files it names). The SDXL VAE's sample_size once was SD 1.5's 512 instead of
the published 1024, and the VAE-tiling advice rested on it: a test like this one would have said so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from diffbench.models.synthetic import SYNTHETIC, build_modules
from diffbench.rules.families import FAMILIES, counting_family
from diffbench.rules.memoryfloor import floor_bytes, tiling_applies

PUBLISHED = json.loads((Path(__file__).parent / "golden" / "published_configs.json").read_text())
CASES = [(preset, component) for preset, parts in PUBLISHED.items() if not preset.startswith("_") for component in parts]


def _config(module: Any) -> dict[str, Any]:
    config = getattr(module, "config")
    return dict(config) if not hasattr(config, "to_dict") else config.to_dict()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@pytest.fixture(scope="module")
def modules() -> dict[str, dict[str, Any]]:
    return {preset: build_modules(preset) for preset in PUBLISHED if not preset.startswith("_")}


@pytest.mark.parametrize(("preset", "component"), CASES)
def test_every_cost_shaping_field_equals_the_published_config(modules, preset: str, component: str) -> None:
    published = PUBLISHED[preset][component]
    assert published["source"].startswith("https://huggingface.co/")
    ours = _config(modules[preset][component])
    wrong = {field: (ours.get(field), value) for field, value in published["fields"].items()
             if _plain(ours.get(field)) != value}
    assert not wrong, f"{preset}/{component} differs from {published['source']}: {wrong} (ours, published)"


def test_every_counted_preset_has_its_published_configs() -> None:
    from diffbench.analysis.projection import COUNTED_PRESETS

    counted = set(COUNTED_PRESETS)
    assert counted <= set(PUBLISHED) and counted <= set(SYNTHETIC)
    for preset in counted:
        assert "vae" in PUBLISHED[preset] and any(c in PUBLISHED[preset] for c in ("unet", "transformer"))


@pytest.mark.parametrize(("family", "preset"), [("sd", "sd15"), ("sdxl", "sdxl"), ("sd3", "sd35-medium"),
                                                ("flux", "flux-dev")])
def test_the_family_knows_its_published_vae_tile(family: str, preset: str) -> None:
    assert FAMILIES[family].vae_tile == PUBLISHED[preset]["vae"]["fields"]["sample_size"]


@pytest.mark.parametrize("preset", [p for p in PUBLISHED if not p.startswith("_") and "vae" in PUBLISHED[p]
                                    and "sample_size" in PUBLISHED[p]["vae"]["fields"]])
def test_every_preset_tiles_its_decode_at_its_own_published_vae_size(preset: str) -> None:
    """SD 2.1's VAE is published with sample_size 768 where SD 1.5's has 512: the counted answers
    take the preset's own tile, never its family's, so tiling at 768² is said to change nothing."""
    tile = SYNTHETIC[preset].vae_tile or counting_family(SYNTHETIC[preset].family).vae_tile
    assert tile == PUBLISHED[preset]["vae"]["fields"]["sample_size"]


def test_vae_tiling_bounds_a_decode_only_above_the_published_tile() -> None:
    """diffusers decodes SDXL's 1024² latent whole, tiling on or not: the memory floor must not
    count tiling as a saving there, and does at 1536²."""
    sdxl = {"family": "sdxl", "dtype": "fp16", "batch_size": 1}
    assert not tiling_applies({**sdxl, "vae_tiling": True}, 1024, 1024)
    assert tiling_applies({**sdxl, "vae_tiling": True}, 1536, 1536)
    assert floor_bytes({**sdxl, "resolution": "1024x1024", "vae_tiling": True}, "cuda") == \
        floor_bytes({**sdxl, "resolution": "1024x1024", "vae_tiling": False}, "cuda")
    tiled = floor_bytes({**sdxl, "resolution": "2048x2048", "vae_tiling": True}, "cuda")
    whole = floor_bytes({**sdxl, "resolution": "2048x2048", "vae_tiling": False}, "cuda")
    assert tiled is not None and whole is not None and tiled[0] < whole[0]


def test_only_sdxl_decodes_in_fp32_from_fp16() -> None:
    """StableDiffusionXLPipeline upcasts a force_upcast VAE; SD, SD3 and FLUX pipelines decode in
    their dtype (checked in the installed diffusers' sources, not assumed)."""
    import inspect

    import diffusers

    for family in ("sd", "sdxl", "sd3", "flux"):
        source = inspect.getsource(getattr(diffusers, FAMILIES[family].pipeline_class))
        assert ("force_upcast" in source) == FAMILIES[family].vae_upcast, family
