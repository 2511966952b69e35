"""How long a report of N generations takes to build, and how large it is.

Writes a synthetic results file (two hosts, a matrix of models x samplers x steps, with
realistic per-step series) and times `build_report` on it. The data are generated, not
measured: this benchmarks the reporter, not a GPU.

    python benchmarks/report_scale.py [--generations 10000] [--out /tmp/scale]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from diffbench.contract.records import run_record
from diffbench.contract.results import ResultsWriter, generation_record
from diffbench.report.html import build_report


def write_results(folder: Path, generations: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    hosts = [("box-4090", "NVIDIA GeForce RTX 4090", 1.0), ("box-3060", "NVIDIA GeForce RTX 3060", 3.1)]
    models, samplers, steps = ["sd15", "sdxl", "sdxl-turbo", "flux-schnell"], ["euler", "dpmpp_2m_karras", "uni_pc",
                                                                              "ddim", "heun"], [4, 8, 20, 30, 50]
    cells = list(itertools.product(models, samplers, steps))
    repeats = max(1, generations // (len(hosts) * len(cells)))
    written = 0
    for hostname, gpu, slowdown in hosts:
        writer = ResultsWriter(folder / f"{hostname}.jsonl")
        run_id = f"scale-{hostname}"
        writer.write(run_record(run_id, hostname, [{"index": 0, "name": gpu}],
                                {"name": "scale", "path": "scale.yaml", "sha256": "0" * 64},
                                {"torch": "2.5.0", "diffusers": "0.35.0", "python": "3.11"}, host={"cpu": "x86"}))
        for model, sampler, n in cells:
            per_step = 0.02 * slowdown * (1 + models.index(model))
            cell = {"model": model, "source": f"hub/{model}", "sampler": sampler, "steps": n, "resolution": "1024x1024",
                    "batch_size": 1, "guidance_scale": 5.0, "seed": 0, "prompt": "a prompt", "offload": "none",
                    "weights": "pretrained"}
            for repeat in range(repeats):
                step_s = (per_step * rng.normal(1, 0.02, size=n)).tolist()
                wall = sum(step_s) + 0.3 * slowdown
                record = generation_record(f"{model}-{sampler}-{n}", cell, repeat, repeat == 0, "ok", wall_s=wall,
                                           step_s=step_s, evaluations=n,
                                           phases_s={"text_encode": 0.05, "denoise": sum(step_s), "decode": 0.2,
                                                     "other": wall - sum(step_s) - 0.25},
                                           peak_vram_allocated_bytes=int((4 + models.index(model) * 3) * 2**30),
                                           peak_host_rss_bytes=6 * 2**30,
                                           runtime={"device": "cuda:0", "dtype": "fp16", "gpu_name": gpu})
                record["run_id"] = run_id
                writer.write(record)
                written += 1
        writer.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/diffbench-report-scale"))
    parser.add_argument("--profile", action="store_true", help="print the functions the build spends its time in")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.jsonl"):
        old.unlink()
    started = time.perf_counter()
    count = write_results(args.out, args.generations)
    print(f"wrote {count} generations in {time.perf_counter() - started:.1f} s")
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        info = profiler.runcall(build_report, [args.out], args.out / "report.html")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    else:
        info = build_report([args.out], args.out / "report.html")
    print(f"report_seconds={info.seconds:.1f} report_mib={info.bytes / 2**20:.2f} cells={info.cells} "
          f"generations={info.generations}")


if __name__ == "__main__":
    main()
