"""The CLI answers at once (no torch for --help, validate, plan) and fails cleanly on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert data["generations"] == 4 * (2 + 30) and data["generations_min"] == 4 * (2 + 6)


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
    assert result.returncode == 2 and "file not found" in result.stderr and "Traceback" not in result.stderr


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
