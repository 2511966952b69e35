"""Every command does what was asked or says why not: names understood everywhere, nothing
empty passed off as an answer (each case here once fell back silently)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from diffbench.cli import main
from diffbench.contract.records import cell_settings, generation_record, run_record
from diffbench.contract.results import ResultsWriter


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """Two samplers (suite spellings Euler and DPM++ 2M Karras) at 4 and 8 steps, model 'sd' from builtin:tiny-sd."""
    path = tmp_path / "r.jsonl"
    writer = ResultsWriter(path)
    writer.write(run_record("r", "box", [{"name": "NVIDIA GeForce RTX 4090"}], {"name": "s"}))
    for sampler, factor in (("euler", 1.0), ("dpmpp_2m_karras", 1.3)):
        for steps in (4, 8):
            cell = cell_settings(model="sd", source="builtin:tiny-sd", sampler=sampler, steps=steps,
                                 resolution="64x64", prompt="p", seed=0, batch_size=1)
            for repeat in range(8):
                wall = factor * (0.2 + 0.1 * steps) * (1 + 0.002 * ((5 * repeat) % 8))  # steady: no trend
                record = generation_record(f"{sampler}-{steps}", cell, repeat, False, "ok", wall_s=wall,
                                           step_s=[0.1 * factor] * steps, evaluations=steps,
                                           runtime={"device": "cuda:0", "dtype": "fp16",
                                                    "gpu_name": "NVIDIA GeForce RTX 4090"})
                record["run_id"] = "r"
                writer.write(record)
    writer.close()
    return path


def _run(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_compare_baseline_by_the_suites_sampler_spelling(results: Path) -> None:
    out = _run("compare", results, "--by", "sampler", "--baseline", "DPM++ 2M Karras")
    assert out.exit_code == 0, out.output
    assert "euler vs dpmpp_2m_karras" in out.output or "euler is" in out.output
    assert "than dpmpp_2m_karras" in out.output


def test_compare_baseline_steps_as_a_number(results: Path) -> None:
    out = _run("compare", results, "--by", "steps", "--baseline", "8")
    assert out.exit_code == 0 and "than 8 steps" in out.output


def test_an_unknown_baseline_is_an_error_listing_the_values(results: Path) -> None:
    out = _run("compare", results, "--by", "sampler", "--baseline", "foo")
    assert out.exit_code == 2
    assert "sampler 'foo' is not in these results (they have: euler, dpmpp_2m_karras)" in out.output


@pytest.mark.parametrize("command", [["compare", "--by", "samplr"], ["report", "--compare", "samplr", "-o", "{o}"]])
def test_an_unknown_axis_is_an_error_with_a_suggestion(results: Path, command: list[str], tmp_path: Path) -> None:
    args = [a.format(o=tmp_path / "r.html") for a in command]
    out = _run(args[0], results, *args[1:])
    assert out.exit_code == 2 and "unknown axis 'samplr'" in out.output and "did you mean 'sampler'" in out.output


def test_a_filter_value_that_matches_nothing_is_an_error(results: Path, tmp_path: Path) -> None:
    out = _run("report", results, "--filter", "sampler=eulr", "-o", tmp_path / "r.html")
    assert out.exit_code == 2 and "did you mean 'euler'" in out.output
    assert not (tmp_path / "r.html").exists()


def test_a_filter_by_the_suites_spelling_selects(results: Path) -> None:
    out = _run("export", results, "--filter", "sampler=Euler", "--format", "csv")
    assert out.exit_code == 0 and "dpmpp" not in out.output and "euler" in out.output


def test_a_report_of_an_empty_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = _run("report", tmp_path / "empty", "-o", tmp_path / "r.html")
    assert out.exit_code == 3 and "no generations" in out.output
    assert not (tmp_path / "r.html").exists()


def test_a_comparison_with_nothing_to_pair_says_so(results: Path) -> None:
    out = _run("compare", results, "--by", "steps", "--filter", "steps=4")
    assert out.exit_code == 3 and "no two values of steps" in out.output


@pytest.mark.parametrize("option", [["--sampler", "Euler"], ["--model", "tiny-sd"], ["--model", "sd"],
                                    ["--gpu", "4090"]])
def test_estimate_understands_names_as_the_suite_wrote_them(results: Path, option: list[str]) -> None:
    out = _run("estimate", results, "--steps", "20", *option)
    assert out.exit_code == 0, out.output
    assert "20 steps" in out.output


def test_estimate_of_an_unmeasured_sampler_lists_what_was(results: Path) -> None:
    out = _run("estimate", results, "--steps", "20", "--sampler", "heun")
    assert out.exit_code == 2 and "they have: euler, dpmpp_2m_karras" in out.output


def test_estimate_prints_one_table_and_notes_only_when_asked(results: Path) -> None:
    """Issue 36: one table (setting, s/image, interval, fits, needs, bound, source), what the rows share
    said once above it; --verbose gives the sentences and their notes."""
    out = _run("estimate", results, "--steps", "20")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("setting"))
    assert lines[header].split() == ["setting", "s/image", "95%", "interval", "fits", "needs", "GiB", "bound", "source"]
    assert lines[header - 1].endswith("20 steps:") and "note:" not in out.output
    rows = lines[header + 1:header + 1 + 2]
    assert all(len(row.split()) >= 6 for row in rows)
    verbose = _run("estimate", results, "--steps", "20", "--verbose")
    assert verbose.exit_code == 0 and "-> " in verbose.output and "setting  " not in verbose.output


def test_a_counted_table_says_the_host_ram_offloaded_weights_take() -> None:
    """Offloading moves the weights to host RAM: where a row offloads, a column says how much (FLUX
    in bf16 31.4 GiB, a 16 GB machine's question), and a row that keeps them on the card says '-'."""
    out = _run("estimate", "--model", "flux-dev", "--steps", "28", "--gpu", "3060")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("setting"))
    assert "host RAM GiB" in lines[header]
    column = lines[header].index("host RAM GiB") + len("host RAM GiB")  # right-aligned under its header
    cells = {line.split()[0]: line[:column].split()[-1] for line in lines[header + 1:] if line[:1].isalpha()
             and not line.startswith("FROM")}
    assert cells["plain"] == "-" and float(cells["offload=group-leaf"]) > 30
    assert "host RAM" not in _run("estimate", "--model", "sd15", "--steps", "30", "--gpu", "3060").output


