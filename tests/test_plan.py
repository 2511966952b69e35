"""Matrix expansion, stable ids, include/exclude, ordering by pipeline load."""

from __future__ import annotations

from pathlib import Path

from diffbench.intake.plan import make_plan
from diffbench.intake.suite import load_suite

SUITE = """\
name: plan-test
models:
  a: {source: builtin:tiny-sd}
  b: {source: builtin:tiny-sdxl, defaults: {guidance_scale: 0.0, steps: 2}}
matrix:
  sampler: [euler, dpmpp_2m]
  model: [a, b]
  dtype: [fp32, bf16]
  steps: [2, 3]
exclude:
  - {model: b, dtype: bf16}
include:
  - {model: a, sampler: heun, steps: [2, 5], dtype: fp32}
  - {model: a, sampler: euler, steps: 2, dtype: fp32}
"""


def test_expansion_counts_includes_excludes_and_duplicates(suite_file) -> None:
    plan = make_plan(load_suite(suite_file(SUITE)))
    # 2 samplers x (a: 2 dtypes + b: 1 dtype) x 2 steps = 12, + 2 heun cells; the last include repeats a cell
    assert len(plan.cells) == 14
    assert len(plan.duplicates) == 1
    [duplicate] = plan.duplicates
    # it names the entry that first produced the cell, not just its own id again
    assert duplicate.duplicate_of is not None and duplicate.duplicate_of.startswith(duplicate.cell_id + " (")
    assert "matrix:" in duplicate.duplicate_of or "include:" in duplicate.duplicate_of
    assert not any(c.model_name == "b" and c.settings["dtype"] == "bf16" for c in plan.cells)


def test_defaults_layer_in_order(suite_file) -> None:
    plan = make_plan(load_suite(suite_file(SUITE)))
    b = [c for c in plan.cells if c.model_name == "b"]
    assert {c.settings["guidance_scale"] for c in b} == {0.0}  # model default beats built-in default
    a = [c for c in plan.cells if c.model_name == "a"]
    assert {c.settings["guidance_scale"] for c in a} == {7.5}  # the built-in model's own default
    assert {c.settings["resolution"] for c in a} == {"64x64"}


def test_ids_are_stable_and_depend_only_on_settings(suite_file, tmp_path: Path) -> None:
    first = [c.cell_id for c in make_plan(load_suite(suite_file(SUITE))).cells]
    second = [c.cell_id for c in make_plan(load_suite(suite_file(SUITE, "copy.yaml"))).cells]
    assert first == second and len(set(first)) == len(first)
    renamed = SUITE.replace("  a: {", "  renamed: {").replace("model: a", "model: renamed").replace("[a, b]", "[renamed, b]")
    third = {c.cell_id for c in make_plan(load_suite(suite_file(renamed, "renamed.yaml"))).cells}
    assert set(first) == third  # a model's label is not part of its identity


def test_sampler_spelling_does_not_change_identity(suite_file) -> None:
    one = make_plan(load_suite(suite_file(SUITE)))
    other = make_plan(load_suite(suite_file(SUITE.replace("[euler, dpmpp_2m]", "[Euler, DPM++ 2M]"), "x.yaml")))
    assert [c.cell_id for c in one.cells] == [c.cell_id for c in other.cells]


def test_cells_are_grouped_so_each_pipeline_loads_once(suite_file) -> None:
    plan = make_plan(load_suite(suite_file(SUITE)))
    keys = [c.load_key for c in plan.cells]
    # each load key forms one contiguous run: no reload after moving on
    runs = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    assert len(runs) == len(set(keys)) == plan.loads == 3
    # changing the sampler or steps never needs a new load
    group = [c for c in plan.cells if c.load_key == keys[0]]
    assert len({c.settings["sampler"] for c in group}) > 1 and len({c.settings["steps"] for c in group}) > 1


def test_offload_on_cpu_is_not_applicable_with_reason(suite_file) -> None:
    text = SUITE.replace("  steps: [2, 3]\n", "  steps: [2, 3]\n  offload: [none, model]\n  device: [cpu]\n")
    plan = make_plan(load_suite(suite_file(text)))
    na = [c for c in plan.cells if c.skip_reason]
    assert na and all(c.settings["offload"] == "model" for c in na)
    assert "device is cpu" in na[0].skip_reason


def test_exclude_rules_match_samplers_by_meaning(suite_file) -> None:
    text = SUITE.replace("  - {model: b, dtype: bf16}\n", "  - {model: b, dtype: bf16}\n  - {sampler: Euler, steps: 3}\n")
    plan = make_plan(load_suite(suite_file(text)))
    assert not any(c.settings["sampler"] == "euler" and c.settings["steps"] == 3 for c in plan.cells)
    assert any(c.settings["sampler"] == "euler" and c.settings["steps"] == 2 for c in plan.cells)


def test_plan_marks_what_run_would_refuse_on_this_host_with_the_workers_reason(tmp_path: Path) -> None:
    """flux-12gb on a host without an NVIDIA GPU: device auto is the CPU here, so every cell (all cap
    CUDA memory) is not applicable, said by plan (no torch, no worker: 0.74 s on the development VM)
    with the reason the worker gives."""
    import json
    import subprocess
    import sys

    from diffbench.hardware import nvml
    from diffbench.rules.applicability import setting_problem

    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "plan", "flux-12gb", "--json"],
                            capture_output=True, text=True, timeout=120, check=True)
    cells = json.loads(result.stdout)["cells"]
    if nvml.nvml() is None:  # this machine (CI): no NVIDIA GPU
        worker_says = setting_problem({"vram_limit": "12GiB"}, "cpu")
        assert all(c["not_applicable"] == f"{worker_says} (device auto is cpu on this host)" for c in cells)
    assert len(cells) == 18
    suite = tmp_path / "bnb.yaml"
    suite.write_text("name: q\nmodels:\n  t: {source: 'builtin:tiny-sd'}\ndefaults: {device: cpu}\n"
                     "matrix:\n  quantize: [bnb:nf4, none]\n")
    plan = make_plan(load_suite(suite))
    reasons = {c.settings["quantize"]: c.skip_reason for c in plan.cells}
    assert reasons["none"] is None and "needs a CUDA GPU: bitsandbytes" in str(reasons["bnb:nf4"])
