"""A model family is one registry entry: register one in a test and see it flow through a suite,
the plan's defaults and sampler rules, and the runtime's dtype choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffbench.intake.plan import make_plan
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError
from diffbench.rules import families, samplers
from diffbench.rules.families import FamilySpec, UnknownFamily


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


@pytest.mark.parametrize(("hub_id", "expected"), [
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", "sd"), ("runwayml/stable-diffusion-v1-5", "sd"),
    ("CompVis/stable-diffusion-v1-4", "sd"), ("stabilityai/stable-diffusion-2-1", "sd"),
    ("stabilityai/sd-turbo", "sd"),
    ("stabilityai/stable-diffusion-xl-base-1.0", "sdxl"), ("stabilityai/sdxl-turbo", "sdxl"),
    ("SG161222/RealVisXL_V4.0", "sdxl"), ("RunDiffusion/Juggernaut-XL-v9", "sdxl"),
    ("playgroundai/playground-v2.5-1024px-aesthetic", "sdxl"),
    ("stabilityai/stable-diffusion-3.5-medium", "sd3"), ("stabilityai/stable-diffusion-3-medium-diffusers", "sd3"),
    ("black-forest-labs/FLUX.1-schnell", "flux"), ("black-forest-labs/FLUX.1-dev", "flux"),
    ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "wan"), ("Wan-AI/Wan2.1-T2V-14B-Diffusers", "wan"),
    ("Lightricks/LTX-Video", "ltx"),
])
def test_every_familys_real_hub_ids_are_told_by_their_names(hub_id: str, expected: str) -> None:
    assert families.guess_from_name(hub_id) == expected


@pytest.mark.parametrize(("hub_id", "message"), [
    # its "XL" must not make it SDXL: PixArt is an architecture diffbench has no family for
    ("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", "looks like PixArt, which diffbench has no family for"),
    ("kandinsky-community/kandinsky-3", "looks like Kandinsky"),
    ("Lykon/dreamshaper-8", "cannot tell the family of 'Lykon/dreamshaper-8' from its name: set family:"),
])
def test_a_name_that_tells_no_known_family_is_an_error_never_sd(hub_id: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(UnknownFamily, match=message):
        families.guess_from_name(hub_id)
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\nmodels:\n  m: {{source: '{hub_id}'}}\n")
    with pytest.raises(SuiteError, match=r"s\.yaml:3: model 'm': .*" + message.split(":")[0]):
        load_suite(suite)
    suite.write_text(f"name: s\nmodels:\n  m: {{source: '{hub_id}', family: sdxl}}\n")  # said: accepted
    assert load_suite(suite).models["m"].family == "sdxl"


def test_the_denoiser_comes_from_the_family_for_every_pipeline_it_runs() -> None:
    """Every pipeline class a family runs (its own task and the others on the same weights) finds
    its denoiser where the FamilySpec says, even when a pipeline also holds the other component."""
    import types

    from diffbench.measure.probe import denoiser_name, denoiser_of

    for spec in families.FAMILIES.values():
        for task in spec.tasks:
            class_name = spec.pipeline_for(task)
            assert families.denoiser_component(class_name) == spec.denoiser, class_name
            both = type(class_name, (), {})()  # an instance of a class of that name holding both components
            both.unet, both.transformer = types.SimpleNamespace(kind="unet"), types.SimpleNamespace(kind="transformer")
            assert denoiser_name(both) == spec.denoiser and denoiser_of(both).kind == spec.denoiser
    custom = type("MyOwnPipeline", (), {})()  # no registered family: the component it holds
    custom.unet = types.SimpleNamespace(kind="unet")
    assert denoiser_name(custom) == "unet"
    with pytest.raises(ValueError, match="has no transformer or unet"):
        denoiser_name(type("Empty", (), {})())
