"""Write diffbench/hardware/counted_workloads.json: the counted work of every shipped setup
(measure/workload.SHIPPED_SETUPS), so that a fresh install answers without counting.

    python scripts/ship_counts.py

Run it after changing the counting rules (COUNT_VERSION) or the synthetic architectures;
tests/test_counted_answers.py recounts each setup and compares it with the shipped file.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffbench.measure.workload import SHIPPED, SHIPPED_SETUPS, count_fresh, shipped_key


def main() -> None:
    shipped = {shipped_key(*setup): count_fresh(*setup) for setup in SHIPPED_SETUPS}
    target = Path(__file__).resolve().parent.parent / "diffbench" / "hardware" / SHIPPED
    target.write_text(json.dumps(shipped, separators=(",", ":")) + "\n")
    print(f"{target}: {len(shipped)} setups, {target.stat().st_size} bytes")


if __name__ == "__main__":
    main()
