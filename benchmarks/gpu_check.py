"""Prove the CUDA paths on a GPU host in one run, and write the figures to a folder.

    python benchmarks/gpu_check.py OUT_DIR [--quick]

Checks (each writes what it saw; on a machine without CUDA the CUDA-only ones say "skipped"):
1. sysinfo (NVML description, warnings) -> sysinfo.json
2. per-step CUDA-event timings against a synchronised wall clock around each step, same pipeline
   and settings -> timing.json (ratio of the sums, per-step differences)
3. every offload mode, VAE tiling, and peak VRAM (torch) against NVML's device peak, with a
   synthetic SDXL at 1024x1024 -> offload/*.jsonl
4. an out-of-memory recorded and survived under a vram_limit (synthetic FLUX.1 schnell, 12 GiB,
   no offload), next to the same with model offload -> vram_limit/*.jsonl
5. a telemetry trace (power, SM clock, temperature) of one generation -> telemetry.json
Then summary.md with the figures, to copy into docs/gpu-validation.md with the card and date.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPEATS = 12  # interleaved pairs for the timing check; the first is a warm-up


def _suite(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def _run(path: Path, out: Path) -> list[dict[str, Any]]:
    from diffbench.runner import run_suite
    from diffbench.suite import load_suite

    return [r for r in run_suite(load_suite(path), out).records if r["type"] == "generation"]


def timing_check(cuda: bool, source: str, resolution: str, steps: int) -> dict[str, Any]:
    """Event-timed steps vs a wall clock synchronised at every step boundary, interleaved."""
    import torch

    from diffbench.execute.configure import call_arguments
    from diffbench.execute.generation import Meters, measure_generation
    from diffbench.measure.clocks import clock_for
    from diffbench.measure.memory import HostPeak
    from diffbench.measure.probe import PipelineProbe
    from diffbench.models.sources import load_pipeline

    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.float16 if cuda else torch.float32
    pipe = load_pipeline({"source": source}, dtype, Path("."), device)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    settings = {"prompt": "a lighthouse", "steps": steps, "resolution": resolution, "batch_size": 1,
                "guidance_scale": 5.0, "seed": 0, "negative_prompt": None}
    probe, meters = PipelineProbe(pipe, clock_for(device)), Meters(HostPeak())
    synced: list[float] = []

    def sync_wall(pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if cuda:
            torch.cuda.synchronize()
        synced.append(time.perf_counter())
        return kwargs

    event_sums, wall_sums = [], []
    for _ in range(REPEATS):
        fields, _ = measure_generation(pipe, probe, meters, call_arguments(pipe, settings))
        event_sums.append(sum(fields["step_s"][1:]))  # steps 1..N-1, as the synchronised series has
        synced.clear()
        kwargs = call_arguments(pipe, settings)
        if cuda:
            torch.cuda.synchronize()
        synced.append(time.perf_counter())  # text encoding is inside the first interval: drop it below
        pipe(**kwargs, callback_on_step_end=sync_wall)
        intervals = [b - a for a, b in zip(synced, synced[1:])]
        wall_sums.append(sum(intervals[1:]))
    probe.remove()
    # The synchronised series cannot separate step 0 from text encoding: both compare steps 1..N-1.
    # Its intervals also hold the scheduler's input scaling between steps, which the probe leaves out.
    event_median, wall_median = statistics.median(event_sums[1:]), statistics.median(wall_sums[1:])
    return {"device": str(device), "source": source, "resolution": resolution, "steps": steps,
            "event_sum_s_steps_1_to_n": event_median, "synced_wall_sum_s_steps_1_to_n": wall_median,
            "ratio_event_to_synced": event_median / wall_median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true", help="smaller models and resolutions (a smoke test)")
    args = parser.parse_args()
    import torch

    from diffbench.hardware.sysinfo import system_report

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    summary = [f"# diffbench GPU check ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", ""]
    info = system_report()
    (out / "sysinfo.json").write_text(json.dumps(info, indent=2, default=str))
    gpu = info["gpus"][0]["name"] if info["gpus"] else "no NVIDIA GPU"
    summary += [f"- host {info['hostname']}, {gpu}, torch {info['software']['torch']}, "
                f"diffusers {info['software']['diffusers']}", f"- warnings: {info['warnings'] or 'none'}"]

    big = not args.quick and cuda
    source, resolution = ("synthetic:sdxl", "1024x1024") if big else ("builtin:tiny-sdxl", "64x64")
    timing = timing_check(cuda, source, resolution, steps=20 if big else 8)
    (out / "timing.json").write_text(json.dumps(timing, indent=2))
    summary.append(f"- step timing ({timing['device']}, {source} {resolution}): sum of probe-timed steps 1..N-1 / "
                   f"the same steps timed by a wall clock synchronised at each step = "
                   f"{timing['ratio_event_to_synced']:.3f}")

    if not cuda:
        summary.append("- offload, vram_limit, NVML memory and telemetry: skipped (no CUDA device)")
    else:
        offload = _run(_suite(out, "offload", f"""name: offload
models:
  sdxl: {{source: "{source}"}}
defaults: {{resolution: {resolution}, steps: 8, device: cuda}}
matrix:
  offload: [none, model, sequential, group-block, group-leaf]
include:
  - {{offload: none, vae_tiling: true}}
warmup: 1
repeats: 3
"""), out / "offload")
        for g in (g for g in offload if not g["warmup"] and g["repeat"] == 0):
            device_peak = g["peak_vram_device_bytes"]
            summary.append(
                f"- offload {g['cell']['offload']}{' + VAE tiling' if g['cell']['vae_tiling'] else ''}: "
                f"{g['status']}, {g['wall_s'] or 0:.3f} s, torch peak {(g['peak_vram_allocated_bytes'] or 0) / 2**30:.2f} "
                f"GiB, reserved {(g['peak_vram_reserved_bytes'] or 0) / 2**30:.2f} GiB, NVML device peak "
                f"{(device_peak or 0) / 2**30:.2f} GiB, host RSS {(g['peak_host_rss_bytes'] or 0) / 2**30:.2f} GiB, "
                f"energy {g['energy_j']} J ({(g['telemetry'] or {}).get('energy_source')})")
        flux = "synthetic:flux-schnell" if big else source
        limited = _run(_suite(out, "vram_limit", f"""name: vram-limit
models:
  m: {{source: "{flux}"}}
defaults: {{resolution: {resolution}, steps: 2, device: cuda, vram_limit: 12GiB}}
matrix:
  offload: [none, model]
warmup: 0
repeats: 2
"""), out / "vram_limit")
        for g in limited:
            summary.append(f"- vram_limit 12GiB, offload {g['cell']['offload']}: {g['status']}"
                           f"{' (' + str(g['error'])[:120] + ')' if g['error'] else ''}")
        first = next((g for g in offload if g.get("telemetry") and g["telemetry"].get("trace")), None)
        if first:
            (out / "telemetry.json").write_text(json.dumps(first["telemetry"], indent=2))
            t = first["telemetry"]
            summary.append(f"- telemetry: {t['samples']} samples, avg {t['avg_power_w']} W, peak {t['peak_power_w']} W, "
                           f"SM {t['sm_clock_mhz_avg']} MHz, max {t['temperature_c_max']} °C, "
                           f"throttle {t['throttle_reasons']}")
    (out / "summary.md").write_text("\n".join(summary) + "\n")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
