"""What a pipeline load costs before the load itself: a fresh worker's start, spawned or forked.

Each load group gets a fresh worker process (no memory carries over from one load to the next).
A spawned worker imports torch and diffusers again every time; a worker forked from the fork
server (execute/processes.py) finds them imported. This runs the same suite of LOADS load groups
(tiny-sd on the CPU, one 1-step generation each) in a fresh process per start method and times,
for each load, the start: from the moment the previous load's last record arrived (or the run
began) to the worker's "loaded" message, minus the load itself (load_s) and the diffusers
import the worker times (import_s, included in the start: it is what a warm worker saves).

    python benchmarks/worker_start.py [--loads 5]

Prints one line per start method: the first load's start and the median of the later ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BACKENDS = ("default", "native", "_native_math", "_native_efficient", "_native_flash", "flex")


def measure(loads: int) -> dict[str, float]:
    """Runs in the process being measured: the suite's jobs through the real LocalExecutor."""
    from diffbench.execute.local import LocalExecutor
    from diffbench.execute.runner import _jobs
    from diffbench.intake.plan import make_plan
    from diffbench.intake.suite import load_suite

    folder = Path(tempfile.mkdtemp(prefix="worker-start-"))
    suite = folder / "s.yaml"
    suite.write_text("name: starts\nmodels:\n  t: {source: 'builtin:tiny-sd'}\n"
                     "defaults: {device: cpu, steps: 1}\nmatrix:\n"
                     f"  attention: [{', '.join(BACKENDS[:loads])}]\nwarmup: 0\nrepeats: 1\n")
    jobs, _ = _jobs(make_plan(load_suite(suite)), {})
    marks: list[tuple[str, float, object]] = []
    executor = LocalExecutor(lambda kind, payload, stream: marks.append((kind, time.perf_counter(), payload)))
    began = time.perf_counter()
    executor.run(jobs)
    starts, previous_end = [], began
    for kind, at, payload in marks:
        if kind == "loaded":
            assert isinstance(payload, dict)
            starts.append(at - previous_end - float(payload["load_s"]))
        elif kind == "record":
            previous_end = at
    return {"first": starts[0], "later": statistics.median(starts[1:]), "loads": len(starts),
            "total": time.perf_counter() - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.loads)))
        return
    for method in ("spawn", "forkserver"):
        result = subprocess.run([sys.executable, __file__, "--child", "--loads", str(args.loads)], check=True,
                                capture_output=True, text=True, env={**os.environ, "DIFFBENCH_WORKER_START": method})
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{method:>10}: first load's start {figures['first']:.2f} s, later loads' start (median of "
              f"{figures['loads'] - 1}) {figures['later']:.2f} s, whole run {figures['total']:.1f} s")


if __name__ == "__main__":
    main()
