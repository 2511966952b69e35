"""Denoiser files with a base pipeline: GGUF (the quantized builds people run FLUX from on small
cards) and a transformer-only .safetensors, written by the test from the tiny FLUX pipeline's own
weights with the gguf package, loaded back by path offline, and drawing the picture the pipeline
draws: exactly where the file holds the same floats, within quantization error where it holds Q8_0."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pictures import same_picture

from diffbench.contract.results import load_results, read_records
from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError
from diffbench.models.builtin import builtin_path
from diffbench.models.gguf_header import GgufError, gguf_tensors, weight_format

gguf = pytest.importorskip("gguf")

SUITE = """\
name: gguf
models:
  folder: {source: "builtin:tiny-flux"}
  f32: {source: flux-F32.gguf, base: "builtin:tiny-flux"}
  q8: {source: flux-Q8_0.gguf, base: "builtin:tiny-flux"}
  shifted: {source: flux-shifted-F32.gguf, base: "builtin:tiny-flux"}
  plain: {source: flux-transformer.safetensors, base: "builtin:tiny-flux"}
defaults: {steps: 3, device: cpu, resolution: 64x64}
matrix:
  model: [folder, f32, q8, shifted, plain]
  quantize: [none, quanto:int8]
exclude:
  - {model: [folder, plain], quantize: quanto:int8}
