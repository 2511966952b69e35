"""What the offload transfer rules say of the H200 host's measured offload cells.

    python benchmarks/offload_check.py

For each offload mode of docs/gpu-runs (SDXL 1024², 4 steps, fp16), the bytes analysis/transfer.py
counts for it, the seconds that cell took beyond the no-offload cell, and the rate in RATES. The
rates were fitted on these very cells (one per mode), so that table shows the rules and their
inputs. The second table is the out-of-sample check across hosts: the same rules with the same
counted bytes against the published offload timings of other hosts (hardware/published_offload.py:
an A100 host, a PCIe 3.0 host with a P100 and a GTX 1070), each host's rate beside the H200's and
what it would say of the H200's own cell.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from diffbench.analysis.hostrates import h200_rate, host_rates, moved_bytes, rate_spread
from diffbench.analysis.memoryneed import weight_bytes
from diffbench.analysis.transfer import HOST_RATE_SPREAD, RATES, transfer_cost
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
    cross_host(measured)


def cross_host(measured: dict[str, tuple[float, float]]) -> None:
    """Each other host's rate (hardware/published_offload.py) beside the H200's, and what each
    rate says of the H200's own cell."""
    plain_wall = measured["none"][0]
    print("\nacross hosts (published; bytes as counted here over the seconds each mode added to the plain call):")
    print(f"{'setup':48} {'mode':11} {'GB':>7} {'added s':>8} {'GB/s':>6} {'H200 GB/s':>10}  H200 cell from this rate")
    for rate in host_rates():
        h200_bytes = moved_bytes(rate.mode, "sdxl", "1024x1024", 4, True)
        predicted = plain_wall + h200_bytes / (rate.gbs * 1e9)
        print(f"{rate.figure.label:48} {rate.mode:11} {rate.moved_bytes / 1e9:7.2f} {rate.added_s:8.2f} {rate.gbs:6.2f} "
              f"{h200_rate(rate.mode):10.2f}  {predicted:6.2f} s / {measured[rate.mode][0]:.2f} = "
              f"{predicted / measured[rate.mode][0]:4.2f}")
    spread = rate_spread(host_rates())
    print("widest x/÷ between the H200's rate and another host's: "
          + ", ".join(f"{mode} {value:.2f}" for mode, value in spread.items())
          + f" (analysis/transfer.HOST_RATE_SPREAD: {HOST_RATE_SPREAD})")


if __name__ == "__main__":
    main()
