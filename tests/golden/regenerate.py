"""Regenerate the golden statistics: `python tests/golden/regenerate.py [--results]`.

results.jsonl is a fixed results file (two hosts, samplers x steps, 5-9 repeats); expected.json
holds what the analysis computes from it. test_golden_stats.py fails when any figure changes.
Rewrite expected.json only for a change of the statistics that is meant, and say so in the commit.
--results also rewrites the results file (only if its format must change).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AXES_AND_METRICS = [("sampler", "s_per_image"), ("gpu", "s_per_image"), ("steps", "it_s"),
                    ("gpu", "peak_vram_gib"), ("sampler", "step_ms")]


def write_results(path: Path) -> None:
    import numpy as np

    from diffbench.contract.records import run_record
    from diffbench.contract.results import ResultsWriter, generation_record

    rng = np.random.default_rng(20261126)
    path.unlink(missing_ok=True)
    writer = ResultsWriter(path)
    for host, gpu, slowdown in (("box-4090", "NVIDIA GeForce RTX 4090", 1.0), ("box-3060", "NVIDIA GeForce RTX 3060", 2.9)):
        run_id = f"golden-{host}"
        writer.write(run_record(run_id, host, [{"index": 0, "name": gpu}],
                                {"name": "golden", "path": "golden.yaml", "sha256": "0" * 64},
                                {"torch": "2.5.0", "diffusers": "0.35.0", "python": "3.11"}, host={"cpu": "x86"}))
        for sampler, cost in (("euler", 1.0), ("dpmpp_2m", 1.01), ("heun", 1.9)):
            for steps in (8, 20):
                repeats = int(rng.integers(5, 10))
                cell = {"model": "sdxl", "source": "stabilityai/sdxl", "sampler": sampler, "steps": steps,
                        "resolution": "1024x1024", "batch_size": 1, "guidance_scale": 5.0, "seed": 0, "prompt": "p",
                        "offload": "none", "weights": "pretrained"}
                for repeat in range(repeats):
                    step_s = (0.05 * cost * slowdown * rng.lognormal(0, 0.04, size=steps)).tolist()
                    wall = sum(step_s) + 0.4 * slowdown * rng.lognormal(0, 0.05)
                    record = generation_record(f"{sampler}-{steps}", cell, repeat, False, "ok", wall_s=wall,
                                               step_s=step_s, evaluations=steps,
                                               phases_s={"text_encode": 0.05, "denoise": sum(step_s), "decode": 0.3,
                                                         "other": wall - sum(step_s) - 0.35},
                                               peak_vram_allocated_bytes=int(9 * 2**30 + rng.integers(0, 2**20)),
                                               peak_host_rss_bytes=4 * 2**30,
                                               runtime={"device": "cuda:0", "dtype": "fp16", "gpu_name": gpu})
                    record["run_id"] = run_id
                    writer.write(record)
    writer.close()


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def statistics(path: Path) -> dict[str, Any]:
    """Every comparison table and cell summary the report would show for this file."""
    from diffbench.analysis.compare import compare, prepare
    from diffbench.analysis.tables import cell_summary, with_metrics
    from diffbench.contract.results import load_results

    frame = with_metrics(load_results([path]).generations)
    prepared = prepare(frame)
    out: dict[str, Any] = {}
    for axis, metric in AXES_AND_METRICS:
        table = compare(frame, axis, metric=metric, prepared=prepared)
        out[f"{axis}/{metric}"] = [{k: _plain(v) for k, v in row.items()} for row in table.frame().to_dict("records")]
    summary = cell_summary(frame).sort_values(["hostname", "cell_id"])
    columns = ["cell_id", "hostname", "n", "s_per_image", "s_per_image_p90", "it_s", "step_ms", "peak_vram_gib", "cv"]
    out["cells"] = [{k: _plain(v) for k, v in row.items()} for row in summary[columns].to_dict("records")]
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    if "--results" in sys.argv:
        write_results(HERE / "results.jsonl")
    (HERE / "expected.json").write_text(json.dumps(statistics(HERE / "results.jsonl"), indent=1) + "\n")