warmup: 0
repeats: 1
"""


def write_gguf(state: dict[str, Any], path: Path, block_format: str | None) -> Path:
    """`state` as a GGUF file: 2-D weights in `block_format` (Q8_0) where their rows fit its blocks,
    everything else (and all of it without a format) as F32."""
    kind = gguf.GGMLQuantizationType
    writer = gguf.GGUFWriter(str(path), arch="flux")
    for name, tensor in state.items():
        values = tensor.float().numpy()
        if block_format and values.ndim == 2 and values.shape[-1] % 32 == 0:
            quant = getattr(kind, block_format)
            writer.add_tensor(name, gguf.quants.quantize(values, quant), raw_dtype=quant)
        else:
            writer.add_tensor(name, values.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from diffusers import FluxTransformer2DModel
    from safetensors.torch import save_file

    here = tmp_path_factory.mktemp("gguf")
    state = FluxTransformer2DModel.from_pretrained(builtin_path("tiny-flux"), subfolder="transformer").state_dict()
    write_gguf(state, here / "flux-F32.gguf", None)
    write_gguf(state, here / "flux-Q8_0.gguf", "Q8_0")
    write_gguf({k: v * 1.5 if v.ndim == 2 else v for k, v in state.items()}, here / "flux-shifted-F32.gguf", None)
    save_file({k: v.contiguous() for k, v in state.items()}, str(here / "flux-transformer.safetensors"))
    (here / "s.yaml").write_text(SUITE)
    assert torch.equal(state["proj_out.weight"], state["proj_out.weight"])  # the fixture wrote real tensors
    return here


@pytest.fixture(scope="module")
def records(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    outcome = run_suite(load_suite(folder / "s.yaml"), folder / "out")
    found = {(r["cell"]["model"], r["cell"]["quantize"]): r
             for r in read_records(outcome.results_path) if r["type"] == "generation"}
    for record in found.values():
        record["_image"] = outcome.results_path.parent / record["image"] if record.get("image") else None
    return found


def pixels(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"), dtype=int)


def test_the_header_is_read_without_the_gguf_package(folder: Path) -> None:
    tensors = gguf_tensors(folder / "flux-Q8_0.gguf")
    reader = gguf.GGUFReader(str(folder / "flux-Q8_0.gguf"))  # the package's own reader agrees
    assert [t.name for t in tensors] == [t.name for t in reader.tensors]
    assert [t.type_name for t in tensors] == [t.tensor_type.name for t in reader.tensors]
    assert [t.shape for t in tensors] == [tuple(int(d) for d in reversed(t.shape)) for t in reader.tensors]
    assert weight_format(tensors) == "Q8_0"
    assert weight_format(gguf_tensors(folder / "flux-F32.gguf")) == "F32"


def test_the_same_floats_draw_the_same_picture_and_q8_a_close_one(records: dict[tuple[str, str], Any]) -> None:
    assert all(r["status"] == "ok" for (_, q), r in records.items() if q == "none"), \
        {k: r.get("error") for k, r in records.items() if r["status"] != "ok"}
    reference = records[("folder", "none")]["_image"]
    assert same_picture(records[("f32", "none")]["_image"], reference)
    assert same_picture(records[("plain", "none")]["_image"], reference)
    q8 = np.abs(pixels(records[("q8", "none")]["_image"]) - pixels(records[("folder", "none")]["_image"]))
    shifted = np.abs(pixels(records[("shifted", "none")]["_image"]) - pixels(records[("folder", "none")]["_image"]))
    # the file's weights are the ones that ran: other weights draw another picture, Q8_0 nearly the same one
    assert shifted.mean() > 5 * max(q8.mean(), 0.2)
    assert q8.max() <= 8


def test_the_file_format_and_its_resident_bytes_are_recorded(records: dict[tuple[str, str], Any]) -> None:
    q8, f32 = records[("q8", "none")]["runtime"]["quantization"], records[("f32", "none")]["runtime"]["quantization"]
    assert q8["quantize"] == "gguf:Q8_0" and f32["quantize"] == "gguf:F32"
    assert q8["components"] == ["transformer"]
    # Q8_0 keeps 34 bytes per 32 weights (an fp16 scale per block): about 0.27 of fp32 where it applies
    assert 0.2 * f32["weight_bytes_after"] < q8["weight_bytes_after"] < 0.5 * f32["weight_bytes_after"]
    assert records[("folder", "none")]["runtime"].get("quantization") is None
    assert records[("q8", "none")]["cell"]["weights"] == "random"  # the base is a random tiny pipeline
    assert records[("q8", "none")]["cell"]["base"] == "builtin:tiny-flux" and "base" not in records[("folder", "none")]["cell"]


def test_quantizing_a_gguf_denoiser_again_is_not_applicable(records: dict[tuple[str, str], Any]) -> None:
    again = records[("q8", "quanto:int8")]
    assert again["status"] == "not_applicable"
    assert "already quantized (Q8_0, from its .gguf file)" in again["error"]


@pytest.mark.parametrize(("model", "message"), [
    ("{source: flux-Q8_0.gguf}", r"model 'm': 'flux-Q8_0.gguf' holds a denoiser only: set base: to the pipeline"),
    ("{source: flux-Q8_0.gguf, base: 'synthetic:flux-schnell'}",
     r"model 'm': base: 'synthetic:flux-schnell' is a synthetic source; a base is a whole pipeline"),
    ("{source: flux-Q8_0.gguf, base: 'builtin:tiny-nothing'}", r"model 'm': base: unknown built-in 'tiny-nothing'"),
    ("{source: 'builtin:tiny-sd', base: 'builtin:tiny-flux'}", r"model 'm': base: applies to a denoiser file"),
    ("{source: missing.gguf, base: 'builtin:tiny-flux'}", r"model 'm': 'missing.gguf' does not exist"),
    ("{source: broken.gguf, base: 'builtin:tiny-flux'}", r"model 'm': .*broken.gguf: the GGUF header ends early"),
    ("{source: fake.gguf, base: 'builtin:tiny-flux'}", r"model 'm': .*fake.gguf: not a GGUF file"),
    # a transformer-only .safetensors is read at validate too, not after a worker started
    ("{source: broken.safetensors, base: 'builtin:tiny-flux'}", r"model 'm': .*broken.safetensors"),
    # a base folder whose model_index.json names another library for its denoiser: never imported
    # (the 'this' module prints the Zen of Python when imported: an import side effect)
    ("{source: flux-transformer.safetensors, base: evil-base}",
     r"model 'm': base: .*model_index.json: the 'transformer' entry names 'this'.'Transformer'; a denoiser file "
     r"is loaded only into a diffusers class"),
])
def test_mistakes_are_one_line_errors_naming_the_field(folder: Path, model: str, message: str) -> None:
    import json
    import shutil

    whole = (folder / "flux-Q8_0.gguf").read_bytes()
    (folder / "broken.gguf").write_bytes(whole[:200])  # a download cut short inside the header
    (folder / "fake.gguf").write_bytes(b"<html>not found</html>")
    (folder / "broken.safetensors").write_bytes((folder / "flux-transformer.safetensors").read_bytes()[:100])
    evil = folder / "evil-base"
    if not evil.exists():
        shutil.copytree(builtin_path("tiny-flux"), evil)
        index = json.loads((evil / "model_index.json").read_text())
        index["transformer"] = ["this", "Transformer"]
        (evil / "model_index.json").write_text(json.dumps(index))
    (folder / "bad.yaml").write_text(f"name: b\nmodels:\n  m: {model}\n")
    with pytest.raises(SuiteError, match=r"bad.yaml:3: " + message) as caught:
        load_suite(folder / "bad.yaml")
    assert "\n" not in str(caught.value)


def test_a_base_names_the_family_and_the_defaults(folder: Path) -> None:
    from diffbench.intake.plan import make_plan

    plan = make_plan(load_suite(folder / "s.yaml"))
    cells = {c.settings["model"]: c for c in plan.cells if c.settings["quantize"] == "none"}
    assert cells["q8"].family == "flux" and cells["q8"].settings["resolution"] == cells["folder"].settings["resolution"]
    assert len({c.cell_id for c in cells.values()}) == len(cells)  # each file is its own measurement


def test_header_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "v1.gguf").write_bytes(b"GGUF" + (1).to_bytes(4, "little") + bytes(16))
    with pytest.raises(GgufError, match=r"v1.gguf: GGUF version 1; versions 2 and 3 are read"):
        gguf_tensors(tmp_path / "v1.gguf")
    # one metadata entry: an array of arrays of arrays ... 100,000 deep (12 bytes each level)
    nested = (b"GGUF" + (3).to_bytes(4, "little") + (1).to_bytes(8, "little") + (1).to_bytes(8, "little")
              + (1).to_bytes(8, "little") + b"k" + (9).to_bytes(4, "little")
              + ((9).to_bytes(4, "little") + (1).to_bytes(8, "little")) * 100_000)
    (tmp_path / "nested.gguf").write_bytes(nested)
    with pytest.raises(GgufError, match=r"nested.gguf: GGUF metadata nested 9 arrays deep"):
        gguf_tensors(tmp_path / "nested.gguf")
    (tmp_path / "empty.gguf").write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(16))
    with pytest.raises(GgufError, match=r"empty.gguf: a GGUF file with no tensors"):
        gguf_tensors(tmp_path / "empty.gguf")


def _small_gguf() -> bytes:
    """A real GGUF file of a few tensors and metadata of every kind, written by the gguf package."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "small.gguf"
        writer = gguf.GGUFWriter(str(path), arch="flux")
        writer.add_string("general.name", "tiny")
        writer.add_array("general.tags", ["a", "b"])
        writer.add_uint32("flux.blocks", 2)
        writer.add_float32("flux.scale", 0.5)
        writer.add_tensor("a.weight", gguf.quants.quantize(np.ones((4, 32), np.float32), gguf.GGMLQuantizationType.Q8_0),
                          raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("a.bias", np.zeros(4, np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


SMALL = _small_gguf()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(SMALL)), flips=st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, 255)),
                                                     max_size=4))
