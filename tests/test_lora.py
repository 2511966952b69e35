"""LoRAs as an axis: tiny LoRAs written by the test (peft, safetensors), loaded per cell onto a
loaded tiny SD pipeline, their load and unload times recorded outside the generation time, and
the base model restored exactly for the cells that follow."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from pictures import other_picture, same_picture

from diffbench.contract.results import read_records
from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError
from diffbench.models.builtin import builtin_path
from diffbench.rules.loras import LoraSpecError, canonical_loras

SUITE = """\
name: lora
models:
  t: {source: "builtin:tiny-sd"}
defaults: {steps: 4, device: cpu, resolution: 64x64, sampler: euler}
matrix:
  lora: ["style.safetensors@1", none, "style.safetensors@0", "style.safetensors@0.5+detail.safetensors@0.5"]
warmup: 0
repeats: 1
"""


def write_lora(folder: Path, name: str, seed: int) -> None:
    """A rank-4 LoRA on the tiny UNet's attention projections, with non-zero weights."""
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(builtin_path("tiny-sd"))
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter_name, parameter in pipe.unet.named_parameters():
            if "lora_" in parameter_name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(pipe.unet),
                                              weight_name=name, safe_serialization=True)


@pytest.mark.parametrize(("text", "canonical"), [
    ("none", "none"), ("a.safetensors", "a.safetensors@1"), ("a.safetensors@0.80", "a.safetensors@0.8"),
    ("a.safetensors@0.5 + b.safetensors@0.25", "a.safetensors@0.5+b.safetensors@0.25"),
    ("FUSE: a.safetensors@0.80", "fuse:a.safetensors@0.8"),
])
def test_lora_settings_have_one_spelling(text: str, canonical: str) -> None:
    assert canonical_loras(text) == canonical


@pytest.mark.parametrize(("text", "message"), [
    ("style.ckpt@1", "a LoRA is a .safetensors file"),
    ("a.safetensors@strong", "must be a number"),
    ("a.safetensors+a.safetensors", "named twice"),
    ("fuse:none", "'fuse:' needs LoRA files after it"),
])
def test_a_bad_lora_setting_says_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(LoraSpecError, match=message):
        canonical_loras(text)


def test_a_missing_lora_file_fails_validation_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    with pytest.raises(SuiteError, match=r"s.yaml:6: field 'matrix.lora\[0\]': LoRA file 'style.safetensors' not found"):
        load_suite(path)


def test_loras_apply_per_cell_and_leave_the_base_model_untouched(tmp_path: Path) -> None:
    write_lora(tmp_path, "style.safetensors", seed=1)
    write_lora(tmp_path, "detail.safetensors", seed=2)
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    outcome = run_suite(load_suite(path), tmp_path / "out")
    records = {r["cell"]["lora"]: r for r in read_records(outcome.results_path) if r["type"] == "generation"}
    for record in records.values():
        assert record["status"] == "ok", record.get("error")
    image = {lora: (outcome.results_path.parent / r["image"]).read_bytes() for lora, r in records.items()}

    styled, zero, pair = records["style.safetensors@1"], records["style.safetensors@0"], records[
        "style.safetensors@0.5+detail.safetensors@0.5"]
    assert other_picture(image["style.safetensors@1"], image["none"])  # the LoRA changes the picture
    assert image["style.safetensors@0"] == image["none"]  # at scale 0 it adds exactly nothing: same process, same weights
    assert all(other_picture(image[pair["cell"]["lora"]], image[k]) for k in ("none", "style.safetensors@1"))
    assert styled["lora_load_s"] > 0 and "lora_unload_s" not in styled  # the first cell had none to remove
    assert records["none"]["lora_unload_s"] > 0 and "lora_load_s" not in records["none"]
    assert zero["lora_load_s"] > 0 and pair["lora_unload_s"] > 0
    for record in records.values():  # loading is not generating
        assert abs(sum(record["phases_s"].values()) - record["wall_s"]) <= 0.05 * record["wall_s"]

    # The cell without a LoRA ran after a LoRA was unloaded: its picture is the untouched model's.
    alone = tmp_path / "alone.yaml"
    alone.write_text(SUITE.replace('["style.safetensors@1", none, "style.safetensors@0", '
                                   '"style.safetensors@0.5+detail.safetensors@0.5"]', "[none]"))
    fresh = run_suite(load_suite(alone), tmp_path / "out-alone")
    record = next(r for r in read_records(fresh.results_path) if r["type"] == "generation")
    assert same_picture(fresh.results_path.parent / record["image"], image["none"])


