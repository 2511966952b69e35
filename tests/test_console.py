"""What a run prints at its end: warnings grouped by kind, so that a sweep's summary is not
buried under forty lines of the same advice."""

from __future__ import annotations

from diffbench.execute.advice import Advice
from diffbench.report.live import MOST_WARNINGS_OF_A_KIND, grouped_warnings


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


def test_escape_sequences_and_markup_in_names_never_reach_the_terminal_raw(tmp_path) -> None:
    """A model label carrying an OSC 52 clipboard write, a clear-screen sequence and rich markup:
    run's live line, summary, warnings and recommend print them escaped, never obeyed."""
    import subprocess
    import sys

    hostile = "m\x1b]52;c;aGVsbG8=\x07\x1b[2J[red]x[/red]"
    suite = tmp_path / "s.yaml"
    suite.write_text('name: s\nmodels:\n  "m\\e]52;c;aGVsbG8=\\a\\e[2J[red]x[/red]": {source: "builtin:tiny-sd"}\n'
                     "defaults: {steps: 2, device: cpu}\nwarmup: 0\nrepeats: 1\n")
    from diffbench.intake.suite import load_suite

    assert hostile in load_suite(suite).models  # the YAML escapes are the raw bytes
    run = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    results = next((tmp_path / "out").glob("*.jsonl"))
    answer = subprocess.run([sys.executable, "-m", "diffbench.cli", "recommend", str(results)],
                            capture_output=True, text=True, timeout=300)
    for output in (run.stdout, run.stderr, answer.stdout):
        assert "\x1b" not in output and "\x07" not in output  # nothing runs in the terminal
    assert "\\x1b]52;c;aGVsbG8=\\x07" in run.stdout + run.stderr  # shown, escaped
    assert "[red]x[/red]" in run.stdout  # markup printed as text, not obeyed
