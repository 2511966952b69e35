"""Suite parsing and its error paths: every error names file:line, the field and what is allowed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from diffbench.intake.suite import json_schema, load_suite
from diffbench.intake.yamlsource import SuiteError

GOOD = """\
name: demo
description: a demo
models:
  sd:
    source: builtin:tiny-sd
    defaults:
      guidance_scale: 6.0
  flux:
    source: builtin:tiny-flux
defaults:
  prompt: a cat
  seed: 3
matrix:
  model: [sd]
  steps: [2, 4]
  sampler: ["Euler a", "DPM++ 2M Karras"]
  resolution: [64x64, "64 x 128"]
include:
  - {model: flux, steps: 2, sampler: euler}
exclude:
  - {steps: 4, sampler: "Euler a"}
warmup: 2
repeats: 4
"""


def test_a_valid_suite_loads_with_types_and_identity(suite_file) -> None:
    path = suite_file(GOOD)
    suite = load_suite(path)
    assert suite.name == "demo"
    assert suite.models["sd"].defaults.guidance_scale == 6.0
    assert suite.matrix["resolution"] == ["64x64", "64x128"]
    assert suite.matrix["steps"] == [2, 4]
    assert suite.include == [{"model": ["flux"], "steps": [2], "sampler": ["euler"]}]
    assert (suite.warmup, suite.repeats) == (2, 4)
    assert len(suite.sha256) == 64 and suite.base_dir == str(Path(path).resolve().parent)


def _error(suite_file, text: str) -> str:
    with pytest.raises(SuiteError) as caught:
        load_suite(suite_file(text))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_wrong_type_names_line_field_value_and_allowed(suite_file) -> None:
    message = _error(suite_file, GOOD.replace("steps: [2, 4]", "steps: [2, -4]"))
    assert re.search(r"suite\.yaml:15: field 'matrix\.steps\[1\]': given -4; allowed: a number >= 1", message)


def test_unknown_axis_suggests_the_near_miss(suite_file) -> None:
    message = _error(suite_file, GOOD.replace("  sampler: [", "  samplr: ["))
    assert "suite.yaml:16" in message and "unknown axis 'samplr'" in message and "did you mean 'sampler'" in message


def test_unknown_top_level_field_suggests_the_near_miss(suite_file) -> None:
    message = _error(suite_file, GOOD.replace("repeats: 4", "repeat: 4"))
    assert "suite.yaml:23" in message and "did you mean 'repeats'" in message


def test_unknown_sampler_names_the_line(suite_file) -> None:
    message = _error(suite_file, GOOD.replace('"Euler a"', '"Eular a"'))
    assert "suite.yaml:16" in message and "unknown sampler 'Eular a'" in message and "did you mean" in message


def test_ddpm_sampler_on_flow_model_is_refused_with_reason(suite_file) -> None:
    message = _error(suite_file, GOOD.replace("sampler: euler}", "sampler: DDIM}"))
    assert "model 'flux'" in message and "flow-matching" in message


def test_undefined_model_is_named(suite_file) -> None:
    message = _error(suite_file, GOOD.replace("model: [sd]", "model: [sdd]"))
    assert "suite.yaml:14" in message and "model 'sdd' is not defined" in message and "did you mean 'sd'" in message


def test_bad_resolution_and_dtype_say_what_is_allowed(suite_file) -> None:
    assert "multiples of 8" in _error(suite_file, GOOD.replace("64x64,", "65x64,"))
    message = _error(suite_file, GOOD.replace("  seed: 3", "  dtype: fp8"))
    assert "suite.yaml:12" in message and "allowed: auto, fp32, fp16 or bf16" in message


def test_unknown_builtin_lists_the_available_ones(suite_file) -> None:
    message = _error(suite_file, GOOD.replace("builtin:tiny-sd\n", "builtin:tiny-sd15\n"))
    assert "suite.yaml:5" in message and "builtin:tiny-sd," in message


def test_pickle_checkpoints_are_refused_unless_allowed(suite_file, tmp_path: Path) -> None:
    (tmp_path / "model.ckpt").write_bytes(b"not really")
    text = GOOD.replace("builtin:tiny-sd\n", "model.ckpt\n    family: sd\n")
    assert "pickle checkpoint" in _error(suite_file, text)
    allowed = text.replace("    family: sd\n", "    family: sd\n    allow_pickle: true\n")
    assert load_suite(suite_file(allowed)).models["sd"].allow_pickle


def test_paths_resolve_relative_to_the_suite_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.safetensors").write_bytes(b"")
    path = tmp_path / "sub" / "s.yaml"
    path.write_text(GOOD.replace("builtin:tiny-sd\n", "w.safetensors\n    family: sd\n"))
    assert load_suite(path).models["sd"].source == "w.safetensors"
    elsewhere = tmp_path / "s.yaml"
    elsewhere.write_text(path.read_text())
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite(elsewhere)


def test_empty_matrix_after_exclude_is_an_error(suite_file) -> None:
    text = GOOD.replace("include:\n  - {model: flux, steps: 2, sampler: euler}\n", "") + "  - {model: sd}\n"
    assert "empty" in _error(suite_file, text)


def test_json_schema_describes_the_axes() -> None:
    schema = json_schema()
    json.dumps(schema)
    assert schema["title"] == "diffbench suite"
    assert "steps" in schema["properties"]["matrix"]["properties"]
    assert schema["properties"]["matrix"]["additionalProperties"] is False