def test_a_fused_lora_draws_the_unfused_picture_from_merged_weights_in_a_load_of_its_own(tmp_path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    from diffbench.intake.plan import make_plan

    write_lora(tmp_path, "style.safetensors", seed=1)
    path = tmp_path / "s.yaml"
    path.write_text(SUITE.replace('["style.safetensors@1", none, "style.safetensors@0", '
                                  '"style.safetensors@0.5+detail.safetensors@0.5"]',
                                  '["fuse:style.safetensors@1", none, "style.safetensors@1"]'))
    suite = load_suite(path)
    assert make_plan(suite).loads == 2  # the fused setting's weights are its own; the others share one load
    outcome = run_suite(suite, tmp_path / "out")
    records = {r["cell"]["lora"]: r for r in read_records(outcome.results_path) if r["type"] == "generation"}
    assert all(r["status"] == "ok" for r in records.values()), [r.get("error") for r in records.values()]
    fused, unfused, plain = records["fuse:style.safetensors@1"], records["style.safetensors@1"], records["none"]
    assert fused["lora_fuse_s"] > 0 and fused["lora_load_s"] > 0 and "lora_fuse_s" not in unfused

    def pixels(record: dict) -> np.ndarray:
        data = (outcome.results_path.parent / record["image"]).read_bytes()
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=int)

    # merged weights compute the same picture up to float rounding; the base model's is another one
    assert np.abs(pixels(fused) - pixels(unfused)).max() <= 2
    assert np.abs(pixels(plain) - pixels(unfused)).mean() > 5


def _lora_header_with_data(data: bytes, dtype: str = "F32") -> bytes:
    """A LoRA-looking .safetensors file: one 2x2 tensor in its header, followed by `data`."""
    header = json.dumps({"unet.lora_A.weight": {"dtype": dtype, "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    return struct.pack("<Q", len(header)) + header + data


@pytest.mark.parametrize(("content", "message"), [
    (b"not a safetensors file at all", "not a .safetensors file"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1", r"not a .safetensors file \(header length 16 in a file of 15"),
    (b"\x07\x00\x00\x00\x00\x00\x00\x00{\"a\": 1", "cannot read its .safetensors header"),
    # N14: a valid header whose data is cut short (the size check against the largest data offset)
    (_lora_header_with_data(b"\x00" * 10), "lies at bytes 0-16 of a data section of 10"),
    (_lora_header_with_data(b"\x00" * 16, dtype="Q9"), "has dtype 'Q9'"),
])
def test_a_broken_lora_file_fails_validation_with_its_line(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "style.safetensors").write_bytes(content)
    (tmp_path / "detail.safetensors").write_bytes(content)
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    with pytest.raises(SuiteError, match=r"s.yaml:6: field 'matrix.lora\[0\]': LoRA file .*" + message):
        load_suite(path)


def test_a_safetensors_file_without_lora_weights_is_no_lora(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"conv.weight": torch.zeros(2, 2)}, str(tmp_path / "style.safetensors"))
    write_lora(tmp_path, "detail.safetensors", seed=2)
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    with pytest.raises(SuiteError, match=r"s.yaml:6: .*style.safetensors: holds no LoRA weights"):
        load_suite(path)
