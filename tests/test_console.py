"""What a run prints at its end: warnings grouped by kind, so that a sweep's summary is not
buried under forty lines of the same advice."""

from __future__ import annotations

from diffbench.analysis.advice import Advice
from diffbench.console import MOST_WARNINGS_OF_A_KIND, grouped_warnings


def test_a_kind_met_in_many_cells_is_one_line_naming_every_cell() -> None:
    many = [Advice("high variation", f"tiny-sdxl euler 8 steps 64x64 ({i:016x})", f"repeats vary by {10 + i}%")
            for i in range(MOST_WARNINGS_OF_A_KIND + 3)]
    few = [Advice("slow first run", "tiny-sd ddim 4 steps 64x64 (00000000000000aa)", "raise warmup")]
    lines = grouped_warnings([many[0], few[0], *many[1:]])
    assert len(lines) == 2
    assert lines[0].startswith(f"high variation in {len(many)} cells: tiny-sdxl euler 8 steps 64x64 "
                               f"({0:016x}): repeats vary by 10%; also ")
    assert all(f"{i:016x}" in lines[0] for i in range(len(many)))  # every cell named, none dropped
    assert lines[1] == few[0].text()


def test_a_few_warnings_of_a_kind_stay_whole() -> None:
    advices = [Advice("throttling", f"cell {i}", "clocks fell") for i in range(MOST_WARNINGS_OF_A_KIND)]
    assert grouped_warnings(advices) == [a.text() for a in advices]
