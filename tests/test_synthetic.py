"""Synthetic full-size architectures: parameter counts against published figures, and a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite
from diffbench.models.synthetic import SYNTHETIC, build_modules, parameter_counts

# Exact counts of the released checkpoints' tensors, as read from them by several public projects
# (the model papers round them: SD 1.x "860M UNet, 123M text encoder"; SDXL "2.6B UNet, 817M
# text encoders"); SD 3.5 Medium: keras-hub's preset metadata (CLIP-L + CLIP-G + MMDiT-X + VAE);
# FLUX.1: "12 billion parameters" (the model cards).
EXACT = {
    ("sd15", "unet"): 859_520_964, ("sd15", "text_encoder"): 123_060_480, ("sd15", "vae"): 83_653_863,
    # SD 2.1: "865M UNet" and OpenCLIP ViT-H's 340M text tower (the released checkpoint's tensors)
    ("sd21", "unet"): 865_910_724, ("sd21", "text_encoder"): 340_387_840, ("sd21", "vae"): 83_653_863,
    # SD3 Medium: "2B" MMDiT; the checkpoint's transformer holds 2,028,328,000
    ("sd3-medium", "transformer"): 2_028_328_000,
    ("sdxl", "unet"): 2_567_463_684, ("sdxl", "text_encoder"): 123_060_480,
    ("sdxl", "text_encoder_2"): 694_659_840, ("sdxl", "vae"): 83_653_863,
}


@pytest.mark.parametrize(("model", "component"), sorted(EXACT))
def test_models_match_their_released_checkpoints(model: str, component: str) -> None:
    counted = parameter_counts(model)[component]
    assert abs(counted - EXACT[(model, component)]) <= 0.01 * EXACT[(model, component)]
    assert counted == EXACT[(model, component)]  # in fact exactly


def test_sdxl_text_encoders_match_the_paper() -> None:
    counts = parameter_counts("sdxl")
    assert abs(counts["text_encoder"] + counts["text_encoder_2"] - 817e6) <= 0.01 * 817e6


def test_sd35_medium_matches_its_published_total() -> None:
    modules = build_modules("sd35-medium")
    total = sum(sum(p.numel() for p in modules[c].parameters())
                for c in ("transformer", "text_encoder", "text_encoder_2", "vae"))
    # The released checkpoint stores the 384x384 positional-embedding table as a tensor, which
    # diffusers keeps as a buffer: count it as the publication does.
    total += modules["transformer"].pos_embed.pos_embed.numel()
    published = SYNTHETIC["sd35-medium"].published["transformer+text_encoder+text_encoder_2+vae"]
    assert abs(total - published) <= 0.01 * published
    assert total == published


@pytest.mark.parametrize("model", ["pixart-sigma", "pixart-alpha"])
def test_pixart_transformers_are_their_published_size(model: str) -> None:
    # "PixArt ... 0.611" billion parameters (the quanto-diffusers post's table)
    assert abs(parameter_counts(model)["transformer"] - 0.611e9) <= 0.005 * 0.611e9


def test_sd35_large_is_its_published_eight_billion() -> None:
    # the model card: "8.1 billion parameters" (the MMDiT; the checkpoint's tensors hold 8.06e9)
    counted = parameter_counts("sd35-large")["transformer"]
    assert abs(counted - 8.1e9) <= 0.01 * 8.1e9


@pytest.mark.parametrize("model", ["flux-schnell", "flux-dev"])
def test_flux_transformer_is_twelve_billion(model: str) -> None:
    counted = parameter_counts(model)["transformer"]
    assert abs(counted - 12e9) <= 0.01 * 12e9


def test_t5_xxl_encoder_is_its_published_size() -> None:
    # T5 v1.1 XXL encoder as used by SD3 and FLUX: 4.76B parameters.
    assert abs(parameter_counts("flux-schnell")["text_encoder_2"] - 4.762e9) <= 0.01 * 4.762e9


def test_a_synthetic_sd15_generates_on_cpu_at_small_resolution(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: synthetic\nmodels:\n  sd15: {source: 'synthetic:sd15'}\n"
                     "defaults: {resolution: 64x64, steps: 1, device: cpu}\nwarmup: 0\nrepeats: 1\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    [record] = outcome.records
    assert record["status"] == "ok", record["error"]
    assert record["cell"]["weights"] == "random" and record["cell"]["source"] == "synthetic:sd15"
    assert record["evaluations"] == 1 and record["wall_s"] > 0
    # the full-size UNet, counted at 64x64 (8x8 latents, batch 2): tens of GFLOPs per call
    assert record["flops_per_denoiser_call"] > 1e10
    assert record["peak_host_rss_bytes"] > 3 * 2**30  # a billion fp32 parameters are in memory


def test_materialise_casts_before_allocating() -> None:
    """Found on an H200: building in fp32 then casting left the fp32 copy in the allocator's cache."""
    import torch

    from diffbench.models.synthetic import materialise

    with torch.device("meta"):
        module = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.LayerNorm(64))
    allocated: list[torch.dtype] = []
    original = torch.nn.Module.to_empty

    def spy(self: torch.nn.Module, *args: object, **kwargs: object) -> torch.nn.Module:
        allocated.extend(p.dtype for p in self.parameters())
        return original(self, *args, **kwargs)

    torch.nn.Module.to_empty = spy  # type: ignore[method-assign]
    try:
        built = materialise(module, "cpu", torch.bfloat16, seed=0)
    finally:
        torch.nn.Module.to_empty = original  # type: ignore[method-assign]
    assert allocated and set(allocated) == {torch.bfloat16}
    weight = built[0].weight.float()
    assert abs(weight.std().item() - 1 / 8) < 0.02  # N(0, 1/fan_in) with fan_in 64
    assert torch.all(built[0].bias == 0) and torch.all(built[1].weight == 1)


def test_builtin_cache_is_kept_apart_per_library_versions() -> None:
    """A folder written by transformers 5 must never be handed to transformers 4 (which cannot read it)."""
    from importlib import metadata

    from diffbench.models.builtin import builtin_path

    folder = builtin_path("tiny-sd")
    assert f"d{metadata.version('diffusers')}" in folder.name
    assert f"t{metadata.version('transformers')}" in folder.name
    assert (folder / "model_index.json").is_file()


def test_wan_transformers_match_their_released_sizes() -> None:
    """Wan 2.1 T2V: the names round. 1.3B is 1.42B parameters (its bf16 transformer is 2.84 GB,
    localmodel-run.pages.dev/model/wan-2-1-t2v-1-3b); 14B is 14.3B."""
    small, large = parameter_counts("wan-1.3b"), parameter_counts("wan-14b")
    assert abs(2 * small["transformer"] - 2.84e9) <= 0.01 * 2.84e9
    assert abs(large["transformer"] - 14e9) <= 0.03 * 14e9
    assert small["vae"] == large["vae"] and abs(small["vae"] - 127e6) <= 0.01 * 127e6  # Wan-VAE: 127M
    assert abs(small["text_encoder"] - 5.68e9) <= 0.01 * 5.68e9  # UMT5-XXL's encoder


def test_ltx_video_transformer_is_two_billion() -> None:
    counts = parameter_counts("ltx-video")
    assert abs(counts["transformer"] - 2e9) <= 0.05 * 2e9
    assert counts["text_encoder"] == parameter_counts("flux-schnell")["text_encoder_2"]  # the same T5-XXL
