"""What the offload transfer rules say of the H200 host's measured offload cells.

    python benchmarks/offload_check.py

For each offload mode of docs/gpu-runs (SDXL 1024², 4 steps, fp16), the bytes analysis/transfer.py
counts for it, the seconds that cell took beyond the no-offload cell, and the rate in RATES. The
rates were fitted on these very cells (one per mode), so the table shows the rules and their
inputs, not an out-of-sample check: that needs another host's offload cells (issue 39). Then the
same settings projected onto an RTX 3060 from counts and from the measured cells.
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


if __name__ == "__main__":
    main()
