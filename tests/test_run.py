"""End to end: the CLI runs a suite in worker processes and writes results that load back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from diffbench import SCHEMA_VERSION
from diffbench.contract.results import load_results, read_records
from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite
from diffbench.models.builtin import builtin_path


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "diffbench.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def quickstart_results(tmp_path_factory, repo: Path) -> Path:
    out = tmp_path_factory.mktemp("quickstart")
    result = _cli("run", str(repo / "suites" / "quickstart.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Summary" in result.stdout
    files = list(out.glob("*.jsonl"))
    assert len(files) == 1
    return files[0]


def test_quickstart_writes_the_results_contract(quickstart_results: Path) -> None:
    records = read_records(quickstart_results)
    run = records[0]
    assert run["type"] == "run" and run["schema_version"] == SCHEMA_VERSION
    assert {"hostname", "os", "cpu", "ram_bytes", "gpus"} <= run["host"].keys()
    assert {"python", "torch", "diffusers", "transformers", "diffbench"} <= run["software"].keys()
    assert run["suite"]["name"] == "quickstart" and len(run["suite"]["sha256"]) == 64
    generations = [r for r in records if r["type"] == "generation"]
    stops = {g["cell_id"]: g["repeats_stop"]["n"] for g in generations if g.get("repeats_stop")}
    assert len(stops) == 4 and all(6 <= n <= 30 for n in stops.values())  # repeats: auto
    # 2 warm-ups, then a pilot of 4 (stored, left out of the statistics), then the count it fixed
    assert len(generations) == 4 * (2 + 4) + sum(stops.values())
    for cell_id in stops:
        measured = [g for g in generations if g["cell_id"] == cell_id and not g["warmup"]]
        assert [bool(g.get("pilot")) for g in measured] == [True] * 4 + [False] * stops[cell_id]
    for g in generations:
        assert g["status"] == "ok" and g["run_id"] == run["run_id"]
        assert len(g["step_s"]) == g["evaluations"] == g["cell"]["steps"]
        assert abs(sum(g["phases_s"].values()) - g["wall_s"]) <= 0.05 * g["wall_s"]
        assert sum(g["step_s"]) <= g["phases_s"]["denoise"] + 1e-9
        assert g["cell"]["weights"] == "random" and g["cell"]["source"] == "builtin:tiny-sd"
    warmups = [g for g in generations if g["warmup"]]
    assert len(warmups) == 8 and sorted({g["repeat"] for g in warmups}) == [0, 1]
    images = [g["image"] for g in generations if g.get("image")]
    assert len(images) == 4  # the first measured image of each cell
    for image in images:
        assert (quickstart_results.parent / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_load_back_as_dataframes(quickstart_results: Path) -> None:
    results = load_results([quickstart_results.parent])
    assert len(results.runs) == 1
    written = [r for r in read_records(quickstart_results) if r["type"] == "generation"]
    assert len(results.generations) == len(written) >= 4 * (2 + 6)
    assert {"sampler", "steps", "wall_s", "phase_denoise", "hostname", "runtime_device"} <= set(results.generations)
    assert len(results.steps) == sum(results.generations["evaluations"])
    per_generation = results.steps.groupby(["cell_id", "repeat", "warmup"]).size()
    assert sorted(set(per_generation)) == [4, 8]


def test_a_local_diffusers_folder_runs_like_any_model(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    shutil.copytree(builtin_path("tiny-sdxl"), folder)
    suite = tmp_path / "local.yaml"
    suite.write_text("name: local\nmodels:\n  mine: {source: ./my-model}\n"
                     "defaults: {resolution: 64x64, steps: 2, device: cpu}\nwarmup: 0\nrepeats: 1\n")
    loaded = load_suite(suite)
    outcome = run_suite(loaded, tmp_path / "out")
    generations = [r for r in outcome.records if r["type"] == "generation"]
    assert [g["status"] for g in generations] == ["ok"]
    assert generations[0]["cell"]["family"] == "sdxl" and generations[0]["cell"]["weights"] == "pretrained"


def test_not_applicable_cells_are_recorded_not_run(tmp_path: Path) -> None:
    suite = tmp_path / "na.yaml"
    suite.write_text("name: na\nmodels:\n  t: {source: builtin:tiny-sd}\n"
                     "defaults: {steps: 2, device: cpu}\nmatrix: {offload: [none, sequential]}\n"
                     "warmup: 0\nrepeats: 1\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    by_offload = {r["cell"]["offload"]: r for r in outcome.records}
    assert by_offload["none"]["status"] == "ok"
    assert by_offload["sequential"]["status"] == "not_applicable"
    assert "device is cpu" in by_offload["sequential"]["error"]
    assert by_offload["sequential"]["step_s"] == [] and by_offload["sequential"]["wall_s"] is None


def test_the_runs_results_file_is_valid_json_lines(quickstart_results: Path) -> None:
    lines = quickstart_results.read_text().splitlines()
    kinds = [json.loads(line)["type"] for line in lines]  # raises on any line that is not JSON
    stops = [json.loads(line).get("repeats_stop") for line in lines]
    expected = 4 * 2 + sum(stop["n"] + stop["pilot"] for stop in stops if stop)  # warm-ups, pilots, the rest
    assert kinds[0] == "run" and kinds.count("run") == 1 and kinds.count("generation") == expected
    assert set(kinds) <= {"run", "load", "generation", "warning"}


def test_settings_applied_on_a_loaded_pipeline(tmp_path: Path) -> None:
    """Attention backend, VAE tiling and slicing, bf16 and batches run for real and are recorded."""
    suite = tmp_path / "settings.yaml"
    suite.write_text(
        "name: settings\nmodels:\n  t: {source: builtin:tiny-sd}\n"
        "defaults: {steps: 2, device: cpu, attention: native}\n"
        "matrix:\n  dtype: [fp32, bf16]\n  batch_size: [1, 2]\n  vae_tiling: [false, true]\n"
        "include:\n  - {vae_slicing: true, batch_size: 2, dtype: fp32}\n"
        "warmup: 0\nrepeats: 1\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    generations = [r for r in outcome.records if r["type"] == "generation"]
    assert len(generations) == 9
    assert all(g["status"] == "ok" for g in generations), [g["error"] for g in generations]
    assert {g["runtime"]["dtype"] for g in generations} == {"fp32", "bf16"}
    loads = [line for line in map(json.loads, outcome.results_path.read_text().splitlines()) if line["type"] == "load"]
    assert len(loads) == 2  # one pipeline load per dtype, whatever the batch size or VAE options


def test_torch_compile_runs_and_the_warmup_absorbs_compilation(tmp_path: Path) -> None:
    suite = tmp_path / "compile.yaml"
    suite.write_text("name: compile\nmodels:\n  t: {source: builtin:tiny-sd}\n"
                     "defaults: {steps: 2, device: cpu, compile: true}\nwarmup: 1\nrepeats: 2\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    generations = [r for r in outcome.records if r["type"] == "generation"]
    assert [g["status"] for g in generations] == ["ok"] * 3, [g["error"] for g in generations]
    warmup, *measured = generations
    assert warmup["warmup"] and all(len(g["step_s"]) == 2 for g in generations)
    # compilation happens in the first call: the warm-up pays it, the repeats do not
    assert warmup["wall_s"] > 3 * max(g["wall_s"] for g in measured)


def test_jobs_naming_several_cuda_devices_get_one_queue_each() -> None:
    from diffbench.execute.base import CellWork, Job
    from diffbench.execute.local import partition_by_gpu

    def job(device: str) -> Job:
        return Job({}, ".", 0, [CellWork(device, {"device": device}, (0,))])

    parallel = partition_by_gpu([job("cuda:0"), job("cuda:1"), job("cuda:0")])
    assert [[j.device for j in lane] for lane in parallel] == [["cuda:0", "cuda:0"], ["cuda:1"]]
    # "auto", "cuda" or "cpu" do not say which GPU: one queue, in plan order
    assert len(partition_by_gpu([job("cuda"), job("cuda:1")])) == 1
    assert len(partition_by_gpu([job("cpu"), job("cpu")])) == 1


def test_what_diffbench_writes_meets_its_own_results_contract(quickstart_results: Path) -> None:
    from diffbench.contract.records import validate_line

    records = read_records(quickstart_results)
    assert {r["type"] for r in records} >= {"run", "load", "generation"}
    for record in records:
        assert validate_line(record) is record


def test_quickstart_with_auto_repeats_can_tell_4_from_8_steps(quickstart_results: Path) -> None:
    """With the old default of 3 repeats no comparison could ever be significant; auto repeats decide.
    On a machine busy with other work the answer may be wrong, and then diffbench must have
    flagged the cells and refuse to judge ("noisy"): never a confident wrong verdict."""
    from diffbench.analysis.compare import compare, noisy_cells
    from diffbench.analysis.tables import with_metrics
    from diffbench.contract.results import load_results

    records = read_records(quickstart_results)
    stops = [r["repeats_stop"] for r in records if r["type"] == "generation" and r.get("repeats_stop")]
    assert len(stops) == 4 and all(s["n"] >= 6 for s in stops)  # every cell says why it stopped
    loaded = load_results([quickstart_results])
    frame = with_metrics(loaded.generations)
    table = compare(frame[frame["sampler"] == "euler"], "steps", baseline="4 steps", noisy=noisy_cells(loaded.warnings))
    [eight] = [r for r in table.rows if not r.is_baseline]
    assert eight.comparison is not None and eight.comparison.verdict in {"higher", "noisy"}, eight.comparison


def test_an_attention_backend_the_device_cannot_run_is_not_applicable(tmp_path: Path) -> None:
    suite = tmp_path / "att.yaml"
    suite.write_text("name: att\nmodels:\n  f: {source: 'builtin:tiny-flux'}\ndefaults: {steps: 2, device: cpu}\n"
                     "matrix:\n  attention: [native, _native_cudnn]\nwarmup: 0\nrepeats: 1\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    by_backend = {r["cell"]["attention"]: r for r in outcome.records}
    assert by_backend["native"]["status"] == "ok"
    assert by_backend["_native_cudnn"]["status"] == "not_applicable"
    assert by_backend["_native_cudnn"]["error"].startswith("attention backend '_native_cudnn' cannot run on cpu")


def test_the_end_of_run_summary_shows_the_reports_own_figures(tmp_path: Path) -> None:
    """The console's table and the report read one definition of each figure (the metric
    registry, summarised per cell): the same results give the same numbers in both."""
    from diffbench.analysis.tables import cell_summary, with_metrics
    from diffbench.report.live import fmt_bytes, summary_table

    suite = tmp_path / "c.yaml"
    suite.write_text("name: console\nmodels:\n  t: {source: \"builtin:tiny-sd\"}\n"
                     "defaults: {steps: 3, device: cpu, resolution: 64x64}\nmatrix:\n  sampler: [euler, ddim]\n"
                     "  batch_size: [1, 2]\nwarmup: 1\nrepeats: 3\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    table = summary_table(outcome.plan, outcome.records)
    shown = {column.header: list(column._cells) for column in table.columns}
    report = cell_summary(with_metrics(load_results([outcome.results_path]).generations))
    by_setting = {(row["sampler"], int(row["batch_size"])): row for row in report.to_dict("records")}
    assert len(shown["status"]) == len(by_setting) == 4
    for i in range(4):
        row = by_setting[(shown["sampler"][i], int(shown["batch_size"][i]))]
        assert shown["status"][i] == "ok"
        assert shown["s/image"][i] == f"{row['s_per_image']:.3f}"
        assert shown["it/s"][i] == f"{row['it_s']:.1f}"
        assert shown["step ms"][i] == f"{row['step_ms']:.1f}"
        assert shown["peak RSS"][i] == fmt_bytes(row["peak_rss_gib"] * 2**30)
        assert shown["peak VRAM"][i] == "-"  # a CPU run: no device memory figure
