"""Hostile and broken suites: each gives one short line naming the file, exit code 2, at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError

HEADER = "name: bad\nmodels:\n  m: {source: \"builtin:tiny-sd\"}\n"

CORPUS: dict[str, tuple[bytes, str]] = {
    "wrong_type": (HEADER.encode() + b"matrix:\n  steps: [four]\n", "matrix.steps[0]"),
    "unknown_axis": (HEADER.encode() + b"matrix:\n  stepz: [4]\n", "did you mean 'steps'"),
    "empty_matrix_list": (HEADER.encode() + b"matrix:\n  steps: []\n", "empty"),
    "zero_steps": (HEADER.encode() + b"matrix:\n  steps: [0]\n", ">= 1"),
    "negative_steps": (HEADER.encode() + b"defaults:\n  steps: -5\n", ">= 1"),
    "huge_matrix": (HEADER.encode() + b"matrix:\n  steps: [" + ",".join(str(i) for i in range(1, 101)).encode()
                    + b"]\n  seed: [" + ",".join(str(i) for i in range(200)).encode() + b"]\n", "at most 10000"),
    "unknown_sampler": (HEADER.encode() + b"matrix:\n  sampler: [euler_b]\n", "unknown sampler"),
    "missing_file": (b"name: bad\nmodels:\n  m: {source: ./nowhere/model.safetensors, family: sd}\n", "does not exist"),
    "duplicate_model": (HEADER.encode() + b"  m: {source: \"builtin:tiny-sdxl\"}\n", "duplicate key 'm'"),
    "non_utf8": (HEADER.encode() + b"description: caf\xe9\n", "not valid UTF-8"),
    "alias_bomb": (b"name: bad\nmodels:\n  m: {source: \"builtin:tiny-sd\"}\n"
                   b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                   b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                   b"g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", "too large"),
    "deep_nesting": (HEADER.encode() + b"description: " + b"[" * 200 + b"]" * 200 + b"\n", "nesting deeper"),
    "python_tag": (HEADER.encode() + b"description: !!python/object/apply:os.system ['echo pwned']\n",
                   "is not allowed"),
    "merge_key": (HEADER.encode() + b"defaults:\n  <<: {steps: 3}\n", "merge keys"),
    "not_a_mapping": (b"- just\n- a list\n", "must be a mapping"),
    "empty_file": (b"", "empty"),
    "bad_yaml": (b"name: [unclosed\n", "invalid YAML"),
    "bad_resolution": (HEADER.encode() + b"matrix:\n  resolution: [huge]\n", "WIDTHxHEIGHT"),
    "bad_vram_limit": (HEADER.encode() + b"matrix:\n  vram_limit: [Voodoo 5]\n", "known GPU name"),
    "ddpm_sampler_on_flow": (b"name: bad\nmodels:\n  f: {source: \"builtin:tiny-flux\"}\n"
                             b"matrix:\n  sampler: [DDIM]\n", "flow-matching"),
    "no_models": (b"name: bad\nmatrix:\n  steps: [2]\n", "names no models"),
    "pickle_checkpoint": (b"name: bad\nmodels:\n  m: {source: ./suite.ckpt, family: sd}\n", "pickle"),
    "exclude_everything": (HEADER.encode() + b"exclude:\n  - {model: m}\n", "empty"),
    "bad_name": (b"name: \"<script>\"\nmodels:\n  m: {source: \"builtin:tiny-sd\"}\n", "field 'name'"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_each_bad_suite_fails_with_one_line_naming_the_file(case: str, tmp_path: Path) -> None:
    text, expected = CORPUS[case]
    path = tmp_path / "suite.yaml"
    path.write_bytes(text)
    if case == "pickle_checkpoint":
        (tmp_path / "suite.ckpt").write_bytes(b"\x80\x04")
    with pytest.raises(SuiteError) as caught:  # bounded work: no timing here (speed lives in benchmarks/)
        load_suite(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert expected in message, message
    assert "\n" not in message and len(message) < 600


def test_the_cli_exits_2_with_a_single_line_for_the_whole_corpus(tmp_path: Path) -> None:
    paths = []
    for case, (text, _) in CORPUS.items():
        folder = tmp_path / case
        folder.mkdir()
        (folder / "suite.yaml").write_bytes(text)
        (folder / "suite.ckpt").write_bytes(b"\x80\x04")
        paths.append(str(folder / "suite.yaml"))
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "validate", *paths],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(CORPUS)
    assert all(line.startswith("error: ") and "suite.yaml" in line for line in lines)
    assert "Traceback" not in result.stderr


AXIS_VALUES = st.one_of(
    st.integers(-5, 2000), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=12), st.sampled_from(["euler", "Euler a", "64x64", "12GiB", "fp16", "auto", "cpu", "m"]),
)
AXES = st.sampled_from(["model", "steps", "sampler", "resolution", "dtype", "seed", "batch_size", "guidance_scale",
                        "offload", "device", "vram_limit", "attention", "compile", "bogus"])
SUITES = st.fixed_dictionaries(
    {"name": st.one_of(st.just("fuzz"), st.text(max_size=8)),
     "models": st.one_of(st.just({"m": {"source": "builtin:tiny-sd"}}),
                         st.dictionaries(st.text(max_size=5), st.dictionaries(st.sampled_from(["source", "family", "x"]),
                                                                               AXIS_VALUES, max_size=2), max_size=2))},
    optional={
        "matrix": st.dictionaries(AXES, st.one_of(AXIS_VALUES, st.lists(AXIS_VALUES, max_size=3)), max_size=4),
        "defaults": st.dictionaries(AXES, AXIS_VALUES, max_size=3),
        "warmup": AXIS_VALUES, "repeats": AXIS_VALUES,
        "exclude": st.lists(st.dictionaries(AXES, AXIS_VALUES, max_size=2), max_size=2),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(SUITES)
def test_random_suites_validate_or_fail_cleanly(tmp_path: Path, data: dict) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        load_suite(path)
    except SuiteError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message


@pytest.mark.parametrize("depth", [41, 1_000, 100_000])
def test_deep_nesting_is_the_same_one_line_error_at_any_depth(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\ndescription: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(SuiteError, match=r"deep\.yaml:2: nesting deeper than 40 levels"):
        load_suite(path)


def test_a_null_model_in_the_matrix_is_a_one_line_error(tmp_path: Path) -> None:
    """Found by the fuzz test above: `model: null` reached difflib and crashed with a traceback."""
    path = tmp_path / "suite.yaml"
    path.write_text("name: fuzz\nmodels:\n  m: {source: 'builtin:tiny-sd'}\nmatrix:\n  model: null\n")
    out = subprocess.run([sys.executable, "-m", "diffbench.cli", "validate", str(path)], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{path}:5: field 'matrix.model[0]': given null; give a model defined under 'models': m" in out.stderr


def test_the_cell_limit_counts_cells_as_the_plan_makes_them(tmp_path: Path) -> None:
    """10,000 cells from includes alone are allowed (no phantom base cell); 10,001 are refused at
    the include, and recipes multiply the matrix they are crossed with."""
    seeds = ",".join(str(i) for i in range(10_000))
    suite = tmp_path / "include.yaml"
    suite.write_text(HEADER + f"include:\n  - {{steps: 2, seed: [{seeds}]}}\n")
    assert len(load_suite(suite).include[0]["seed"]) == 10_000  # exactly at the limit: accepted
    suite.write_text(HEADER + f"include:\n  - {{steps: 2, seed: [{seeds}]}}\n  - {{steps: 3}}\n")
    with pytest.raises(SuiteError, match=r"include\.yaml:4: .*expands to 10001 cells; at most 10000"):
        load_suite(suite)
    recipes = tmp_path / "recipes.yaml"
    recipes.write_text(HEADER + "recipes:\n  a: {steps: 2}\n  b: {steps: 3}\n"
                       f"matrix:\n  seed: [{','.join(str(i) for i in range(5001))}]\n")
    with pytest.raises(SuiteError, match=r"expands to 10002 cells"):
        load_suite(recipes)
