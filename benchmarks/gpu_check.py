"""Prove the CUDA paths on a GPU host in one run, and write each figure as soon as it is known.

    python benchmarks/gpu_check.py OUT_DIR [--quick] [--budget-s 400] [--only SECTION ...]

Sections; each is skipped (and says so) when the time budget left is smaller than its
estimate, and a failing section is recorded and the next one runs. The default runs what the
2026-11-26 runs lacked (reference, quantize, native with step caches, lora, compile, video);
`--only` runs any, in the order given:

0. reference (in-process): synthetic SD 1.5 at 512x512, 50 steps, CFG 7.5 and SDXL at 1024x1024,
   20 steps, CFG 5, fp16, batch 1 (the most published setups): seconds per image, it/s, phases,
   peaks, energy, and a torch.profiler pass per model (kernel count, GPU busy time, kernel time
   by class: matmul, convolution, attention, memory-bound) -> reference.json

1. sysinfo: NVML description and warnings -> sysinfo.json
2. speed (in-process): synthetic SDXL 1024x1024, 20 Euler steps, fp16, batch 1. Interleaved
   instrumented / bare / step-synchronised generations give the probe's CUDA-event step times
   against a synchronised wall clock, the instrumentation's cost, and, from a torch.profiler
   trace of steps 1..N-1, the GPU's kernel time; then seconds per image, it/s, TFLOP/s and
   the fraction of the card's peak, energy per image -> speed.json
3. vram_limit: synthetic SDXL under emulated 5 and 8 GiB cards, no offload vs model offload:
   an out-of-memory recorded and the run continuing -> vram_limit/*.jsonl
4. offload: synthetic SDXL 1024x1024 with each offload mode and VAE tiling; torch's peaks
   beside NVML's device peak and host RSS -> offload-fast/, offload-slow/
5. native: synthetic SD 3.5 Medium at 1024x1024 (clean peaks), and FLUX.1 schnell at 12 steps with
   each step cache (none, First-Block, TaylorSeer, FasterCache, MagCache): speed, denoiser work
   and SSIM to the uncached picture -> native/ (the 2026-11-26 run 1 compared attention backends)
6. compile: torch.compile of the SDXL UNet (compile time in the warm-up, then compiled
   speed against the eager reference figure) -> compile/
7. quantize: torchao int8, quanto int8, bitsandbytes NF4 on SDXL: speed, peaks, denoiser bytes,
   SSIM to the unquantized picture -> quantize/
8. lora: a rank-32 LoRA on SDXL's attention: load, unload and fuse time, unfused and fused
   speed -> lora/
9. video: Wan 2.1 1.3B at 832x480, 17 frames, with and without VAE tiling -> video/
10. fit12, fit12-expandable (issue 39): SDXL 1024² fp16 plain, VAE tiling, VAE slicing and NF4 under
   caps of 10.5-13 GiB, with the default allocator and with expandable segments: OOM or not and
   each phase's peaks, what the memory rule's margin is re-fitted on -> fit12/, fit12-expandable/
11. flux12: FLUX.1 schnell under 12 GiB, quantized (none, torchao int8 @all, NF4 @all) x model and
   group offload, with SSIM to the unquantized picture -> flux12/
12. results12: SD 1.5 512² at 50 steps and SDXL 1024² at 20 steps, plain, model offload and NF4, at
   repeats: auto with pictures kept -> results12/

summary.md gathers one line per figure; copy it into docs/gpu-validation.md with the card
and the date. On a machine without CUDA, --quick rehearses every section on a built-in tiny
model (the CUDA-only figures say so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# MLPerf Inference v4.1, closed division, NVIDIA's SDXL Offline result on 8x H200 (TensorRT): 17.42
# samples/s, 2.18 per GPU (the H100-SXM system: 16.35, 2.04 per GPU), 20 Euler steps at 1024x1024.
MLPERF_SDXL_H200_SAMPLES_PER_S = 17.42 / 8
GiB = 2**30


class Check:
    """The output folder, the time budget and the summary, written line by line."""

    def __init__(self, out: Path, budget_s: float, quick: bool, cuda: bool, fresh: bool = True) -> None:
        self.out, self.quick, self.cuda = out, quick, cuda
        self.deadline = time.monotonic() + budget_s
        self.summary = out / "summary.md"
        self.results_paths: dict[str, Path] = {}
        if fresh:
            self.summary.write_text("")

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def say(self, line: str) -> None:
        print(line, flush=True)
        with self.summary.open("a") as handle:
            handle.write(line + "\n")

    def save(self, name: str, data: Any) -> None:
        (self.out / name).write_text(json.dumps(data, indent=2, default=str))


def _gib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / GiB:.2f} GiB"


def _run_suite(check: Check, name: str, text: str) -> list[dict[str, Any]]:
    """Run a suite through the real runner (worker processes, NVML sampler, results file)."""
    from diffbench.execute.runner import run_suite
    from diffbench.intake.suite import load_suite

    folder = check.out / name
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    outcome = run_suite(load_suite(path), folder)
    check.results_paths[name] = outcome.results_path
    return [r for r in outcome.records if r["type"] == "generation"]


def _say_quality(check: Check, name: str, label: Callable[[dict[str, Any]], str]) -> None:
    """SSIM of each cell's picture to its reference (the same picture without the setting that
    approximates: a cache, a quantization), computed here so the full-size images need not travel."""
    from diffbench.analysis.quality import step_quality
    from diffbench.analysis.tables import with_metrics
    from diffbench.contract.results import load_results

    path = check.results_paths.get(name)
    if path is None:
        return
    frame = with_metrics(load_results([path]).generations)
    quality = step_quality(frame)
    cells = {row["cell_id"]: row for _, row in frame.iterrows()}
    rows = []
    for _, row in quality.iterrows():
        cell = cells.get(row["cell_id"])
        if cell is not None and row["ssim"] == row["ssim"]:  # NaN: a setting with nothing to compare to
            rows.append({"cell_id": row["cell_id"], "ssim": float(row["ssim"])})
            check.say(f"- quality {label(cell)}: SSIM {row['ssim']:.4f} to the same model's reference picture")
    check.save(f"{name}-quality.json", rows)


def _describe_generations(check: Check, records: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]) -> None:
    """One summary line per cell: status, median wall time, memory peaks, energy."""
    cells: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if not record["warmup"] or record["status"] != "ok":
            cells.setdefault(record["cell_id"], []).append(record)
    for group in cells.values():
        first = group[0]
        if first["status"] != "ok":
            check.say(f"- {label(first['cell'])}: {first['status']} ({str(first.get('error'))[:160]})")
            continue
        ok = [g for g in group if g["status"] == "ok"]
        wall = statistics.median(g["wall_s"] for g in ok)
        peak = max(ok, key=lambda g: g["peak_vram_allocated_bytes"] or 0)
        energy = [g["energy_j"] for g in ok if g.get("energy_j") is not None]
        source = (ok[0].get("telemetry") or {}).get("energy_source")
        check.say(
            f"- {label(first['cell'])}: ok, n={len(ok)}, {wall:.3f} s/image, torch peak allocated "
            f"{_gib(peak['peak_vram_allocated_bytes'])}, reserved {_gib(peak['peak_vram_reserved_bytes'])}, "
            f"NVML device peak {_gib(peak['peak_vram_device_bytes'])}, host RSS peak "
            f"{_gib(peak['peak_host_rss_bytes'])}, energy "
            f"{f'{statistics.median(energy):.0f} J/image ({source})' if energy else 'n/a'}")


# --- section 2: speed and timing, in-process -------------------------------------------------

def _kernel_time(prof: Any) -> tuple[float, float, int]:
    """(span, busy) in seconds of the GPU activity a profiler saw, and its kernel count."""
    import torch

    ranges = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                    if e.device_type == torch.autograd.DeviceType.CUDA)
    if not ranges:
        return 0.0, 0.0, 0
    busy, open_start, open_end = 0.0, ranges[0][0], ranges[0][1]
    for start, end in ranges[1:]:
        if start > open_end:
            busy += open_end - open_start
            open_start, open_end = start, end
        else:
            open_end = max(open_end, end)
    busy += open_end - open_start
    return (ranges[-1][1] - ranges[0][0]) / 1e6, busy / 1e6, len(ranges)


def _profiled_generation(pipe: Any, settings: dict[str, Any], steps: int, device: Any) -> tuple[Any, Any]:
    """One generation under the probe with torch.profiler recording steps 1..N-1 only (started at
    the end of step 0, stopped at the end of the last): the probe's timing and the profile."""
    from torch.profiler import ProfilerActivity, profile

    from diffbench.execute.configure import call_arguments
    from diffbench.measure.clocks import clock_for
    from diffbench.measure.probe import PipelineProbe

    prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
    probe = PipelineProbe(pipe, clock_for(device))

    def bracket(pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        probe.on_step_end(pipeline, step, timestep, kwargs)
        if step == 0:
            prof.start()
        elif step == steps - 1:
            prof.stop()
        return kwargs

    probe.begin()
    pipe(**call_arguments(pipe, settings), callback_on_step_end=bracket)
    timing = probe.end()
    probe.remove()
    return timing, prof


def speed(check: Check) -> None:
    import torch

    from diffbench.execute.configure import call_arguments
    from diffbench.execute.generation import Meters, measure_generation
    from diffbench.execute.worker import quiet_libraries
    from diffbench.hardware import gpus, nvml
    from diffbench.measure.clocks import clock_for
    from diffbench.measure.flops import count_call_flops
    from diffbench.measure.memory import HostPeak, TorchCudaPeak
    from diffbench.measure.probe import PipelineProbe, denoiser_of
    from diffbench.measure.telemetry import TelemetrySampler
    from diffbench.models.sources import load_pipeline

    quiet_libraries()
    cuda, big = check.cuda, check.cuda and not check.quick
    device = torch.device("cuda" if cuda else "cpu")
    source, resolution, steps = ("synthetic:sdxl", "1024x1024", 20) if big else ("builtin:tiny-sdxl", "64x64", 8)
    pairs = 6 if big else 4  # rounds of the four kinds of generation
    started = time.perf_counter()
    pipe = load_pipeline({"source": source}, torch.float16 if cuda else torch.float32, Path("."), device)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - started
    settings = {"prompt": "a lighthouse on a cliff at dusk", "steps": steps, "resolution": resolution,
                "batch_size": 1, "guidance_scale": 5.0, "seed": 0, "negative_prompt": None}
    meters = Meters(HostPeak())
    gpu_name = None
    if cuda:
        meters.cuda = TorchCudaPeak(device)
        props = torch.cuda.get_device_properties(device)
        gpu_name = props.name
        handle = nvml.handle_for_uuid(f"GPU-{props.uuid}")
        if handle is not None:
            meters.telemetry = TelemetrySampler(nvml.nvml(), handle)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    probe = PipelineProbe(pipe, clock_for(device))
    probe.capture = True
    measure_generation(pipe, probe, meters, call_arguments(pipe, settings))  # warm-up
    flops = count_call_flops(denoiser_of(pipe), *probe.captured) if probe.captured else None
    probe.captured = None

    instrumented: list[dict[str, Any]] = []
    untelemetered: list[float] = []
    bare: list[float] = []
    synced_sums: list[float] = []
    marks: list[float] = []

    def sync_wall(pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        sync()
        marks.append(time.perf_counter())
        return kwargs

    def run_instrumented() -> None:
        nonlocal probe
        probe = PipelineProbe(pipe, clock_for(device))
        measured, _ = measure_generation(pipe, probe, meters, call_arguments(pipe, settings))
        probe.remove()  # the other two kinds run on a bare pipeline
        instrumented.append(measured.fields())

    def run_without_telemetry() -> None:
        # The probe alone: tells the NVML sampler's share of the instrumentation cost.
        nonlocal probe
        probe = PipelineProbe(pipe, clock_for(device))
        measured, _ = measure_generation(pipe, probe, Meters(meters.host, meters.cuda), call_arguments(pipe, settings))
        probe.remove()
        untelemetered.append(measured.wall_s)

    def run_bare() -> None:
        kwargs = call_arguments(pipe, settings)
        sync()
        begin = time.perf_counter()
        pipe(**kwargs)
        sync()
        bare.append(time.perf_counter() - begin)

    def run_synced() -> None:
        # Step boundaries from a wall clock synchronised at every callback. The first interval
        # holds text encoding as well as step 0, so both series compare steps 1..N-1.
        kwargs = call_arguments(pipe, settings)
        marks.clear()
        pipe(**kwargs, callback_on_step_end=sync_wall)
        synced_sums.append(sum(b - a for a, b in zip(marks, marks[1:])))

    probe.remove()
    kinds = [run_instrumented, run_bare, run_synced, run_without_telemetry]
    for index in range(pairs):  # rotate the order so that drift hits every kind alike
        for kind in kinds[index % len(kinds):] + kinds[:index % len(kinds)]:
            kind()

    event_sums = [sum(f["step_s"][1:]) for f in instrumented]
    walls = [f["wall_s"] for f in instrumented]
    result: dict[str, Any] = {
        "device": str(device), "gpu": gpu_name, "source": source, "resolution": resolution, "steps": steps,
        "load_s": load_s, "pairs": pairs,
        "event_sum_s_steps_1_to_n": event_sums, "synced_wall_sum_s_steps_1_to_n": synced_sums,
        "ratio_event_to_synced_median": statistics.median(event_sums) / statistics.median(synced_sums),
        "instrumented_wall_s": walls, "bare_wall_s": bare,
        "overhead_ratio_median": statistics.median(walls) / statistics.median(bare),
        "overhead_ratio_pairs": [a / b for a, b in zip(walls, bare)],
        "probe_only_wall_s": untelemetered,
        "probe_only_overhead_ratio_median": statistics.median(untelemetered) / statistics.median(bare),
    }
    check.save("speed.json", result)
    check.say(f"- step timing ({device}, {source} {resolution}, {steps} steps, {pairs} interleaved rounds): "
              f"probe-timed steps 1..N-1 / the same steps by a synchronised wall clock = "
              f"{result['ratio_event_to_synced_median']:.4f} (per round: "
              f"{', '.join(f'{a / b:.3f}' for a, b in zip(event_sums, synced_sums))})")
    pair_ratios = result["overhead_ratio_pairs"]
    check.say(f"- instrumentation cost: instrumented / bare wall time = {result['overhead_ratio_median']:.4f} "
              f"(median of each; per pair {min(pair_ratios):.3f}-{max(pair_ratios):.3f}); probe without the NVML "
              f"sampler / bare = {result['probe_only_overhead_ratio_median']:.4f}")

    # The probe's steps 1..N-1 against the GPU's own record of its kernels in those steps.
    if cuda:
        profiled: list[dict[str, float]] = []
        for _ in range(2):  # the first profile pays CUPTI's start-up; keep the second
            timing, prof = _profiled_generation(pipe, settings, steps, device)
            span, busy, kernels = _kernel_time(prof)
            profiled.append({"event_sum_s": sum(timing.step_s[1:]), "kernel_span_s": span,
                             "kernel_busy_s": busy, "gpu_activities": kernels})
        last = profiled[-1]
        result["profiler"] = profiled
        result["ratio_event_to_kernel_span"] = last["event_sum_s"] / last["kernel_span_s"]
        result["gpu_busy_fraction"] = last["kernel_busy_s"] / last["kernel_span_s"]
        check.save("speed.json", result)
        check.say(f"- against torch.profiler (steps 1..N-1, {last['gpu_activities']} GPU activities): probe "
                  f"{last['event_sum_s']:.4f} s, first kernel start to last kernel end {last['kernel_span_s']:.4f} s "
                  f"(ratio {result['ratio_event_to_kernel_span']:.4f}); GPU busy {100 * result['gpu_busy_fraction']:.1f}% "
                  f"of that span")

    denoise = statistics.median(f["phases_s"]["denoise"] for f in instrumented)
    wall = statistics.median(walls)
    evaluations = instrumented[0]["evaluations"]
    result.update(seconds_per_image=wall, denoise_s=denoise, it_per_s=steps / denoise,
                  phases_s={k: statistics.median(f["phases_s"][k] for f in instrumented)
                            for k in instrumented[0]["phases_s"]},
                  flops_per_denoiser_call=flops, peak_vram_allocated_bytes=instrumented[-1]["peak_vram_allocated_bytes"],
                  peak_vram_device_bytes=instrumented[-1]["peak_vram_device_bytes"])
    line = (f"- speed ({source} {resolution}, {steps} Euler steps, batch 1, {'fp16' if cuda else 'fp32'}, CFG): "
            f"{wall:.3f} s/image ({1 / wall:.3f} images/s), denoise {denoise:.3f} s = {steps / denoise:.2f} it/s; "
            f"phases {', '.join(f'{k} {v:.3f} s' for k, v in result['phases_s'].items())}")
    if flops:
        achieved = flops * evaluations / denoise / 1e12
        result["achieved_tflops"] = achieved
        line += f"; {flops / 1e12:.2f} TFLOP per UNet call, {achieved:.0f} TFLOP/s achieved"
        spec = gpus.find_gpu(gpu_name, torch.cuda.get_device_properties(device).total_memory) if gpu_name else None
        if spec is not None:
            result["fraction_of_peak"] = achieved / spec.fp16_tflops
            line += f" = {100 * result['fraction_of_peak']:.1f}% of the {spec.name}'s {spec.fp16_tflops:.0f} dense FP16"
    check.say(line)
    if big:
        check.say(f"- MLPerf anchor: SDXL Offline (MLPerf Inference v4.1) {MLPERF_SDXL_H200_SAMPLES_PER_S:.2f} "
                  f"samples/s per H200 with TensorRT; here eager diffusers {1 / wall:.2f} images/s "
                  f"({1 / wall / MLPERF_SDXL_H200_SAMPLES_PER_S:.2f}x)")
    energy = [f["energy_j"] for f in instrumented if f.get("energy_j") is not None]
    if energy:
        telemetry = instrumented[-1]["telemetry"] or {}
        result["energy_j_per_image"] = statistics.median(energy)
        check.say(f"- energy: {statistics.median(energy):.0f} J/image (median of {len(energy)}, "
                  f"{telemetry.get('energy_source')}), average {telemetry.get('avg_power_w') or 0:.0f} W, peak "
                  f"{telemetry.get('peak_power_w')} W, SM clock {telemetry.get('sm_clock_mhz_avg') or 0:.0f} MHz, "
                  f"max {telemetry.get('temperature_c_max')} °C, throttle reasons {telemetry.get('throttle_reasons')}")
    if cuda:
        check.say(f"- memory (no offload): torch peak allocated {_gib(result['peak_vram_allocated_bytes'])}, "
                  f"NVML device peak {_gib(result['peak_vram_device_bytes'])}")
    check.save("speed.json", result)



# --- reference points and the profiling pass, in-process ------------------------------------

# Kernel classes by name, first match wins: what bounds each (tensor throughput for GEMM,
# convolution and attention; memory bandwidth for the rest: elementwise, norms, copies).
KERNEL_CLASSES = (
    # cuDNN's layout transforms around a convolution only move bytes (run 3 filed them under
    # convolution: about 3.2 of SD 1.5's 5.2 ms a step)
    ("memory-bound", ("nchwtonhwc", "nhwctonchw")),
    ("attention", ("flash", "fmha", "attention", "sdpa", "attn")),
    ("convolution", ("conv", "implicit_gemm_conv", "fprop", "dgrad", "winograd", "cudnn")),
    ("matmul", ("gemm", "cutlass", "xmma", "matmul", "gemv", "wgmma", "cublas", "nvjet")),
)


def kernel_class(name: str) -> str:
    lowered = name.lower()
    for label, needles in KERNEL_CLASSES:
        if any(needle in lowered for needle in needles):
            return label
    return "memory-bound"


def _profile_classes(prof: Any) -> dict[str, Any]:
    """Per-class kernel time and count, kernel launches seen on the host, from one profiler trace."""
    import torch

    classes: dict[str, dict[str, float]] = {}
    launches = 0
    names: dict[str, float] = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            label = kernel_class(event.name)
            entry = classes.setdefault(label, {"kernels": 0, "seconds": 0.0})
            duration = (event.time_range.end - event.time_range.start) / 1e6
            entry["kernels"] += 1
            entry["seconds"] += duration
            names[event.name[:80]] = names.get(event.name[:80], 0.0) + duration
        elif event.name in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx"):
            launches += 1
    top = sorted(names.items(), key=lambda item: -item[1])[:12]
    return {"classes": classes, "host_launches": launches, "top_kernels": top}


def _reference_model(check: Check, source: str, resolution: str, steps: int, guidance: float,
                     timed: int) -> dict[str, Any]:
    """Seconds per image, it/s and a profile of steps 1..N-1 for one model at its published setup."""
    import torch

    from diffbench.execute.configure import call_arguments
    from diffbench.execute.generation import Meters, measure_generation
    from diffbench.hardware import nvml
    from diffbench.measure.clocks import clock_for
    from diffbench.measure.flops import count_call_flops
    from diffbench.measure.memory import HostPeak, TorchCudaPeak
    from diffbench.measure.probe import PipelineProbe, denoiser_of
    from diffbench.measure.telemetry import TelemetrySampler
    from diffbench.models.sources import load_pipeline

    cuda = check.cuda
    device = torch.device("cuda" if cuda else "cpu")
    started = time.perf_counter()
    pipe = load_pipeline({"source": source}, torch.float16 if cuda else torch.float32, Path("."), device)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - started
    settings = {"prompt": "a lighthouse on a cliff at dusk", "steps": steps, "resolution": resolution,
                "batch_size": 1, "guidance_scale": guidance, "seed": 0, "negative_prompt": None}
    meters = Meters(HostPeak())
    if cuda:
        meters.cuda = TorchCudaPeak(device)
        props = torch.cuda.get_device_properties(device)
        handle = nvml.handle_for_uuid(f"GPU-{props.uuid}")
        if handle is not None:
            meters.telemetry = TelemetrySampler(nvml.nvml(), handle)
    probe = PipelineProbe(pipe, clock_for(device))
    probe.capture = True
    measure_generation(pipe, probe, meters, call_arguments(pipe, settings))  # warm-up
    flops = count_call_flops(denoiser_of(pipe), *probe.captured) if probe.captured else None
    probe.captured = None
    runs = [measure_generation(pipe, probe, meters, call_arguments(pipe, settings))[0].fields() for _ in range(timed)]
    probe.remove()
    result: dict[str, Any] = {
        "source": source, "resolution": resolution, "steps": steps, "guidance_scale": guidance,
        "dtype": "fp16" if cuda else "fp32", "load_s": load_s, "timed": timed,
        "wall_s": [r["wall_s"] for r in runs], "denoise_s": [r["phases_s"]["denoise"] for r in runs],
        "phases_s": {k: statistics.median(r["phases_s"][k] for r in runs) for k in runs[0]["phases_s"]},
        "evaluations": runs[0]["evaluations"], "flops_per_denoiser_call": flops,
        "step_s_median": statistics.median(statistics.median(r["step_s"]) for r in runs),
        "peak_vram_allocated_bytes": max(r["peak_vram_allocated_bytes"] or 0 for r in runs),
        "peak_vram_reserved_bytes": max(r["peak_vram_reserved_bytes"] or 0 for r in runs),
        "peak_vram_device_bytes": max(r["peak_vram_device_bytes"] or 0 for r in runs),
        "energy_j": [r["energy_j"] for r in runs if r.get("energy_j") is not None],
    }
    wall = statistics.median(result["wall_s"])
    denoise = statistics.median(result["denoise_s"])
    result.update(seconds_per_image=wall, it_per_s=steps / denoise)
    if cuda:
        # The profiling pass, outside the timed generations: steps 1..N-1 of one generation
        # (twice; the first pays CUPTI's start-up).
        for _ in range(2):
            timing, prof = _profiled_generation(pipe, settings, steps, device)
        span, busy, activities = _kernel_time(prof)
        profiled = _profile_classes(prof)
        result["profile"] = {"steps": steps - 1, "event_sum_s": sum(timing.step_s[1:]), "kernel_span_s": span,
                             "kernel_busy_s": busy, "gpu_activities": activities, **profiled}
    del pipe
    if cuda:
        torch.cuda.empty_cache()
    return result


def reference(check: Check) -> None:
    """SD 1.5 at 512x512, 50 steps, CFG 7.5 and SDXL at 1024x1024, 20 steps, CFG 5 (eager, fp16,
    batch 1): the two most published setups, with a profile per step (kernel count, GPU busy time,
    time per kernel class) for the projection model."""
    big = check.cuda and not check.quick
    setups = [("sd15", "synthetic:sd15", "512x512", 50, 7.5, 5), ("sdxl", "synthetic:sdxl", "1024x1024", 20, 5.0, 3)]
    results: dict[str, Any] = {}
    for name, source, resolution, steps, guidance, timed in setups:
        if not big:
            source, resolution, steps, timed = f"builtin:tiny-{name.replace('15', '')}", "64x64", 4, 2
        result = _reference_model(check, source, resolution, steps, guidance, timed)
        results[name] = result
        check.save("reference.json", results)
        line = (f"- {name} {resolution}, {steps} steps, CFG {guidance}, {result['dtype']}, batch 1: "
                f"{result['seconds_per_image']:.3f} s/image, {result['it_per_s']:.2f} it/s (denoise), phases "
                f"{', '.join(f'{k} {v:.3f} s' for k, v in result['phases_s'].items())}; torch peak allocated "
                f"{_gib(result['peak_vram_allocated_bytes'])}, reserved {_gib(result['peak_vram_reserved_bytes'])}, "
                f"NVML {_gib(result['peak_vram_device_bytes'] or None)}")
        if result["energy_j"]:
            line += f"; {statistics.median(result['energy_j']):.0f} J/image"
        check.say(line)
        profiled = result.get("profile")
        if profiled:
            per_step = profiled["steps"]
            classes = ", ".join(f"{label} {entry['seconds'] / per_step * 1e3:.2f} ms ({entry['kernels'] / per_step:.0f})"
                                for label, entry in sorted(profiled["classes"].items()))
            check.say(f"  - profile per step: {profiled['event_sum_s'] / per_step * 1e3:.2f} ms by events, GPU busy "
                      f"{profiled['kernel_busy_s'] / per_step * 1e3:.2f} ms "
                      f"({100 * profiled['kernel_busy_s'] / profiled['kernel_span_s']:.1f}%), "
                      f"{profiled['host_launches'] / per_step:.0f} launches; kernel time (count): {classes}")


# --- sections 3-6: through the runner ---------------------------------------------------------

def _model(check: Check, synthetic: str) -> tuple[str, str]:
    """The source and resolution a section runs: the real size on a GPU, tiny when rehearsing."""
    if check.cuda and not check.quick:
        return f"synthetic:{synthetic}", "1024x1024"
    tiny = {"sdxl": "tiny-sdxl", "sd35-medium": "tiny-sd3", "flux-schnell": "tiny-flux",
            "wan-1.3b": "tiny-wan"}[synthetic]
    return f"builtin:{tiny}", "64x64"


def vram_limit(check: Check) -> None:
    source, resolution = _model(check, "sdxl")
    device = "cuda" if check.cuda else "auto"
    records = _run_suite(check, "vram_limit", f"""name: vram-limit
models:
  sdxl: {{source: "{source}"}}
defaults: {{resolution: {resolution}, steps: 4, device: {device}}}
matrix:
  vram_limit: [8GiB]
  offload: [none, model]
include:
  - {{vram_limit: 5GiB, offload: none}}
warmup: 0
repeats: 2
timeout_s: 120
""")
    _describe_generations(check, records, lambda c: f"vram_limit {c['vram_limit']}, offload {c['offload']}")
    survived = any(r["status"] == "oom" for r in records) and any(r["status"] == "ok" for r in records)
    check.say(f"- OOM recorded and the run continued after it: {'yes' if survived else 'NO'}")


def _offload(check: Check, name: str, modes: list[str], tiling: bool) -> None:
    source, resolution = _model(check, "sdxl")
    device = "cuda" if check.cuda else "auto"
    include = "include:\n  - {offload: none, vae_tiling: true}\n" if tiling else ""
    records = _run_suite(check, name, f"""name: {name}
models:
  sdxl: {{source: "{source}"}}
defaults: {{resolution: {resolution}, steps: 4, device: {device}}}
matrix:
  offload: [{', '.join(modes)}]
{include}warmup: 1
repeats: 2
timeout_s: 150
""")
    _describe_generations(check, records, lambda c: f"SDXL {resolution} 4 steps, offload {c['offload']}"
                                                    f"{' + VAE tiling' if c['vae_tiling'] else ''}")


def offload_fast(check: Check) -> None:
    _offload(check, "offload-fast", ["none", "model", "group-block"], tiling=True)


def offload_slow(check: Check) -> None:
    _offload(check, "offload-slow", ["sequential", "group-leaf"], tiling=False)


def native(check: Check) -> None:
    sd35, resolution = _model(check, "sd35-medium")
    flux, _ = _model(check, "flux-schnell")
    device = "cuda" if check.cuda else "auto"
    records = _run_suite(check, "native", f"""name: native
models:
  sd35: {{source: "{sd35}"}}
  flux: {{source: "{flux}"}}
defaults: {{resolution: {resolution}, device: {device}}}
matrix:
  model: [sd35]
  steps: [8]
include:
  - {{model: flux, steps: 12, cache: [none, first-block@0.1, taylorseer@4, fastercache@2, magcache@0.06]}}
warmup: 1
repeats: 2
timeout_s: 150
""")
    def label(c: dict[str, Any]) -> str:
        return f"{c['model']} {c['resolution']} {c['steps']} steps {c['dtype']}, cache {c.get('cache') or 'none'}"

    _describe_generations(check, records, label)
    for record in records:
        if record["status"] == "ok" and not record["warmup"] and record["repeat"] == 0 and "denoiser_work" in record:
            check.say(f"- {label(record['cell'])}: denoiser work {record['denoiser_work']:.2f} of "
                      f"{record['evaluations']} evaluations")
    _say_quality(check, "native", label)


def compile_check(check: Check) -> None:
    source, resolution = _model(check, "sdxl")
    device = "cuda" if check.cuda else "auto"
    records = _run_suite(check, "compile", f"""name: compile
models:
  sdxl: {{source: "{source}"}}
defaults: {{resolution: {resolution}, steps: {20 if check.cuda and not check.quick else 8}, device: {device}}}
matrix:
  compile: [true]
warmup: 1
repeats: 2
timeout_s: 300
""")
    warm = [r for r in records if r["warmup"] and r["status"] == "ok"]
    if warm:
        check.say(f"- torch.compile warm-up generation (includes compiling): {warm[0]['wall_s']:.1f} s")
    _describe_generations(check, records, lambda c: f"SDXL {c['resolution']} {c['steps']} steps, compiled")
    ok = [r["wall_s"] for r in records if r["status"] == "ok" and not r["warmup"]]
    eager = None
    if (check.out / "reference.json").exists():  # SDXL at the same 20 steps, eager, this run
        eager = json.loads((check.out / "reference.json").read_text()).get("sdxl", {}).get("seconds_per_image")
    elif (check.out / "speed.json").exists():
        eager = json.loads((check.out / "speed.json").read_text()).get("seconds_per_image")
    if ok:
        if eager:
            check.say(f"- compiled / eager seconds per image: {statistics.median(ok) / eager:.3f}")


def quantize_check(check: Check) -> None:
    """Weight quantization on CUDA: bytes resident and speed of torchao and quanto int8 and
    bitsandbytes NF4 against bf16 (bitsandbytes' first real run: it cannot run on a CPU host)."""
    source, resolution = _model(check, "sdxl")
    device = "cuda" if check.cuda else "auto"
    records = _run_suite(check, "quantize", f"""name: quantize
models:
  sdxl: {{source: "{source}"}}
defaults: {{resolution: {resolution}, steps: 8, device: {device}}}
matrix:
  quantize: [none, torchao:int8, quanto:int8, bnb:nf4]
warmup: 1
repeats: 2
timeout_s: 300
""")
    _describe_generations(check, records, lambda c: f"SDXL {resolution} 8 steps, quantize {c['quantize']}")
    _say_quality(check, "quantize", lambda c: f"SDXL {resolution} 8 steps, quantize {c['quantize']}")
    for record in records:
        info = (record.get("runtime") or {}).get("quantization")
        if info and record["repeat"] == 0 and not record["warmup"]:
            check.say(f"- {info['quantize']}: denoiser {_gib(info['weight_bytes_before'])} -> "
                      f"{_gib(info['weight_bytes_after'])}, quantized in {info['quantize_s']:.1f} s")


def write_lora_for(unet: Any, path: Path, rank: int = 32, seed: int = 0) -> int:
    """A LoRA file (diffusers' peft layout) on every attention projection of `unet`, with random
    weights: only the shapes matter for its cost. Works on a meta-device UNet; returns its bytes."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, Any] = {}
    for module_name, module in unet.named_modules():
        if module_name.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v") or module_name.endswith("to_out.0"):
            out_features, in_features = module.weight.shape
            tensors[f"unet.{module_name}.lora_A.weight"] = (
                torch.randn(rank, in_features, generator=generator) / in_features ** 0.5).half()
            tensors[f"unet.{module_name}.lora_B.weight"] = (
                torch.randn(out_features, rank, generator=generator) * 0.01).half()
    save_file(tensors, str(path))
    return path.stat().st_size


def lora_check(check: Check) -> None:
    """A rank-32 LoRA on SDXL's attention: load and unload time, unfused and fused speed."""
    source, resolution = _model(check, "sdxl")
    device = "cuda" if check.cuda else "auto"
    folder = check.out / "lora"
    folder.mkdir(exist_ok=True)
    if source.startswith("synthetic:"):
        from diffbench.models.synthetic import build_modules

        unet = build_modules("sdxl")["unet"]
    else:
        from diffusers import UNet2DConditionModel

        from diffbench.models.builtin import builtin_path

        unet = UNet2DConditionModel.from_pretrained(Path(builtin_path("tiny-sdxl")) / "unet")
    size = write_lora_for(unet, folder / "style.safetensors")
    check.say(f"- LoRA file: rank 32 on every attention projection, {size / 2**20:.1f} MiB")
    records = _run_suite(check, "lora", f"""name: lora
models:
  sdxl: {{source: "{source}"}}
defaults: {{resolution: {resolution}, steps: 8, device: {device}}}
matrix:
  lora: [none, "style.safetensors@1", "fuse:style.safetensors@1"]
warmup: 1
repeats: 2
timeout_s: 200
""")
    _describe_generations(check, records, lambda c: f"SDXL {resolution} 8 steps, lora {c['lora']}")
    for record in records:
        if record["status"] == "ok":
            timings = {k: record[k] for k in ("lora_load_s", "lora_unload_s", "lora_fuse_s") if k in record}
            if timings:
                check.say(f"- lora {record['cell']['lora']} (repeat {record['repeat']}, warm-up {record['warmup']}): "
                          + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))


def video_check(check: Check) -> None:
    """Wan 2.1 1.3B text-to-video on CUDA: decode time and VRAM with and without VAE tiling."""
    source, _ = _model(check, "wan-1.3b")
    device = "cuda" if check.cuda else "auto"
    resolution = "832x480" if check.cuda and not check.quick else "64x64"
    records = _run_suite(check, "video", f"""name: video
models:
  wan: {{source: "{source}"}}
defaults: {{resolution: {resolution}, steps: 4, frames: 17, device: {device}}}
matrix:
  vae_tiling: [false, true]
warmup: 1
repeats: 2
timeout_s: 300
""")
    _describe_generations(check, records, lambda c: f"Wan 1.3B {resolution} 17 frames 4 steps, "
                                                    f"VAE tiling {c['vae_tiling']}")
    for record in records:
        if record["status"] == "ok" and not record["warmup"] and record["repeat"] == 0:
            check.say(f"- VAE tiling {record['cell']['vae_tiling']}: decode {record['phases_s']['decode']:.2f} s, "
                      f"denoise {record['phases_s']['denoise']:.2f} s, {record.get('video_frames')} frames, "
                      f"decode VRAM peak {_gib(record.get('peak_vram_decode_bytes'))}")


# --- sections 10-13: the 12 GB questions (issue 39) ------------------------------------------

FIT12_CAPS = ("10.5GiB", "11GiB", "11.5GiB", "12GiB", "12.5GiB", "13GiB")


def _fit12(check: Check, name: str, expandable: bool) -> None:
    """Does SDXL 1024² fp16 fit 12 GB: plain, VAE tiling (a no-op at 1024² for the published VAE),
    VAE slicing and NF4, each under the caps of FIT12_CAPS; OOM or not, and each phase's peaks.
    The memory rule's margin (analysis/memoryneed.Margin) is re-fitted on what this writes."""
    if expandable:  # read when the workers' CUDA allocator starts: they inherit this process's env
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
    source, resolution = _model(check, "sdxl")
    device = "cuda" if check.cuda else "auto"
    caps = ", ".join(FIT12_CAPS if check.cuda and not check.quick else FIT12_CAPS[3:4])
    records = _run_suite(check, name, f"""name: {name}
models:
  sdxl: {{source: "{source}"}}
defaults: {{resolution: {resolution}, steps: 4, device: {device}}}
matrix:
  vram_limit: [{caps}]
include:
  - {{vram_limit: [{caps}], vae_tiling: true}}
  - {{vram_limit: [{caps}], vae_slicing: true}}
  - {{vram_limit: [{caps}], quantize: bnb:nf4}}
warmup: 0
repeats: 1
timeout_s: 120
""")
    allocator = "expandable segments" if expandable else "default allocator"
    _describe_generations(check, records, lambda c: (
        f"SDXL {c['resolution']} fp16 under {c['vram_limit']} ({allocator}): "
        + (", ".join(k for k in ("vae_tiling", "vae_slicing") if c.get(k))
           or (str(c["quantize"]) if c.get("quantize") not in (None, "none") else "plain"))))


def fit12(check: Check) -> None:
    _fit12(check, "fit12", expandable=False)


def fit12_expandable(check: Check) -> None:
    _fit12(check, "fit12-expandable", expandable=True)


def flux12(check: Check) -> None:
    """The fastest subset of suites/flux-12gb.yaml: which FLUX setting fits 12 GiB, how fast, and
    its SSIM to the unquantized picture."""
    source, resolution = _model(check, "flux-schnell")
    device = "cuda" if check.cuda else "auto"
    records = _run_suite(check, "flux12", f"""name: flux12
models:
  schnell: {{source: "{source}"}}
defaults: {{resolution: {resolution}, steps: 4, dtype: bf16, device: {device}, vram_limit: 12GiB}}
matrix:
  quantize: [none, torchao:int8@all, bnb:nf4@all]
  offload: [model, group-block]
warmup: 1
repeats: 2
timeout_s: 600
quality_reference: {{quantize: none, offload: model}}
""")
    def label(c: dict[str, Any]) -> str:
        return f"FLUX.1 schnell {c['resolution']} 4 steps under 12 GiB, quantize {c['quantize']}, offload {c['offload']}"

    _describe_generations(check, records, label)
    _say_quality(check, "flux12", label)


def results12(check: Check) -> None:
    """SD 1.5 512² at 50 steps and SDXL 1024² at 20 steps as ordinary results lines (plain, model
    offload, NF4) at repeats: auto, pictures kept: the report's verdicts and thumbnails."""
    sdxl, resolution = _model(check, "sdxl")
    sd15 = "synthetic:sd15" if check.cuda and not check.quick else "builtin:tiny-sd"
    small = "512x512" if check.cuda and not check.quick else "64x64"
    device = "cuda" if check.cuda else "auto"
    records = _run_suite(check, "results12", f"""name: results12
models:
  sd15: {{source: "{sd15}"}}
  sdxl: {{source: "{sdxl}"}}
defaults: {{device: {device}}}
matrix:
  model: [sd15]
  steps: [50]
  resolution: [{small}]
  offload: [none, model]
include:
  - {{model: sd15, steps: 50, resolution: {small}, quantize: bnb:nf4}}
  - {{model: sdxl, steps: 20, resolution: {resolution}, offload: [none, model]}}
  - {{model: sdxl, steps: 20, resolution: {resolution}, quantize: bnb:nf4}}
warmup: 1
repeats: {"auto" if check.cuda and not check.quick else 2}
timeout_s: 600
""")
    _describe_generations(check, records, lambda c: (f"{c['model']} {c['resolution']} {c['steps']} steps, offload "
                                                     f"{c['offload']}, quantize {c.get('quantize') or 'none'}"))


SECTIONS: list[tuple[str, Callable[[Check], None], float, bool]] = [
    # name, function, estimated seconds on an H200, needs CUDA (else rehearsed only with --quick).
    # The default order is this run's (2026-11-30): what earlier runs lack first; --only picks others.
    ("reference", reference, 60, False),
    ("quantize", quantize_check, 110, True),
    ("native", native, 110, True),
    ("lora", lora_check, 70, True),
    ("compile", compile_check, 120, True),
    ("video", video_check, 130, True),
    ("speed", speed, 90, False),
    ("vram_limit", vram_limit, 45, True),
    ("offload-fast", offload_fast, 80, True),
    ("offload-slow", offload_slow, 80, True),
    # issue 39: --only fit12 results12 flux12 fit12-expandable (estimates, not yet measured: each
    # fit12 cell loads SDXL under its own cap)
    ("fit12", fit12, 240, True),
    ("fit12-expandable", fit12_expandable, 240, True),
    ("flux12", flux12, 180, True),
    ("results12", results12, 200, True),
]
DEFAULT_SECTIONS = ["reference", "quantize", "native", "lora", "compile", "video"]


def _child(out: Path, name: str, quick: bool, budget_s: float) -> None:
    """Run one section in this process (started by `main` as a fresh process per section)."""
    import torch

    check = Check(out, budget_s, quick, torch.cuda.is_available(), fresh=False)
    function = {n: f for n, f, _, _ in SECTIONS}[name]
    began = time.monotonic()
    check.say(f"## {name}")
    try:
        function(check)
    except Exception as exc:  # recorded; the parent goes on with the next section
        check.say(f"- {name} FAILED: {type(exc).__name__}: {str(exc)[:300]}")
        (out / f"{name}.error.txt").write_text(traceback.format_exc())
    check.say(f"- ({name} took {time.monotonic() - began:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true", help="tiny models (a rehearsal on any machine)")
    parser.add_argument("--budget-s", type=float, default=400.0, help="skip sections that would not fit")
    parser.add_argument("--only", nargs="*", help="run only these sections, in this order (e.g. a rerun)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.child:
        _child(out, args.child, args.quick, args.budget_s)
        return
    import torch

    from diffbench.hardware.sysinfo import system_report

    cuda = torch.cuda.is_available()
    check = Check(out, args.budget_s, args.quick, cuda)
    check.say(f"# diffbench GPU check ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
              f"{', quick' if args.quick else ''})")
    info = system_report()
    check.save("sysinfo.json", info)
    gpu = info["gpus"][0] if info["gpus"] else {}
    check.say(f"- host {info['hostname']}: {gpu.get('name', 'no NVIDIA GPU')}, driver {gpu.get('driver')}, "
              f"CUDA {gpu.get('cuda')}, torch {info['software']['torch']}, diffusers {info['software']['diffusers']}, "
              f"transformers {info['software'].get('transformers')}; warnings: {info['warnings'] or 'none'}")
    estimates = {name: (estimate, needs_cuda) for name, _, estimate, needs_cuda in SECTIONS}
    for name in args.only or DEFAULT_SECTIONS:
        estimate, needs_cuda = estimates[name]
        if needs_cuda and not cuda and not args.quick:
            check.say(f"- {name}: skipped (no CUDA device)")
            continue
        if name == "compile" and not cuda:
            check.say("- compile: skipped on CPU (minutes of compiling on a small machine)")
            continue
        if check.left() < (estimate if cuda and not args.quick else 0):
            check.say(f"- {name}: skipped ({check.left():.0f} s of the budget left, needs about {estimate:.0f} s)")
            continue
        # A fresh process per section: no section's CUDA memory shows in the next one's NVML figures,
        # and a crash (or a hang, cut at the budget) costs only that section.
        command = [sys.executable, __file__, str(out), "--child", name, "--budget-s", str(check.left())]
        try:
            subprocess.run(command + (["--quick"] if args.quick else []), timeout=max(check.left(), 30), check=False)
        except subprocess.TimeoutExpired:
            check.say(f"- {name}: cut at the time budget")


if __name__ == "__main__":
    main()
