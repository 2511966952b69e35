"""What the offload transfer rules say of the H200 host's measured offload cells.

    python benchmarks/offload_check.py

For each offload mode of docs/gpu-runs (SDXL 1024², 4 steps, fp16), the bytes analysis/transfer.py
counts for it, the seconds that cell took beyond the no-offload cell, and the rate in RATES. The
rates were fitted on these very cells (one per mode), so that table shows the rules and their
inputs. The second table is the out-of-sample check across hosts: the same rules with the same
counted bytes against a published A100 host's SDXL offload times (PUBLISHED_A100), each host's
rate predicting the other's cells.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from diffbench.analysis.memoryneed import weight_bytes
from diffbench.analysis.transfer import RATES, transfer_cost
from diffbench.hardware.gpus import resolve_gpu
from diffbench.measure.workload import count_workload

RUNS = Path(__file__).resolve().parent.parent / "docs" / "gpu-runs"
# Hugging Face blog "Exploring simple optimizations for SDXL" (huggingface.co/blog/simple_sdxl_optimizations,
# 2023): A100 40GB, 4 images of 1024² per call, 50 steps (one batched CFG pass per step), fp16 + SDPA;
# seconds per call: the plain pipeline and each offload mode.
PUBLISHED_A100 = {"none": 11.4130, "model": 16.0822, "sequential": 67.0340}
PUBLISHED_STEPS = 50


def measured_walls() -> dict[str, tuple[float, float]]:
    """offload mode -> (median wall seconds, median step seconds) of its measured SDXL 4-step cell."""
    walls: dict[str, list[float]] = {}
    steps: dict[str, list[float]] = {}
    for name in ("offload-fast-20261126-182324-vm.jsonl", "offload-slow-20261126-182655-vm.jsonl"):
        for line in (RUNS / name).read_text().splitlines():
            record = json.loads(line)
            if record["type"] != "generation" or record.get("warmup") or record["status"] != "ok":
                continue
            cell = record["cell"]
            if cell.get("vae_tiling") or cell["steps"] != 4:
                continue
            walls.setdefault(cell["offload"], []).append(record["wall_s"])
            steps.setdefault(cell["offload"], []).append(statistics.median(record["step_s"]))
    return {mode: (statistics.median(v), statistics.median(steps[mode])) for mode, v in walls.items()}


def main() -> None:
    h200 = resolve_gpu("h200")
    workload = count_workload("sdxl", "1024x1024", 1, "fp16")
    weights = weight_bytes(workload.parameters, workload.linear_parameters, "fp16", None)
    measured = measured_walls()
    plain_wall, plain_step = measured["none"]
    print(f"H200, SDXL 1024² fp16, 4 steps; no offload: {plain_wall:.3f} s per image, {1000 * plain_step:.1f} ms per step")
    print(f"{'mode':12} {'GB/image':>9} {'GB/eval':>8} {'measured s':>11} {'rule s':>7} {'ratio':>6}  rate GB/s")
    for mode in RATES:
        if mode not in measured:
            continue
        moves = transfer_cost(mode, weights, h200, vae_stays=True)
        wall, step = measured[mode]
        rule = plain_wall + moves.per_image_s + 4 * (moves.evaluation(plain_step) - plain_step)
        rate = RATES[mode]
        print(f"{mode:12} {moves.per_image_bytes / 1e9:9.2f} {moves.per_evaluation_bytes / 1e9:8.2f} {wall:11.3f} "
              f"{rule:7.3f} {rule / wall:6.2f}  {rate.per_image_gbs:g} / {rate.per_evaluation_gbs:g}"
              f"{' (overlapped)' if rate.overlapped else ''}")
    cross_host(weights, measured)


def cross_host(weights: dict[str, float], measured: dict[str, tuple[float, float]]) -> None:
    """Each host's rate (bytes over the seconds a mode added) predicting the other host's cell."""
    a100, h200 = resolve_gpu("a100 40gb"), resolve_gpu("h200")
    plain_wall, plain_step = measured["none"]
    print(f"\nacross hosts (A100: {PUBLISHED_A100['none']:.2f} s per call of 4 images, 50 steps, published):")
    print(f"{'mode':12} {'A100 GB/s':>10} {'H200 GB/s':>10} {'A100 cell from H200 rate':>25} "
          f"{'H200 cell from A100 rate':>25}")
    for mode in ("model", "sequential"):
        a100_moves = transfer_cost(mode, weights, a100)
        a100_bytes = a100_moves.per_image_bytes + PUBLISHED_STEPS * a100_moves.per_evaluation_bytes
        a100_rate = a100_bytes / (PUBLISHED_A100[mode] - PUBLISHED_A100["none"]) / 1e9
        h200_moves = transfer_cost(mode, weights, h200)
        h200_bytes = h200_moves.per_image_bytes + 4 * h200_moves.per_evaluation_bytes
        h200_added = measured[mode][0] - plain_wall
        h200_rate = h200_bytes / h200_added / 1e9
        a100_predicted = PUBLISHED_A100["none"] + a100_bytes / (h200_rate * 1e9)
        h200_predicted = plain_wall + h200_bytes / (a100_rate * 1e9)
        print(f"{mode:12} {a100_rate:10.2f} {h200_rate:10.2f} "
              f"{a100_predicted:8.2f} s / {PUBLISHED_A100[mode]:.2f} = {a100_predicted / PUBLISHED_A100[mode]:4.2f} "
              f"{h200_predicted:8.2f} s / {measured[mode][0]:.2f} = {h200_predicted / measured[mode][0]:4.2f}")


if __name__ == "__main__":
    main()
