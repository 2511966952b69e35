"""Sampler names people type (A1111, ComfyUI, diffusers) -> scheduler class and kwargs.

Pure data and string handling: importing this module never imports diffusers, so
`validate` and `plan` can check samplers instantly.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import DiffbenchError

# Noise-prediction models (SD1.5, SDXL) are trained on a DDPM-style schedule;
# SD3 and FLUX are rectified-flow models and need flow-matching schedulers.
Family = Literal["ddpm", "flow"]
def family_kind(model_family: str) -> Family:
    """ddpm or flow, from the family registry (an unknown family is an error)."""
    from .families import family

    return family(model_family).kind


@dataclass(frozen=True)
class Sampler:
    """One canonical sampler: a scheduler class, its kwargs, the model kind it serves."""

    key: str
    scheduler_class: str
    kind: Family
    kwargs: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""
    # family -> why this sampler cannot run with that family's pipeline
    unsupported: dict[str, str] = field(default_factory=dict)


def _karras(base: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(base or {}), "use_karras_sigmas": True}


_SDE = {"algorithm_type": "sde-dpmsolver++"}

SAMPLERS: tuple[Sampler, ...] = (
    Sampler("default", "", "ddpm", aliases=("model default",), description="the scheduler the model ships with"),
    Sampler("euler", "EulerDiscreteScheduler", "ddpm", aliases=("Euler", "EulerDiscreteScheduler")),
    Sampler("euler_karras", "EulerDiscreteScheduler", "ddpm", _karras(), aliases=("Euler Karras",)),
    Sampler("euler_a", "EulerAncestralDiscreteScheduler", "ddpm",
            aliases=("Euler a", "euler_ancestral", "EulerAncestralDiscreteScheduler")),
    Sampler("heun", "HeunDiscreteScheduler", "ddpm", aliases=("Heun", "HeunDiscreteScheduler"),
            description="second order: about 2N-1 denoiser evaluations for N steps"),
    Sampler("heun_karras", "HeunDiscreteScheduler", "ddpm", _karras(), aliases=("Heun Karras",)),
    Sampler("dpm2", "KDPM2DiscreteScheduler", "ddpm", aliases=("DPM2", "dpm_2", "KDPM2DiscreteScheduler")),
    Sampler("dpm2_karras", "KDPM2DiscreteScheduler", "ddpm", _karras(), aliases=("DPM2 Karras", "dpm_2 karras")),
    Sampler("dpm2_a", "KDPM2AncestralDiscreteScheduler", "ddpm",
            aliases=("DPM2 a", "dpm_2_ancestral", "KDPM2AncestralDiscreteScheduler")),
    Sampler("dpm2_a_karras", "KDPM2AncestralDiscreteScheduler", "ddpm", _karras(),
            aliases=("DPM2 a Karras", "dpm_2_ancestral karras")),
    Sampler("lms", "LMSDiscreteScheduler", "ddpm", aliases=("LMS", "LMSDiscreteScheduler")),
    Sampler("lms_karras", "LMSDiscreteScheduler", "ddpm", _karras(), aliases=("LMS Karras",)),
    Sampler("dpmpp_2m", "DPMSolverMultistepScheduler", "ddpm",
            aliases=("DPM++ 2M", "DPMSolverMultistepScheduler")),
    Sampler("dpmpp_2m_karras", "DPMSolverMultistepScheduler", "ddpm", _karras(), aliases=("DPM++ 2M Karras",)),
    Sampler("dpmpp_2m_sde", "DPMSolverMultistepScheduler", "ddpm", dict(_SDE), aliases=("DPM++ 2M SDE",)),
    Sampler("dpmpp_2m_sde_karras", "DPMSolverMultistepScheduler", "ddpm", _karras(_SDE),
            aliases=("DPM++ 2M SDE Karras",)),
    Sampler("dpmpp_sde", "DPMSolverSinglestepScheduler", "ddpm",
            aliases=("DPM++ SDE", "DPMSolverSinglestepScheduler")),
    Sampler("dpmpp_sde_karras", "DPMSolverSinglestepScheduler", "ddpm", _karras(), aliases=("DPM++ SDE Karras",)),
    Sampler("ddim", "DDIMScheduler", "ddpm", aliases=("DDIM", "DDIMScheduler")),
    Sampler("ddpm", "DDPMScheduler", "ddpm", aliases=("DDPM", "DDPMScheduler")),
    Sampler("plms", "PNDMScheduler", "ddpm", aliases=("PLMS", "pndm", "PNDMScheduler")),
    Sampler("uni_pc", "UniPCMultistepScheduler", "ddpm", aliases=("UniPC", "UniPCMultistepScheduler")),
    Sampler("deis", "DEISMultistepScheduler", "ddpm", aliases=("DEIS", "DEISMultistepScheduler")),
    Sampler("lcm", "LCMScheduler", "ddpm", aliases=("LCM", "LCMScheduler"),
            description="for LCM-distilled models and LoRAs"),
    Sampler("tcd", "TCDScheduler", "ddpm", aliases=("TCD", "TCDScheduler")),
    # Flow-matching samplers (SD3, FLUX). "euler" and "heun" typed for a flow model mean these.
    Sampler("flow_euler", "FlowMatchEulerDiscreteScheduler", "flow",
            aliases=("FlowMatchEulerDiscreteScheduler", "flow euler")),
    Sampler("flow_heun", "FlowMatchHeunDiscreteScheduler", "flow",
            aliases=("FlowMatchHeunDiscreteScheduler", "flow heun"),
            unsupported={"flux": "the FLUX pipeline passes custom sigmas, which FlowMatchHeunDiscreteScheduler "
                                 "does not accept"}),
)

# What a plain name means on a flow-matching model (ComfyUI uses "euler" for both kinds).
_FLOW_EQUIVALENT = {"euler": "flow_euler", "heun": "flow_heun"}


def normalise(name: str) -> str:
    """'DPM++ 2M Karras', 'dpmpp_2m karras' and 'dpmpp-2m-karras' all become 'dpmpp2mkarras'."""
    text = name.strip().lower().replace("++", "pp").replace("+", "p")
    return re.sub(r"[^a-z0-9]", "", text)


def _index() -> dict[str, Sampler]:
    table: dict[str, Sampler] = {}
    for sampler in SAMPLERS:
        for name in (sampler.key, *sampler.aliases):
            table[normalise(name)] = sampler
    return table


_BY_NAME = _index()


class SamplerError(DiffbenchError, ValueError):
    """A sampler name that is unknown or does not suit the model."""


def lookup(name: str) -> Sampler:
    """Find a sampler by any of its names, or raise with near misses."""
    found = _BY_NAME.get(normalise(name))
    if found is not None:
        return found
    names = sorted({s.key for s in SAMPLERS})
    close = difflib.get_close_matches(normalise(name), list(_BY_NAME), n=1, cutoff=0.6)
    hint = f"; did you mean '{_BY_NAME[close[0]].key}'?" if close else ""
    raise SamplerError(f"unknown sampler '{name}'{hint} (known: {', '.join(names)})")


def resolve(name: str, model_family: str) -> Sampler:
    """The sampler that `name` means for a model of `model_family`, or a SamplerError saying why not."""
    sampler = lookup(name)
    kind = family_kind(model_family)
    if sampler.key == "default":
        return Sampler("default", "", kind, description=sampler.description)
    if kind == "flow" and sampler.kind == "ddpm" and sampler.key in _FLOW_EQUIVALENT:
        sampler = lookup(_FLOW_EQUIVALENT[sampler.key])
    if model_family in sampler.unsupported:
        raise SamplerError(f"sampler '{name}' cannot run on family '{model_family}': "
                           f"{sampler.unsupported[model_family]}")
    if sampler.kind != kind:
        usable = ", ".join(s.key for s in SAMPLERS if s.kind == kind and s.key != "default")
        what = {"ddpm": "a noise-prediction (DDPM-family)", "flow": "a flow-matching"}
        raise SamplerError(
            f"sampler '{name}' is {what[sampler.kind]} sampler and cannot drive {what[kind]} model "
            f"(family '{model_family}'); usable: default, {usable}"
        )
    return sampler


def known_names() -> list[str]:
    """Every canonical key, for help texts and the JSON Schema."""
    return [s.key for s in SAMPLERS]
