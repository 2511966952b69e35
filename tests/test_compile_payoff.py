"""'Is compile worth it for 20 images?' answered from cells measured with and without compile:
the cold call's compile time divided by the warm per-image saving."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffbench.analysis.payoff import compile_payoffs
from diffbench.analysis.tables import with_metrics
from diffbench.contract.records import run_record
from diffbench.contract.results import ResultsWriter, generation_record, load_results
from diffbench.report.html import build_report


def write(path: Path, eager_s: float, compiled_s: float, compile_s: float) -> None:
    writer = ResultsWriter(path)
    writer.write(run_record("run", "box", [{"index": 0, "name": "NVIDIA H100"}], {"name": "c", "sha256": "0" * 64},
                            {"torch": "2.9", "diffusers": "0.42", "python": "3.11"}, host={"cpu": "x86"}))
    for compiled, seconds in ((False, eager_s), (True, compiled_s)):
        cell = {"model": "sdxl", "source": "s/sdxl", "sampler": "euler", "steps": 20, "resolution": "1024x1024",
                "batch_size": 1, "guidance_scale": 5.0, "seed": 0, "prompt": "p", "offload": "none",
                "compile": compiled, "weights": "pretrained"}
        cell_id = f"compile-{compiled}"
        for repeat, warmup in [(0, True)] + [(r, False) for r in range(6)]:
            wall = seconds + (compile_s if compiled and warmup else 0.0)
            extra = {"compile_s": compile_s if warmup else 0.0, "graphs_compiled": 1 if warmup else 0} if compiled else {}
            record = generation_record(cell_id, cell, repeat, warmup, "ok", wall_s=wall, step_s=[seconds / 20] * 20,
                                       evaluations=20, runtime={"device": "cuda:0", "dtype": "fp16",
                                                                "gpu_name": "NVIDIA H100"}, **extra)
            record["run_id"] = "run"
            writer.write(record)
    writer.close()


def test_compile_pays_off_after_the_images_its_compile_time_buys(tmp_path: Path) -> None:
    write(tmp_path / "r.jsonl", eager_s=1.0, compiled_s=0.8, compile_s=30.0)
    [payoff] = compile_payoffs(with_metrics(load_results([tmp_path]).generations))
    assert payoff.compile_s == pytest.approx(30.0) and payoff.break_even_images == pytest.approx(150.0)
    assert "worth it from 150 images on" in payoff.sentence()
    page = build_report([tmp_path], tmp_path / "report.html").path.read_text()
    assert "worth it from 150 images on" in page


def test_compile_that_is_not_faster_never_pays_off(tmp_path: Path) -> None:
    write(tmp_path / "r.jsonl", eager_s=1.0, compiled_s=1.05, compile_s=30.0)
    [payoff] = compile_payoffs(with_metrics(load_results([tmp_path]).generations))
    assert payoff.break_even_images is None and "never pays off" in payoff.sentence()


def test_no_payoff_without_both_settings(tmp_path: Path) -> None:
    write(tmp_path / "r.jsonl", eager_s=1.0, compiled_s=0.8, compile_s=30.0)
    frame = with_metrics(load_results([tmp_path]).generations)
    assert compile_payoffs(frame[frame["compile"].astype(bool)]) == []
