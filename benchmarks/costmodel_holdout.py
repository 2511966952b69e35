"""How well the cost model predicts a step count it was not fitted on, on this machine.

    python benchmarks/costmodel_holdout.py [--repeats 8]

Runs tiny-sd on the CPU at 2, 4, 8 and 16 steps (Euler and Heun), fits on 2, 4 and 16, predicts 8
and prints the relative error and whether the measured median falls inside the interval.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from diffbench.analysis.costmodel import estimate
from diffbench.analysis.tables import with_metrics
from diffbench.contract.results import load_results
from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        suite = Path(folder) / "holdout.yaml"
        suite.write_text("name: holdout\nmodels:\n  t: {source: 'builtin:tiny-sd'}\n"
                         "defaults: {device: cpu, resolution: 64x64}\nmatrix:\n  steps: [2, 4, 8, 16]\n"
                         f"  sampler: [euler, heun]\nwarmup: 1\nrepeats: {args.repeats}\n")
        outcome = run_suite(load_suite(suite), Path(folder) / "out")
        frame = with_metrics(load_results([outcome.results_path]).generations)
    for answer in estimate(frame[frame["steps"] != 8], 8):
        sampler = answer.fit.settings.get("sampler")
        actual = frame[(frame["steps"] == 8) & ~frame["warmup"] & (frame["sampler"] == sampler)]["s_per_image"].median()
        inside = answer.low <= actual <= answer.high
        print(f"{sampler}: predicted {answer.seconds:.4f} s ({answer.low:.4f}-{answer.high:.4f}), measured "
              f"{actual:.4f} s, error {100 * (answer.seconds / actual - 1):+.1f}%, inside the interval: {inside}")


if __name__ == "__main__":
    main()