def test_recommend_counts_what_it_left_out_and_lists_it_when_asked() -> None:
    """Issue 36: the left-out settings are counted by reason in one line; --verbose lists each."""
    short = _run("recommend", "--model", "flux-dev", "--steps", "28", "--gpu", "3060")
    assert short.exit_code == 0, short.output
    [line] = [text for text in short.output.splitlines() if text.startswith("Left out")]
    assert "need more memory than allowed" in line and "(--verbose: each and why)" in line
    listed = _run("recommend", "--model", "flux-dev", "--steps", "28", "--gpu", "3060", "--verbose")
    items = [text for text in listed.output.splitlines() if text.startswith("  - ")]
    assert len(items) == int(line.split()[2]) and all(": " in item for item in items)


def test_when_no_measured_setting_fits_the_table_says_how_to_ask_from_counts() -> None:
    """docs/gpu-runs' FLUX needs 34.7-40.1 GiB: on a 12 GB card every row is refused, and the table
    names the command that answers the settings that would fit, not 'the rows that fit'."""
    runs = Path(__file__).resolve().parents[1] / "docs" / "gpu-runs"
    out = _run("estimate", runs, "--model", "flux", "--steps", "28", "--gpu", "3060")
    assert out.exit_code == 0, out.output
    assert "the rows that fit" not in out.output
    assert '`diffbench estimate --model flux-schnell --gpu "RTX 3060" --steps 28`' in out.output
