"""What spoils a measurement is detected, recorded, and keeps `compare` from judging it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from diffbench.analysis.compare import compare, describe, noisy_cells
from diffbench.analysis.tables import with_metrics
from diffbench.contract.records import cell_settings, generation_record, run_record
from diffbench.contract.results import ResultsWriter, load_results, read_records
from diffbench.execute.advice import check_noise
from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite
from diffbench.stats import intervals as stats

SPIN = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end:\n    pass\n"


def _run_beside_spinners(suite: Path, out: Path, spinners: int) -> Any:
    """run_suite while `spinners` processes burn a core each (the suite validated first, quietly)."""
    load_suite(suite)
    burning = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(spinners)]
    try:
        return run_suite(load_suite(suite), out)
    finally:
        for spinner in burning:
            spinner.kill()
            spinner.wait()


def test_a_run_beside_cpu_burning_processes_is_flagged_noisy(tmp_path: Path) -> None:
    suite = tmp_path / "busy.yaml"
    suite.write_text("name: busy\nmodels:\n  t: {source: 'builtin:tiny-sd'}\n"
                     "defaults: {steps: 1, device: cpu, resolution: 64x64}\nwarmup: 0\nrepeats: 6\n")
    outcome = _run_beside_spinners(suite, tmp_path / "out", 2 * (os.cpu_count() or 1))
    noisy = [r for r in read_records(outcome.results_path) if r["type"] == "warning" and r["kind"] == "noisy"]
    assert len(noisy) == 1 and "other work competed" in noisy[0]["message"]
    assert noisy[0]["cell_id"] == outcome.records[0]["cell_id"]


def test_a_single_thread_worker_beside_two_busy_processes_is_flagged(tmp_path: Path, monkeypatch) -> None:
    """The case the old cut-offs missed: one torch thread sharing its core with a busy process
    (the worker with about half a core, load about 2 on 2 cores: the load signal stays silent).
    Worker and spinner are pinned to one core, so the worker's share is contended whatever else
    the machine runs: unpinned, a CI machine once gave the worker its own core beside the spinners
    and only the load signal fired."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the worker inherits it: torch runs one thread
    monkeypatch.setenv("DIFFBENCH_WORKER_START", "spawn")  # a fork server started earlier would not be pinned
    suite = tmp_path / "one.yaml"
    suite.write_text("name: one\nmodels:\n  t: {source: 'builtin:tiny-sd'}\n"
                     "defaults: {steps: 8, device: cpu, resolution: 64x64}\nwarmup: 1\nrepeats: 6\n")
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})  # the worker and the spinner inherit the one core
    try:
        outcome = _run_beside_spinners(suite, tmp_path / "out", 1)
    finally:
        os.sched_setaffinity(0, allowed)
    records = read_records(outcome.results_path)
    generations = [r for r in records if r["type"] == "generation"]
    assert {r["runtime"]["torch_threads"] for r in generations} == {1}
    noisy = [r for r in records if r["type"] == "warning" and r["kind"] == "noisy"]
    assert len(noisy) == 1 and "of the 1 core it runs on" in noisy[0]["message"]


def _record(**fields: object) -> dict[str, object]:
    return {"wall_s": 1.0, "runtime": {"device": "cpu", "torch_threads": 2}, **fields}


def test_noise_signals_on_known_records() -> None:
    quiet = [_record(cpu_s=1.9, load_avg_1m=1.5) for _ in range(6)]
    assert check_noise("cell", quiet, cores=2) == []
    crowded = [_record(cpu_s=0.7, load_avg_1m=2.0) for _ in range(6)]
    assert "got 0.70 of the 2 cores" in check_noise("cell", crowded, cores=2)[0].message
    # 0.8 of 2 cores: once missed (the cut-off was 0.6), a 1.25x slowdown of a CPU-bound cell
    assert check_noise("cell", [_record(cpu_s=1.6, load_avg_1m=1.5) for _ in range(6)], cores=2)
    loaded = [_record(cpu_s=1.9, load_avg_1m=4.5) for _ in range(6)]
    assert "load average up to 4.5 on 2 cores" in check_noise("cell", loaded, cores=2)[0].message
    shared_gpu = [{"wall_s": 1.0, "runtime": {"device": "cuda:0"}, "gpu_other_processes": [{"pid": 7}]}]
    assert "1 other process(es) used the GPU" in check_noise("cell", shared_gpu, cores=16)[0].message


def test_compare_does_not_judge_a_noisy_cell_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    writer = ResultsWriter(path)
    writer.write(run_record("r", "box"))
    for steps, seconds in ((4, 1.0), (8, 2.0)):
        cell = cell_settings(model="m", sampler="euler", steps=steps)
        for repeat in range(8):
            record = generation_record(f"c{steps}", cell, repeat, False, "ok", wall_s=seconds * (1 + 0.01 * repeat),
                                       step_s=[0.1] * steps, evaluations=steps)
            record["run_id"] = "r"
            writer.write(record)
    writer.write({"type": "warning", "run_id": "r", "cell_id": "c8", "kind": "noisy", "subject": "c8",
                  "message": "load average up to 6.0 on 2 cores"})
    writer.close()
    results = load_results([path])
    frame = with_metrics(results.generations)
    flagged = noisy_cells(results.warnings)
    assert flagged == {("c8", "box")}
    [row] = [r for r in compare(frame, "steps", noisy=flagged).rows if not r.is_baseline]
    assert row.comparison is not None and row.comparison.verdict == "noisy"
    assert "not judged" in describe(row, "4 steps", "s_per_image")
    [judged] = [r for r in compare(frame, "steps", noisy=flagged, allow_noisy=True).rows if not r.is_baseline]
    assert judged.comparison is not None and judged.comparison.verdict == "higher"
    assert stats.format_p(judged.comparison.p_value) == "p<0.001"
    assert isinstance(results.warnings, pd.DataFrame)
    # the report's cost fit through both step counts says that one of its cells was noisy
    from diffbench.analysis.analyse import analyse

    [scaling] = analyse(results).scaling
    assert scaling.fit is not None and any("flagged noisy" in reason for reason in scaling.fit.unreliable)
