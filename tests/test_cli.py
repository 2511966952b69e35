"""The CLI answers at once (no torch for --help, validate, plan) and fails cleanly on bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

LIGHT_COMMANDS = [["--help"], ["validate", "suites/quickstart.yaml"], ["plan", "suites/quickstart.yaml"],
                  ["schema"], ["models"]]


def _run_checking_imports(repo: Path, args: list[str]) -> tuple[int, str, list[str]]:
    code = (
        "import sys\n"
        "from diffbench.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as e:\n"
        "    code = e.code or 0\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=120)
    heavy_line = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")][-1]
    return result.returncode, result.stdout + result.stderr, [m for m in heavy_line[6:].split(",") if m]


def test_light_commands_never_import_torch(repo: Path) -> None:
    for args in LIGHT_COMMANDS:
        code, output, heavy = _run_checking_imports(repo, args)
        assert code == 0, output
        assert heavy == [], f"{args} imported {heavy}"


def test_plan_json_lists_cells(repo: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "plan", "suites/quickstart.yaml", "--json"],
                            capture_output=True, text=True, cwd=repo, timeout=120)
    data = json.loads(result.stdout)
    assert len(data["cells"]) == 4 and data["loads"] == 1 and data["repeats"] == "auto"
    # per cell: 2 warm-ups, a pilot of 4, then 6 to 30
    assert data["generations"] == 4 * (2 + 4 + 30) and data["generations_min"] == 4 * (2 + 4 + 6)


def test_bad_suite_gives_one_line_and_exit_2(tmp_path: Path, repo: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodels:\n  m: {source: builtin:tiny-sd}\nmatrix:\n  steps: [0]\n")
    for command in ("validate", "plan", "run"):
        result = subprocess.run([sys.executable, "-m", "diffbench.cli", command, str(bad)], capture_output=True,
                                text=True, cwd=repo, timeout=120)
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0
        assert f"{bad}:5: field 'matrix.steps[0]': given 0; allowed: a number >= 1" in result.stderr
        assert "Traceback" not in result.stderr


def test_missing_suite_file_is_a_clean_error(tmp_path: Path, repo: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "validate", str(tmp_path / "nope.yaml")],
                            capture_output=True, text=True, cwd=repo, timeout=120)
    assert result.returncode == 2 and "no such file" in result.stderr and "Traceback" not in result.stderr


def test_every_shipped_suite_validates(repo: Path) -> None:
    suites = sorted(str(p) for p in (repo / "suites").glob("*.yaml"))
    assert len(suites) >= 6
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "validate", *suites], capture_output=True,
                            text=True, cwd=repo, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (") == len(suites)


def test_validate_reports_every_mistake_of_a_file_in_one_round(tmp_path: Path, repo: Path) -> None:
    suite = tmp_path / "three.yaml"
    suite.write_text("name: three\nmodels:\n  t: {source: 'builtin:tiny-sd'}\ndefaults: {steps: -4, device: cpu}\n"
                     "matrix:\n  samplr: [euler]\n  steps: [2, 0]\nwarmup: 1\nrepeats: 0\n")
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "validate", str(suite)], capture_output=True,
                            text=True, cwd=repo, timeout=120)
    assert result.returncode == 2
    errors = result.stderr.splitlines()
    assert len(errors) == 4, errors
    assert any(":4: field 'defaults.steps'" in e for e in errors)
    assert any(":9: field 'repeats': given 0; allowed: a number >= 1 or auto" in e for e in errors)
    assert any(":6: unknown axis 'samplr'" in e and "did you mean 'sampler'" in e for e in errors)
    assert any(":7: field 'matrix.steps[1]'" in e for e in errors)


@pytest.mark.parametrize("other_mistake", ["repeats: 0\n", "matrix:\n  steps: [2, 0]\n"])
def test_validate_reports_a_missing_model_folder_with_the_other_mistakes_in_line_order(
        tmp_path: Path, repo: Path, other_mistake: str) -> None:
    """A model's files need no valid axis to be checked: a missing folder comes in the same round
    as a bad field (the suite invalid as a whole) or a bad axis value, listed in file order."""
    suite = tmp_path / "two.yaml"
    suite.write_text(f"name: two\nmodels:\n  gone: {{source: ./no-such-folder}}\n  t: {{source: 'builtin:tiny-sd'}}\n"
                     f"{other_mistake}")
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "validate", str(suite)], capture_output=True,
                            text=True, cwd=repo, timeout=120)
    assert result.returncode == 2
    errors = result.stderr.splitlines()
    assert len(errors) == 2, errors
    assert ":3: model 'gone': './no-such-folder' does not exist" in errors[0]
    assert ":5: field 'repeats'" in errors[1] or ":6: field 'matrix.steps[1]'" in errors[1]


def _cuda_suite(folder: Path) -> Path:
    suite = folder / "cuda.yaml"
    suite.write_text("name: cuda\nmodels:\n  t: {source: 'builtin:tiny-sd'}\n"
                     "defaults: {steps: 1, device: cuda, resolution: 64x64}\nmatrix:\n  sampler: [euler, ddim]\n"
                     "  offload: [none, model]\nwarmup: 0\nrepeats: 1\n")
    return suite


def test_plan_says_which_cells_cannot_run_on_this_host(tmp_path: Path, repo: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "plan", str(_cuda_suite(tmp_path)), "--json"],
                            capture_output=True, text=True, cwd=repo, timeout=120)
    cells = json.loads(result.stdout)["cells"]
    assert len(cells) == 4 and all(c["not_applicable"] for c in cells)
    assert all("NVIDIA" in c["not_applicable"] or "CUDA" in c["not_applicable"] for c in cells)


def test_a_run_that_measures_nothing_says_so_without_starting_a_worker(tmp_path: Path, repo: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(_cuda_suite(tmp_path)), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=repo, timeout=300)
    assert result.returncode == 3, result.stderr
    assert "nothing was measured" in result.stderr
    [path] = (tmp_path / "out").glob("*.jsonl")
    kinds = [json.loads(line)["type"] for line in path.read_text().splitlines()]
    assert "load" not in kinds  # no worker was started to find this out
    statuses = [json.loads(line).get("status") for line in path.read_text().splitlines()]
    assert statuses.count("not_applicable") == 4


def test_resuming_a_finished_file_says_nothing_is_left(tmp_path: Path, repo: Path) -> None:
    suite = tmp_path / "done.yaml"
    suite.write_text("name: done\nmodels:\n  t: {source: 'builtin:tiny-sd'}\n"
                     "defaults: {steps: 1, device: cpu, resolution: 64x64}\nwarmup: 0\nrepeats: 1\n")
    first = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--out", str(tmp_path / "out")],
                           capture_output=True, text=True, cwd=repo, timeout=300)
    assert first.returncode == 0, first.stderr
    [path] = (tmp_path / "out").glob("*.jsonl")
    again = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--resume", str(path)],
                           capture_output=True, text=True, cwd=repo, timeout=300)
    assert again.returncode == 3 and "Nothing left to run" in again.stdout


def test_shipped_suites_are_usable_by_name_from_any_folder(tmp_path: Path) -> None:
    listing = subprocess.run([sys.executable, "-m", "diffbench.cli", "suites"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    assert listing.returncode == 0 and "quickstart" in listing.stdout
    checked = subprocess.run([sys.executable, "-m", "diffbench.cli", "validate", "quickstart"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=120)
    assert checked.returncode == 0 and "ok (4 cells" in checked.stdout
    typo = subprocess.run([sys.executable, "-m", "diffbench.cli", "plan", "quikstart"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert typo.returncode == 2 and "did you mean 'quickstart'" in typo.stderr


def test_the_package_builds_without_warnings_and_carries_its_suites(tmp_path: Path, repo: Path) -> None:
    import zipfile

    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path), str(repo)], capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip("setuptools is not installed in this environment")
    assert built.returncode == 0, built.stderr
    assert "deprecat" not in (built.stdout + built.stderr).lower()
    [wheel] = tmp_path.glob("diffbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "diffbench/suites/quickstart.yaml" in names


def test_models_lists_caches_and_which_optional_backends_are_installed(monkeypatch) -> None:
    from click.testing import CliRunner

    from diffbench.cli import main
    from diffbench.rules import backends

    assert backends.installed("json") and not backends.installed("no_such_module_for_diffbench")
    monkeypatch.setattr(backends, "installed", lambda module: module != "peft")
    out = CliRunner().invoke(main, ["models"]).output
    assert "first-block  @threshold (default 0.05)" in out
    assert re.search(r"\n  peft +missing +the lora axis .*pip install 'diffbench\[lora\]'", out)
    assert re.search(r"\n  ray +installed", out)
    columns = {line.index("installed") for line in out.splitlines() if " installed " in line}
    assert len(columns) == 1  # one aligned column, whatever the longest module name
