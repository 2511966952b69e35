"""torch.compile as people meet it: the first call compiles (the cold generation records how long
that took and how many graphs), later calls of the same shape compile nothing, and a new
resolution recompiles. Real inductor compilation of the tiny UNet on the CPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from diffbench.contract.results import read_records
from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="torch.compile on the CPU needs a C compiler")

SUITE = """\
name: compile
models:
  t: {source: "builtin:tiny-sd"}
defaults: {steps: 2, device: cpu, sampler: euler, compile: true}
matrix:
  resolution: [64x64, 96x96]
warmup: 1
repeats: 2
"""


def test_compile_cost_is_recorded_cold_and_recompiles_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    outcome = run_suite(load_suite(path), tmp_path / "out")
    generations = [r for r in read_records(outcome.results_path) if r["type"] == "generation"]
    assert all(g["status"] == "ok" for g in generations), [g.get("error") for g in generations]
    first, second = [[g for g in generations if g["cell"]["resolution"] == size] for size in ("64x64", "96x96")]

    cold = first[0]
    assert cold["warmup"] and cold["graphs_compiled"] >= 1 and cold["compile_s"] > 0
    assert cold["compile_s"] < cold["wall_s"]  # compiling happened inside that generation
    for warm in first[1:]:
        assert warm["graphs_compiled"] == 0 and warm["compile_s"] == 0
    assert second[0]["graphs_compiled"] >= 1  # a new resolution recompiles
    assert all(g["graphs_compiled"] == 0 for g in second[1:])
