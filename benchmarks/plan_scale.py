"""How long validate and plan take on the largest suite allowed (10,000 cells).

    python benchmarks/plan_scale.py [--runs 3]

Writes a 100 x 100 matrix (steps x seed) on a built-in model and times `diffbench validate`,
`diffbench plan` (the table: 200 rows, the rest counted) and `diffbench plan --json` (every
cell) as a user runs them: a fresh process each, imports included. Prints the median of --runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def suite_text() -> str:
    steps = ",".join(str(i) for i in range(1, 101))
    seeds = ",".join(str(i) for i in range(100))
    return f'name: big\nmodels:\n  m: {{source: "builtin:tiny-sd"}}\nmatrix:\n  steps: [{steps}]\n  seed: [{seeds}]\n'


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "diffbench.cli", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        suite = Path(folder) / "big.yaml"
        suite.write_text(suite_text())
        for name, command in (("validate", ["validate", str(suite)]), ("plan", ["plan", str(suite)]),
                              ("plan --json", ["plan", str(suite), "--json"])):
            seconds = [timed(command) for _ in range(args.runs)]
            print(f"{name:12s} 10,000 cells: {statistics.median(seconds):.2f} s (median of {args.runs})")


if __name__ == "__main__":
    main()
