"""Weight quantization (torchao, optimum-quanto) on real tiny pipelines: applied, counted, recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from diffbench.contract.results import read_records
from diffbench.execute.runner import run_suite
from diffbench.intake.plan import make_plan
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError
from diffbench.rules.quantization import QuantizeError, canonical_quantization, parse_quantization

SUITE = """
name: quantize
models:
  flux: {source: "builtin:tiny-flux"}
  sd: {source: "builtin:tiny-sd"}
defaults: {device: cpu, steps: 3}
warmup: 0
repeats: 2
matrix:
  model: [flux, sd]
  quantize: [none, quanto:int8, torchao:int8, quanto:int4, quanto:fp8@all]
"""


@pytest.fixture(scope="module")
def results_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("quantize")
    (folder / "q.yaml").write_text(SUITE)
    return run_suite(load_suite(folder / "q.yaml"), folder / "out").results_path


@pytest.fixture(scope="module")
def quantized(results_path: Path) -> list[dict[str, Any]]:
    return [r for r in read_records(results_path) if r["type"] == "generation"]


def test_spellings_and_mistakes() -> None:
    assert canonical_quantization(" TorchAO:INT8 ") == "torchao:int8"
    assert canonical_quantization("quanto:int4@all") == "quanto:int4@all"
    assert canonical_quantization("none") == "none" and parse_quantization("none") is None
    assert canonical_quantization("BNB:NF4") == "bnb:nf4"
    for wrong in ("torchao", "torchao:int3", "bnb:fp4", "quanto:int8@unet"):
        with pytest.raises(QuantizeError, match="allowed: none, or torchao:int8"):
            parse_quantization(wrong)


def test_a_bad_value_is_a_suite_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: b\nmodels:\n  sd: {source: 'builtin:tiny-sd'}\nmatrix:\n  quantize: [none, ao:int8]\n")
    with pytest.raises(SuiteError, match=r"bad.yaml:5: field 'matrix.quantize\[1\]': given 'ao:int8'; 'ao:int8' is "
                                         r"not a quantization; allowed: none"):
        load_suite(path)


def test_quantize_none_keeps_cell_ids_and_is_a_load_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text(SUITE)
    plan = make_plan(load_suite(path))
    plain = tmp_path / "plain.yaml"
    plain.write_text(SUITE.replace("  quantize: [none, quanto:int8, torchao:int8, quanto:int4, quanto:fp8@all]\n", ""))
    assert {c.cell_id for c in make_plan(load_suite(plain)).cells} <= {c.cell_id for c in plan.cells}
    assert plan.loads == 10  # each quantization is its own pipeline load


def test_weights_are_quantized_smaller_and_the_generations_run(quantized: list[dict[str, Any]]) -> None:
    assert all(r["status"] == "ok" for r in quantized), [r.get("error") for r in quantized if r["status"] != "ok"]
    by_setting: dict[tuple[str, str], dict[str, Any]] = {}
    for record in quantized:
        by_setting[(record["cell"]["model"], record["cell"]["quantize"])] = record["runtime"].get("quantization")
    for model in ("flux", "sd"):
        assert by_setting[(model, "none")] is None
        int8 = by_setting[(model, "quanto:int8")]
        denoiser = "transformer" if model == "flux" else "unet"
        assert int8["components"] == [denoiser]
        # 8-bit weights with their scales: well under half of the fp32 bytes, never more than a third
        assert int8["weight_bytes_after"] < 0.34 * int8["weight_bytes_before"]
        torchao = by_setting[(model, "torchao:int8")]
        assert torchao["weight_bytes_before"] == int8["weight_bytes_before"]
        if model == "flux":  # a transformer is linear layers: torchao's int8 takes them all
            assert torchao["weight_bytes_after"] < 0.34 * torchao["weight_bytes_before"]
        else:  # torchao's int8 weight-only quantizes linear layers only: a UNet's convolutions stay
            assert int8["weight_bytes_after"] < torchao["weight_bytes_after"] < 0.9 * torchao["weight_bytes_before"]
        int4 = by_setting[(model, "quanto:int4")]
        assert int4["weight_bytes_after"] < int8["weight_bytes_after"]  # 4 bits take less than 8
        every = by_setting[(model, "quanto:fp8@all")]
        assert denoiser in every["components"] and "text_encoder" in every["components"]
        assert every["weight_bytes_before"] > int8["weight_bytes_before"]  # the text encoders are counted too
        assert every["quantize_s"] >= 0


def test_the_denoisers_resident_bytes_are_a_metric_the_report_compares(quantized: list[dict[str, Any]],
                                                                        results_path: Path) -> None:
    from diffbench.analysis.compare import compare, headline
    from diffbench.analysis.tables import cell_summary, with_metrics
    from diffbench.contract.results import load_results

    for record in quantized:
        info, resident = record["runtime"].get("quantization"), record["runtime"]["denoiser_bytes"]
        if info is None:
            plain = next(r for r in quantized if r["cell"]["model"] == record["cell"]["model"]
                         and r["cell"]["quantize"] == "quanto:int8")
            assert resident == plain["runtime"]["quantization"]["weight_bytes_before"]
        elif info["components"] == [("transformer" if record["cell"]["model"] == "flux" else "unet")]:
            assert resident == info["weight_bytes_after"]
    frame = with_metrics(load_results([results_path]).generations)
    summary = cell_summary(frame).set_index(["model", "quantize"])  # the report's table of every setting
    assert summary.loc[("flux", "quanto:int8"), "denoiser_gib"] < 0.34 * summary.loc[("flux", "none"), "denoiser_gib"]
    table = compare(frame, "quantize", baseline="none", metric="denoiser_gib").frame()
    flux_int8 = table[(table["quantize"] == "quanto:int8") & table["context"].str.contains("flux")].iloc[0]
    # counted bytes, the same in both repeats: the ratio is exact, and two generations are enough to say so
    assert flux_int8["ratio"] < 0.34 and flux_int8["ratio_low"] == flux_int8["ratio_high"] == flux_int8["ratio"]
    assert flux_int8["verdict"] == "less"
    sentences = headline(compare(frame, "quantize", baseline="none", metric="denoiser_gib"))
    assert any(s.startswith("[flux · ") and "] quantize=quanto:int8 has " in s and "x less denoiser weights in memory than "
               "quantize=none (counted: "
               "the same in every generation)" in s for s in sentences), sentences


def test_bitsandbytes_off_cuda_is_not_applicable_before_anything_loads(tmp_path: Path) -> None:
    (tmp_path / "bnb.yaml").write_text("name: bnb\nmodels:\n  flux: {source: 'builtin:tiny-flux'}\n"
                                       "defaults: {device: cpu, steps: 2}\nwarmup: 0\nrepeats: 1\n"
                                       "matrix:\n  quantize: [bnb:nf4, bnb:int8@all]\n")
    outcome = run_suite(load_suite(tmp_path / "bnb.yaml"), tmp_path / "out")
    records = [r for r in read_records(outcome.results_path) if r["type"] == "generation"]
    assert sorted(r["cell"]["quantize"] for r in records) == ["bnb:int8@all", "bnb:nf4"]
    for record in records:
        assert record["status"] == "not_applicable"
        assert record["error"] == (f"quantize '{record['cell']['quantize']}' needs a CUDA GPU: bitsandbytes "
                                   "quantizes as the weights move onto one (this cell's device is cpu)")
    loads = [r for r in read_records(outcome.results_path) if r["type"] == "load"]
    assert loads == []  # refused before the weights were read: a load writes its own record


@pytest.mark.parametrize("setting", ["quanto:int8@all", "torchao:int8@all"])
def test_t5s_kept_layers_stay_float_as_transformers_leaves_them(setting: str) -> None:
    """transformers' quantizers never convert a model's `_keep_in_fp32_modules` (T5's feed-forward
    output `wo`, which overflows in low precision): diffbench quantizes the same layers users get."""
    import torch
    from diffusers import DiffusionPipeline

    from diffbench.execute.axes.quantize import apply_quantization
    from diffbench.models.builtin import builtin_path

    pipe = DiffusionPipeline.from_pretrained(builtin_path("tiny-flux"))
    t5 = pipe.text_encoder_2
    assert type(t5)._keep_in_fp32_modules == ["wo"]
    info = apply_quantization(pipe, setting, torch.device("cpu"))
    assert info is not None and "text_encoder_2" in info["components"]
    linear = {name: type(sub) for name, sub in t5.named_modules() if isinstance(sub, torch.nn.Linear)}
    kept = {name: kind for name, kind in linear.items() if name.endswith(".wo")}
    assert kept and all(kind is torch.nn.Linear for kind in kept.values())
    assert all(t5.get_submodule(name).weight.dtype == torch.float32 for name in kept)
    quantized = [name for name in linear if not name.endswith(".wo")]
    if setting.startswith("quanto"):  # quanto swaps the layer class; torchao swaps the weight tensor
        assert quantized and all(linear[name] is not torch.nn.Linear for name in quantized)
    else:
        assert quantized and all(type(t5.get_submodule(name).weight) is not torch.nn.Parameter for name in quantized)
        assert all(type(t5.get_submodule(name).weight) is torch.nn.Parameter for name in kept)
