"""The statistics of a fixed results file are the same, figure for figure, as when they were
recorded (tests/golden/expected.json): a speed-up of the analysis must not change a number.
A change that is meant regenerates the file with tests/golden/regenerate.py and says so in its commit.

Floats agree to a relative 1e-9: numpy and scipy builds differ in the last bit of a sum or a
quantile between machines (four figures did on an AMD EPYC), and no verdict turns on the 16th
digit. Everything else (verdicts, counts, labels) must be equal.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))

from regenerate import statistics  # noqa: E402

RELATIVE_TOLERANCE = 1e-9


def _differences(actual: Any, expected: Any, where: str) -> list[str]:
    """Where `actual` differs from `expected`: floats beyond the tolerance, anything else at all."""
    if isinstance(expected, float) and isinstance(actual, (float, int)) and not isinstance(actual, bool):
        same = math.isclose(actual, expected, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-300) or (
            math.isnan(actual) and math.isnan(expected))
        return [] if same else [f"{where}: {actual!r} != {expected!r}"]
    if isinstance(expected, dict) and isinstance(actual, dict):
        if actual.keys() != expected.keys():
            return [f"{where}: keys {sorted(actual)} != {sorted(expected)}"]
        return [d for key in expected for d in _differences(actual[key], expected[key], f"{where}.{key}")]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            return [f"{where}: {len(actual)} items != {len(expected)}"]
        return [d for i, (a, e) in enumerate(zip(actual, expected)) for d in _differences(a, e, f"{where}[{i}]")]
    return [] if actual == expected and type(actual) is type(expected) else [f"{where}: {actual!r} != {expected!r}"]


def test_the_tolerance_catches_a_change_in_the_ninth_digit_and_any_change_of_a_verdict() -> None:
    assert _differences({"a": [1.0 + 1e-12]}, {"a": [1.0]}, "x") == []
    assert _differences({"a": [1.0 + 1e-8]}, {"a": [1.0]}, "x") != []
    assert _differences({"verdict": "slower"}, {"verdict": "faster"}, "x") != []
    assert _differences({"n": 3}, {"n": 4}, "x") != []


def test_statistics_of_the_golden_file_are_unchanged() -> None:
    expected = json.loads((GOLDEN / "expected.json").read_text())
    actual = json.loads(json.dumps(statistics(GOLDEN / "results.jsonl")))  # the same float round trip
    assert _differences(actual, expected, "expected") == []


def test_the_golden_file_holds_real_verdicts() -> None:
    """The file is worth guarding only if it exercises each kind of answer."""
    expected = json.loads((GOLDEN / "expected.json").read_text())
    verdicts = {row["verdict"] for table in expected.values() if isinstance(table, list) for row in table
                if "verdict" in row}
    # its "no difference" rows all have intervals within 5% of 1: "negligible" since effects are judged
    # on the interval (before: "not significant"); tests/test_stats.py covers "not significant" itself
    assert {"baseline", "slower", "negligible"} <= verdicts
