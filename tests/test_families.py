"""A model family is one registry entry: register one in a test and see it flow through a suite,
the plan's defaults and sampler rules, and the runtime's dtype choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffbench import families, samplers
from diffbench.families import FamilySpec, UnknownFamily
from diffbench.plan import make_plan
from diffbench.suite import load_suite
from diffbench.yamlsource import SuiteError


@pytest.fixture()
def throwaway_family():
    spec = families.register(FamilySpec("toyflow", "flow", "FluxPipeline", "transformer", "384x256", 2.5, "bf16",
                                        ("toyflow",)))
    yield spec
    families.FAMILIES.pop("toyflow")


def test_a_registered_family_flows_to_suite_plan_and_samplers(tmp_path: Path, throwaway_family: FamilySpec) -> None:
    suite = tmp_path / "toy.yaml"
    suite.write_text("name: toy\nmodels:\n  m: {source: 'someorg/toyflow-base'}\n"
                     "matrix:\n  sampler: [euler]\nrepeats: 1\n")
    [cell] = make_plan(load_suite(suite)).cells
    assert cell.family == "toyflow"  # inferred from the Hub id by the family's own hint
    assert cell.settings["resolution"] == "384x256" and cell.settings["guidance_scale"] == 2.5
    assert samplers.resolve("euler", "toyflow").kind == "flow"  # flow family: the flow-matching Euler
    assert families.guess_from_name("org/my-toyflow-model") == "toyflow"


def test_an_unknown_family_is_an_error_never_a_default(tmp_path: Path) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: bad\nmodels:\n  m: {source: 'builtin:tiny-sd', family: sd9}\n")
    with pytest.raises(SuiteError, match=r"bad\.yaml:3: field 'models\.m\.family': given 'sd9'; allowed: sd, sdxl"):
        load_suite(suite)
    with pytest.raises(UnknownFamily, match="unknown model family 'sd9'"):
        samplers.resolve("euler", "sd9")


def test_dtype_auto_on_a_gpu_comes_from_the_family() -> None:
    assert families.family("flux").gpu_dtype == "bf16" and families.family("sdxl").gpu_dtype == "fp16"
