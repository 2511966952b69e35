"""Comparisons across hosts and settings on results files with known timings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from diffbench.analysis.compare import compare, headline
from diffbench.analysis.tables import with_metrics
from diffbench.contract.records import run_record
from diffbench.contract.results import ResultsWriter, generation_record, load_results


def write_host(path: Path, hostname: str, gpu: str, seconds: dict[tuple[str, int], float], repeats: int = 6,
               torch: str = "2.5.0", seed: int = 0) -> None:
    """A results file as a host with `gpu` would write it; timings centred on the given values."""
    rng = np.random.default_rng(seed)
    writer = ResultsWriter(path)
    run_id = f"run-{hostname}"
    writer.write(run_record(run_id, hostname, [{"index": 0, "name": gpu}],
                            {"name": "gpus", "path": "gpus.yaml", "sha256": "0" * 64},
                            {"torch": torch, "diffusers": "0.35.0", "python": "3.11"}, host={"cpu": "x86"}))
    for (sampler, steps), centre in seconds.items():
        cell = {"model": "sdxl", "source": "stabilityai/sdxl", "sampler": sampler, "steps": steps,
                "resolution": "1024x1024", "batch_size": 1, "guidance_scale": 5.0, "seed": 0, "prompt": "p",
                "offload": "none", "weights": "pretrained"}
        for repeat in range(repeats):
            wall = float(centre * rng.normal(1.0, 0.01))
            record = generation_record(f"{sampler}-{steps}", cell, repeat, False, "ok", wall_s=wall,
                                       step_s=[wall * 0.9 / steps] * steps, evaluations=steps,
                                       phases_s={"text_encode": 0.02 * wall, "denoise": 0.9 * wall,
                                                 "decode": 0.07 * wall, "other": 0.01 * wall},
                                       peak_vram_allocated_bytes=9 * 2**30, peak_host_rss_bytes=4 * 2**30,
                                       runtime={"device": "cuda:0", "dtype": "fp16", "gpu_name": gpu})
            record["run_id"] = run_id
            writer.write(record)
    writer.close()


def test_merging_two_hosts_compares_their_gpus(tmp_path: Path) -> None:
    write_host(tmp_path / "a.jsonl", "box-4090", "NVIDIA GeForce RTX 4090", {("euler", 30): 3.0, ("euler", 20): 2.0})
    write_host(tmp_path / "b.jsonl", "box-3060", "NVIDIA GeForce RTX 3060", {("euler", 30): 9.0, ("euler", 20): 6.0},
               seed=1)
    frame = with_metrics(load_results([tmp_path]).generations)
    table = compare(frame, "gpu", baseline="NVIDIA GeForce RTX 4090")
    result = table.frame()
    slower = result[result["gpu"] == "NVIDIA GeForce RTX 3060"]
    assert len(slower) == 2 and set(slower["verdict"]) == {"slower"}
    assert np.allclose(slower["ratio"], 3.0, rtol=0.03)
    assert all(low < 3.0 < high for low, high in zip(slower["ratio_low"], slower["ratio_high"]))
    assert any("3.0" in line and "slower than NVIDIA GeForce RTX 4090" in line for line in headline(table))


def test_settings_that_differ_beyond_the_axis_are_never_paired(tmp_path: Path) -> None:
    write_host(tmp_path / "a.jsonl", "box-4090", "NVIDIA GeForce RTX 4090", {("euler", 30): 3.0})
    write_host(tmp_path / "b.jsonl", "box-3060", "NVIDIA GeForce RTX 3060", {("euler", 20): 6.0}, seed=1)
    table = compare(with_metrics(load_results([tmp_path]).generations), "gpu")
    assert table.rows == []
    assert len(table.unpaired) == 2


def test_the_terminal_compare_and_markdown_export(tmp_path: Path) -> None:
    write_host(tmp_path / "a.jsonl", "box-4090", "NVIDIA GeForce RTX 4090", {("euler", 30): 3.0, ("ddim", 30): 3.3})
    out = subprocess.run([sys.executable, "-m", "diffbench.cli", "compare", str(tmp_path), "--by", "sampler",
                          "--baseline", "euler"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ddim is 1.10x slower than euler" in out.stdout
    md = subprocess.run([sys.executable, "-m", "diffbench.cli", "export", str(tmp_path), "--format", "markdown"],
                        capture_output=True, text=True, timeout=120)
    lines = md.stdout.strip().splitlines()
    # an issue's paste: one setting column and the headline figures, not every field
    assert lines[0].startswith("| setting | hardware | n | s_per_image |") and lines[1].startswith("| --- |")
    assert len(lines) == 4 and lines[0].count("|") <= 12 and {"| euler |", "| ddim |"} <= {
        line[:line.index("|", 2) + 1] for line in lines[2:]}
    csv_path = tmp_path / "g.csv"
    subprocess.run([sys.executable, "-m", "diffbench.cli", "export", str(tmp_path), "--format", "csv", "--level",
                    "generations", "-o", str(csv_path)], check=True, timeout=120)
    import pandas as pd

    assert len(pd.read_csv(csv_path)) == 12


def test_parquet_export_round_trips(tmp_path: Path) -> None:
    import pandas as pd

    write_host(tmp_path / "a.jsonl", "box", "NVIDIA GeForce RTX 4090", {("euler", 30): 3.0, ("ddim", 30): 3.3})
    target = tmp_path / "steps.parquet"
    subprocess.run([sys.executable, "-m", "diffbench.cli", "export", str(tmp_path), "--format", "parquet",
                    "--level", "steps", "-o", str(target)], check=True, timeout=120)
    steps = pd.read_parquet(target)
    assert len(steps) == 2 * 6 * 30 and set(steps.columns) >= {"cell_id", "repeat", "step", "seconds", "hostname"}
    # each step carries its cell's settings: a spreadsheet groups them without the cell table
    assert set(steps.columns) >= {"model", "sampler", "steps", "task", "frames"}
    assert set(steps.groupby("sampler")["cell_id"].nunique()) == {1} and set(steps["sampler"]) == {"euler", "ddim"}


def test_bad_filter_and_missing_results_exit_2(tmp_path: Path) -> None:
    write_host(tmp_path / "a.jsonl", "h", "g", {("euler", 30): 3.0})
    for args in (["compare", str(tmp_path), "--by", "sampler", "--filter", "colour=red"],
                 ["report", str(tmp_path / "nope")], ["export", str(tmp_path), "--format", "parquet"]):
        out = subprocess.run([sys.executable, "-m", "diffbench.cli", *args], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr


def test_report_command_with_compare_baseline_and_filter(tmp_path: Path) -> None:
    write_host(tmp_path / "a.jsonl", "box-4090", "NVIDIA GeForce RTX 4090",
               {("euler", 30): 3.0, ("ddim", 30): 3.3, ("euler", 20): 2.0, ("ddim", 20): 2.2})
    output = tmp_path / "r.html"
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "report", str(tmp_path), "-o", str(output),
                             "--compare", "sampler", "--baseline", "ddim", "--filter", "steps=30",
                             "--filter", "sampler=Euler,DDIM",
                             "--title", "Samplers <b>"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    page = output.read_text()
    assert "By sampler" in page and "seconds per image" in page and "By steps" not in page
    assert "euler is 1.10x faster than ddim" in page
    assert "Samplers &lt;b&gt;" in page
    assert "20 steps" not in page


def test_charts_use_whole_step_ticks_zero_based_axes_and_short_labels() -> None:
    from diffbench.report import figures

    ticks = figures.integer_axis([4, 8, 4, 8])
    assert ticks["tickvals"] == [4, 8] and ticks["ticktext"] == ["4", "8"]
    many = figures.integer_axis(range(0, 100))
    assert many["dtick"] >= 1 and isinstance(many["dtick"], int)
    layout = figures._layout("t", "x", "y")
    assert layout["yaxis"]["rangemode"] == "tozero"
    label = "model=" + "x" * 200
    assert len(figures.short(label)) <= figures.LABEL_CHARS and figures.short(label).endswith("…")
    assert figures.short("<b>") == "&lt;b&gt;"


def test_compare_fail_above_is_a_regression_gate(tmp_path: Path) -> None:
    """Exit 1 when a value is slower than its baseline by more than the threshold (whole interval
    beyond it), 0 otherwise; a bad threshold is a one-line error."""
    from test_costmodel import write

    write(tmp_path / "old.jsonl", "NVIDIA GeForce RTX 4090", fixed=0.5, per_eval=0.05, steps=[20], noise=0.01,
          repeats=8, host="ci-old")
    write(tmp_path / "new.jsonl", "NVIDIA GeForce RTX 3090", fixed=0.5 * 1.2, per_eval=0.05 * 1.2, steps=[20],
          noise=0.01, repeats=8, host="ci-new")
    command = [sys.executable, "-m", "diffbench.cli", "compare", str(tmp_path), "--by", "gpu",
               "--baseline", "NVIDIA GeForce RTX 4090"]
    failing = subprocess.run([*command, "--fail-above", "5%"], capture_output=True, text=True, timeout=120)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "REGRESSION beyond 5%: NVIDIA GeForce RTX 3090 is 1.20x slower" in failing.stdout
    passing = subprocess.run([*command, "--fail-above", "30%"], capture_output=True, text=True, timeout=120)
    assert passing.returncode == 0 and "gate: no value worse than its baseline by more than 30% (1 compared)" in \
        passing.stdout
    faster = subprocess.run([*command[:-1], "NVIDIA GeForce RTX 3090", "--fail-above", "5%"], capture_output=True,
                            text=True, timeout=120)
    assert faster.returncode == 0  # the other way round, a speed-up never fails the gate
    bad = subprocess.run([*command, "--fail-above", "five"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "expected a percentage" in bad.stderr


def test_csv_export_never_hands_a_spreadsheet_a_formula(tmp_path: Path) -> None:
    """A prompt '=HYPERLINK(...)' (or +, -, @) is text in the CSV, quoted by an apostrophe; numbers stay numbers."""
    import csv
    import io

    from diffbench.contract.results import ResultsWriter, generation_record

    writer = ResultsWriter(tmp_path / "a.jsonl")
    writer.write(run_record("r", "box", [{"index": 0, "name": "NVIDIA GeForce RTX 4090"}],
                            {"name": "s", "path": "s.yaml", "sha256": "0" * 64}, {"torch": "2.13"}, host={"cpu": "x"}))
    for i, prompt in enumerate(['=HYPERLINK("http://x.invalid","click")', "+1+1", "@SUM(A1)", "-2+3", "a cat"]):
        cell = {"model": "sdxl", "sampler": "euler", "steps": 4, "resolution": "64x64", "prompt": prompt, "seed": 0}
        record = generation_record(f"c{i}", cell, 0, False, "ok", wall_s=1.0, step_s=[0.2] * 4, evaluations=4,
                                   runtime={"device": "cuda:0", "dtype": "fp16", "gpu_name": "NVIDIA GeForce RTX 4090"})
        record["run_id"] = "r"
        writer.write(record)
    writer.close()
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "export", str(tmp_path), "--format", "csv",
                             "--level", "generations"], capture_output=True, text=True, timeout=120, check=True)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    prompts = sorted(row["prompt"] for row in rows)
    assert prompts == sorted(["'=HYPERLINK(\"http://x.invalid\",\"click\")", "'+1+1", "'@SUM(A1)", "'-2+3", "a cat"])
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row.values() if cell)
    assert {row["steps"] for row in rows} == {"4"}  # numbers untouched
