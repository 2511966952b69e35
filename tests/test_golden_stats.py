"""The statistics of a fixed results file are the same, figure for figure, as when they were
recorded (tests/golden/expected.json): a speed-up of the analysis must not change a number.
A change that is meant regenerates the file with tests/golden/regenerate.py and says so in its commit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))

from regenerate import statistics  # noqa: E402


def test_statistics_of_the_golden_file_are_unchanged() -> None:
    expected = json.loads((GOLDEN / "expected.json").read_text())
    actual = json.loads(json.dumps(statistics(GOLDEN / "results.jsonl")))  # the same float round trip
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key] == expected[key], f"{key} changed"


def test_the_golden_file_holds_real_verdicts() -> None:
    """The file is worth guarding only if it exercises each kind of answer."""
    expected = json.loads((GOLDEN / "expected.json").read_text())
    verdicts = {row["verdict"] for table in expected.values() if isinstance(table, list) for row in table
                if "verdict" in row}
    assert {"baseline", "slower", "not significant"} <= verdicts
