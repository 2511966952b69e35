"""The harness's own cost: instrumented generation vs a bare pipeline call, interleaved.

Same tiny pipeline, same settings, one process. Each pair runs one generation under
diffbench's full instrumentation (step hooks, phase wrappers, step-end callback, memory
meters) and one bare `pipe(...)` with the instrumentation removed; which goes first
alternates, so drift (thermal, caches) hits both equally. The figure is the median of
the per-pair ratios of wall time; printed last as overhead_ratio=<value>.

    python benchmarks/overhead.py [--model tiny-sd] [--steps 8] [--pairs 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sd")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--resolution", default="64x64")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    from diffbench.execute.worker import quiet_libraries

    quiet_libraries()
    import torch

    from diffbench.execute.configure import call_arguments
    from diffbench.execute.generation import Meters, measure_generation
    from diffbench.measure.clocks import WallClock
    from diffbench.measure.memory import HostPeak
    from diffbench.measure.probe import PipelineProbe
    from diffbench.models.sources import load_pipeline

    pipe = load_pipeline({"source": f"builtin:{args.model}"}, torch.float32, Path("."))
    pipe.set_progress_bar_config(disable=True)
    settings = {"prompt": "a lighthouse at dusk", "steps": args.steps, "resolution": args.resolution,
                "batch_size": 1, "guidance_scale": 7.5, "seed": 0, "negative_prompt": None}
    meters = Meters(HostPeak())

    def instrumented() -> float:
        probe = PipelineProbe(pipe, WallClock())
        try:
            started = time.perf_counter()
            measure_generation(pipe, probe, meters, call_arguments(pipe, settings))
            return time.perf_counter() - started
        finally:
            probe.remove()

    def bare() -> float:
        kwargs = call_arguments(pipe, settings)
        kwargs.pop("callback_on_step_end_tensor_inputs", None)
        started = time.perf_counter()
        pipe(**kwargs)
        return time.perf_counter() - started

    for _ in range(args.warmup):
        instrumented()
        bare()
    ratios, timed, plain = [], [], []
    for pair in range(args.pairs):
        if pair % 2:
            b, a = bare(), instrumented()
        else:
            a, b = instrumented(), bare()
        timed.append(a)
        plain.append(b)
        ratios.append(a / b)
    print(f"model={args.model} steps={args.steps} resolution={args.resolution} pairs={args.pairs} "
          f"torch_threads={torch.get_num_threads()}")
    print(f"instrumented median {statistics.median(timed) * 1000:.2f} ms, "
          f"bare median {statistics.median(plain) * 1000:.2f} ms")
    q = statistics.quantiles(ratios, n=4)
    print(f"ratio quartiles {q[0]:.4f} {q[1]:.4f} {q[2]:.4f}")
    print(f"overhead_ratio={statistics.median(ratios):.4f}")


if __name__ == "__main__":
    main()
