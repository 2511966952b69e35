"""Single-file checkpoints in the layout people download (A1111, ComfyUI, Civitai): the tiny SD
pipeline written as an LDM-layout .safetensors file loads back by path, offline, with its family
read from the tensor names, and draws exactly the folder-loaded pipeline's picture."""

from __future__ import annotations

from pathlib import Path

import pytest
from ldm_layout import write_sd_checkpoint, write_sdxl_checkpoint
from pictures import same_picture
from safetensors.torch import save_file

from diffbench.contract.results import read_records
from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError
from diffbench.models.builtin import builtin_path
from diffbench.models.checkpoints import CheckpointError, checkpoint_family, family_from_keys

SUITE = """\
name: single-file
models:
  folder: {{source: "builtin:tiny-sd"}}
  file: {{source: tiny-sd.safetensors, config: "{config}"}}
defaults: {{steps: 4, device: cpu, resolution: 64x64, sampler: euler}}
matrix:
  model: [folder, file]
warmup: 0
repeats: 1
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from diffusers import StableDiffusionPipeline

    folder = tmp_path_factory.mktemp("checkpoint")
    pipe = StableDiffusionPipeline.from_pretrained(builtin_path("tiny-sd"), safety_checker=None)
    return write_sd_checkpoint(pipe, folder / "tiny-sd.safetensors")


@pytest.mark.parametrize(("keys", "family"), [
    (["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.transformer.text_model.x"], "sd"),
    (["model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.0.transformer.x",
      "conditioner.embedders.1.model.x"], "sdxl"),
    (["model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"], "sd3"),
    (["double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight"], "flux"),
    (["model.diffusion_model.double_blocks.0.img_attn.qkv.weight"], "flux"),
    (["encoder.layer.0.weight"], None),
])
def test_the_family_is_read_from_the_tensor_names(keys: list[str], family: str | None) -> None:
    assert family_from_keys(keys) == family


def test_the_written_checkpoint_is_an_sd_checkpoint(checkpoint: Path) -> None:
    assert checkpoint_family(checkpoint) == "sd"


def test_a_file_whose_family_cannot_be_told_asks_for_it(tmp_path: Path) -> None:
    import torch

    save_file({"encoder.weight": torch.zeros(2)}, str(tmp_path / "mystery.safetensors"))
    (tmp_path / "s.yaml").write_text("name: m\nmodels:\n  m: {source: mystery.safetensors}\n")
    with pytest.raises(SuiteError, match=r"s.yaml:3: model 'm': cannot tell the model family of 'mystery.safetensors' "
                                         r"from its tensor names; set family: \(sd, sdxl, sd3, flux\)"):
        load_suite(tmp_path / "s.yaml")
    (tmp_path / "broken.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="not a .safetensors file"):
        checkpoint_family(tmp_path / "broken.safetensors")


def test_a_single_file_checkpoint_draws_the_folder_pipelines_picture(checkpoint: Path) -> None:
    folder = checkpoint.parent
    (folder / "s.yaml").write_text(SUITE.format(config=builtin_path("tiny-sd")))
    suite = load_suite(folder / "s.yaml")
    assert suite.models["file"].family is None  # read from the file, not given
    outcome = run_suite(suite, folder / "out")
    records = {r["cell"]["model"]: r for r in read_records(outcome.results_path) if r["type"] == "generation"}
    assert records["file"]["status"] == "ok", records["file"].get("error")
    assert records["file"]["cell"]["family"] == "sd" and records["file"]["cell"]["weights"] == "pretrained"
    assert records["file"]["evaluations"] == 4
    images = {name: (outcome.results_path.parent / r["image"]).read_bytes() for name, r in records.items()}
    assert same_picture(images["file"], images["folder"])


def test_offline_without_a_config_is_not_applicable_with_the_fix(checkpoint: Path) -> None:
    folder = checkpoint.parent
    (folder / "bare.yaml").write_text("name: bare\nmodels:\n  file: {source: tiny-sd.safetensors}\n"
                                      "defaults: {steps: 2, device: cpu, resolution: 64x64}\nwarmup: 0\nrepeats: 1\n")
    outcome = run_suite(load_suite(folder / "bare.yaml"), folder / "out-bare")  # tests run with HF_HUB_OFFLINE=1
    [record] = [r for r in read_records(outcome.results_path) if r["type"] == "generation"]
    assert record["status"] == "not_applicable"
    assert "needs its family's configuration, and HF_HUB_OFFLINE is set: give config:" in record["error"]


def test_an_sdxl_checkpoint_in_the_civitai_layout_draws_the_folder_pipelines_picture(tmp_path: Path) -> None:
    """SDXL's two text encoders under conditioner.embedders (CLIP-L as transformers names it,
    OpenCLIP with q, k and v in one projection), its UNet with the label embedding, its VAE."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(builtin_path("tiny-sdxl"))
    write_sdxl_checkpoint(pipe, tmp_path / "tiny-sdxl.safetensors")
    (tmp_path / "s.yaml").write_text(SUITE.replace("builtin:tiny-sd", "builtin:tiny-sdxl")
                                     .replace("tiny-sd.safetensors", "tiny-sdxl.safetensors")
                                     .format(config=builtin_path("tiny-sdxl")))
    suite = load_suite(tmp_path / "s.yaml")
    outcome = run_suite(suite, tmp_path / "out")
    records = {r["cell"]["model"]: r for r in read_records(outcome.results_path) if r["type"] == "generation"}
    assert records["file"]["status"] == "ok", records["file"].get("error")
    assert records["file"]["cell"]["family"] == "sdxl"  # read from the tensor names
    images = {name: (outcome.results_path.parent / r["image"]).read_bytes() for name, r in records.items()}
    assert same_picture(images["file"], images["folder"])


def test_a_header_nested_thousands_deep_is_a_one_line_error_in_validate_and_plan(tmp_path: Path) -> None:
    """Red team: a .safetensors whose JSON header nests 100,000 deep raised RecursionError tracebacks."""
    import struct
    import subprocess
    import sys

    header = b"[" * 100_000 + b"]" * 100_000
    (tmp_path / "deep.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError, match="nests too deep"):
        checkpoint_family(tmp_path / "deep.safetensors")
    (tmp_path / "s.yaml").write_text("name: deep\nmodels:\n  m: {source: deep.safetensors}\n")
    for command in ("validate", "plan"):
        result = subprocess.run([sys.executable, "-m", "diffbench.cli", command, str(tmp_path / "s.yaml")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "deep.safetensors" in result.stderr and "nests too deep" in result.stderr
