from __future__ import annotations

import pytest

from diffbench.rules import samplers


@pytest.mark.parametrize(
    ("typed", "key", "cls", "kwargs"),
    [
        ("DPM++ 2M Karras", "dpmpp_2m_karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
        ("dpmpp_2m karras", "dpmpp_2m_karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
        ("Euler a", "euler_a", "EulerAncestralDiscreteScheduler", {}),
        ("euler_ancestral", "euler_a", "EulerAncestralDiscreteScheduler", {}),
        ("DPM++ 2M SDE", "dpmpp_2m_sde", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
        ("uni_pc", "uni_pc", "UniPCMultistepScheduler", {}),
        ("lcm", "lcm", "LCMScheduler", {}),
        ("UniPCMultistepScheduler", "uni_pc", "UniPCMultistepScheduler", {}),
        ("DDIM", "ddim", "DDIMScheduler", {}),
        ("Heun", "heun", "HeunDiscreteScheduler", {}),
    ],
)
def test_names_people_type_map_to_schedulers(typed: str, key: str, cls: str, kwargs: dict) -> None:
    sampler = samplers.resolve(typed, "sdxl")
    assert (sampler.key, sampler.scheduler_class, sampler.kwargs) == (key, cls, kwargs)


def test_plain_euler_on_a_flow_model_means_flow_matching_euler() -> None:
    assert samplers.resolve("Euler", "flux").scheduler_class == "FlowMatchEulerDiscreteScheduler"
    assert samplers.resolve("heun", "sd3").scheduler_class == "FlowMatchHeunDiscreteScheduler"


@pytest.mark.parametrize(("name", "family"), [("DDIM", "flux"), ("DPM++ 2M Karras", "sd3"),
                                              ("FlowMatchEulerDiscreteScheduler", "sd")])
def test_samplers_of_the_wrong_kind_are_refused_with_a_reason(name: str, family: str) -> None:
    with pytest.raises(samplers.SamplerError, match="cannot drive") as caught:
        samplers.resolve(name, family)
    assert "usable:" in str(caught.value)


def test_unknown_sampler_suggests_the_near_miss() -> None:
    with pytest.raises(samplers.SamplerError, match="did you mean 'dpmpp_2m_karras'"):
        samplers.lookup("dpmpp_2m_karas")


def test_every_scheduler_class_exists_in_diffusers() -> None:
    import diffusers

    for sampler in samplers.SAMPLERS:
        if sampler.scheduler_class:
            assert hasattr(diffusers, sampler.scheduler_class), sampler.scheduler_class


def test_default_keeps_the_model_scheduler_for_either_kind() -> None:
    assert samplers.resolve("default", "flux").kind == "flow"
    assert samplers.resolve("default", "sd").scheduler_class == ""