def test_a_damaged_header_is_a_one_line_error_never_a_crash(tmp_path: Path, cut: int,
                                                            flips: list[tuple[int, int]]) -> None:
    """Cut short anywhere, or bytes changed anywhere: the header reader returns what it read or
    raises GgufError, never another exception (struct, Unicode, memory)."""
    data = bytearray(SMALL[:cut] if cut < len(SMALL) else SMALL)
    for where, value in flips:
        if where < len(data):
            data[where] = value
    path = tmp_path / "damaged.gguf"
    path.write_bytes(bytes(data))
    try:
        tensors = gguf_tensors(path)
    except GgufError as exc:
        assert "\n" not in str(exc) and "damaged.gguf" in str(exc)
    else:
        assert 1 <= len(tensors) <= 2


def test_the_undamaged_small_file_reads_whole(tmp_path: Path) -> None:
    (tmp_path / "small.gguf").write_bytes(SMALL)  # metadata of every kind is skipped, not misread
    assert [(t.name, t.type_name, t.shape) for t in gguf_tensors(tmp_path / "small.gguf")] == [
        ("a.weight", "Q8_0", (4, 32)), ("a.bias", "F32", (4,))]


def test_a_gguf_file_is_compared_with_its_base_pipeline_on_the_weights_it_keeps(folder: Path,
                                                                                  records: dict[tuple[str, str], Any]) -> None:
    """What people ask of a GGUF file: how much memory does it save against the model it came
    from. The comparison along `model` pairs it with the folder pipeline (same settings apart
    from the model), and the counted weights give an exact ratio."""
    from diffbench.analysis.compare import compare
    from diffbench.analysis.tables import with_metrics

    frame = with_metrics(load_results([next((folder / "out").glob("*.jsonl"))]).generations)
    table = compare(frame, "model", baseline="folder", metric="denoiser_gib")
    [q8] = [row for row in table.rows if row.value == "q8"]  # one context: only quantize=none was measured
    assert table.unpaired == [] and q8.comparison is not None and q8.comparison.exact
    assert 0.2 < q8.comparison.ratio < 0.5 and q8.comparison.verdict == "lower"
