"""A generation whose denoiser overflows (NaN latents) is timed, but its blank picture is never
an "ok" figure: torchao's int8 weight-only SDXL in fp16 did exactly this on an H200 and was
recorded "ok" at 1.4 s/image with an SSIM of 0.00003 to the unquantized picture."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from diffbench.contract.results import read_records
from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite
from diffbench.models.builtin import builtin_path


def _folder_with_nan_output_layer(tmp_path: Path) -> Path:
    """The tiny SD pipeline as a local folder, its UNet's last convolution holding one NaN: every
    step's noise prediction, and so the latents, become NaN (what an fp16 overflow produces)."""
    folder = tmp_path / "overflowing"
    shutil.copytree(builtin_path("tiny-sd"), folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(weights))
    tensors["conv_out.weight"] = tensors["conv_out.weight"].clone()
    tensors["conv_out.weight"].view(-1)[0] = float("nan")
    save_file(tensors, str(weights))
    return folder


def test_nan_latents_are_an_error_with_the_reason_and_a_sound_model_is_ok(tmp_path: Path) -> None:
    folder = _folder_with_nan_output_layer(tmp_path)
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: blank\nmodels:\n  broken: {{source: '{folder}'}}\n  sound: {{source: 'builtin:tiny-sd'}}\n"
                     "matrix: {model: [broken, sound]}\n"
                     "defaults: {steps: 2, device: cpu, resolution: 64x64}\nwarmup: 1\nrepeats: 2\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    records = [r for r in read_records(outcome.results_path) if r["type"] == "generation"]
    broken = [r for r in records if r["cell"]["model"] == "broken"]
    sound = [r for r in records if r["cell"]["model"] == "sound"]
    assert [r["status"] for r in broken] == ["error"]  # the warm-up already shows it; no repeats wasted
    assert "NaN or infinite values, so the picture is blank" in broken[0]["error"]
    assert [r["status"] for r in sound] == ["ok", "ok", "ok"]


def test_the_probe_sees_the_last_steps_latents_without_copying_them() -> None:
    from diffusers import StableDiffusionPipeline

    from diffbench.measure.clocks import clock_for
    from diffbench.measure.probe import PipelineProbe

    pipe = StableDiffusionPipeline.from_pretrained(builtin_path("tiny-sd"))
    probe = PipelineProbe(pipe, clock_for(torch.device("cpu")))
    probe.begin()
    latents = torch.ones(2, 2)
    probe.on_step_end(pipe, 0, None, {"latents": latents})
    assert probe.last_latents is latents
    probe.end()
    assert probe.latents_finite() is True and probe.latents_finite() is None  # read once, then released
    probe.begin()
    probe.on_step_end(pipe, 0, None, {"latents": torch.tensor([1.0, float("inf")])})
    probe.end()
    assert probe.latents_finite() is False
    probe.remove()
