"""Step caches as a setting: `cache: first-block@0.1`, `taylorseer@4`, `pab@2`, `fastercache@2`,
`magcache@0.06`, or none.

A step cache reuses work of earlier denoising steps instead of computing the whole denoiser
again (diffusers' hooks: First-Block Cache, TaylorSeer, Pyramid Attention Broadcast, FasterCache,
MagCache). A cached
step is still a step, so `evaluations` does not change; what changes is how much of the
denoiser runs, recorded per generation as `denoiser_work` (see measure/work.py).

This module only parses and describes; applying a cache is execute/axes/cache.apply_cache.
It imports nothing heavy (the suite checks use it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CacheKind:
    name: str
    parameter: str  # the one value `name@value` sets
    default: float
    integer: bool
    description: str
    # Non-empty: the cache runs only on families that list it in FamilySpec.step_caches, and this
    # says why (a hook that fails elsewhere, ratios calibrated per model).
    per_family: str = ""


CACHE_KINDS: dict[str, CacheKind] = {
    kind.name: kind for kind in (
        CacheKind("first-block", "threshold", 0.05, False,
                  "First-Block Cache: skip the other blocks while the first block's output changes less than "
                  "the threshold (relative)"),
        CacheKind("taylorseer", "cache_interval", 5, True,
                  "TaylorSeer: compute every cache_interval steps, predict the steps between by Taylor expansion"),
        CacheKind("pab", "spatial_attention_block_skip_range", 2, True,
                  "Pyramid Attention Broadcast: reuse attention outputs for this many steps in the middle of "
                  "the schedule"),
        CacheKind("fastercache", "spatial_attention_block_skip_range", 2, True,
                  "FasterCache: compute attention every N steps after timestep 681 and extrapolate it between "
                  "(attention weight 0.3, diffusers' FLUX example)",
                  per_family="FasterCache's hook fails inside the transformers of Wan and LTX-Video in diffusers "
                             "0.42; it was verified on guidance-distilled FLUX"),
        CacheKind("magcache", "threshold", 0.06, False,
                  "MagCache: skip steps while the accumulated error predicted from the model's calibrated "
                  "magnitude ratios stays under the threshold",
                  per_family="MagCache needs magnitude ratios calibrated for the model, and diffusers ships "
                             "FLUX's only"),
    )
}


@dataclass(frozen=True)
class CacheSetting:
    kind: CacheKind
    value: float

    @property
    def text(self) -> str:
        value = int(self.value) if self.kind.integer else self.value
        return f"{self.kind.name}@{value}"


class CacheSpecError(ValueError):
    pass


def parse_cache(text: str) -> CacheSetting | None:
    """'first-block@0.1' -> the kind and its value; 'none' -> None. Raises with what is allowed."""
    name, _, raw = text.strip().partition("@")
    name = name.strip().lower().replace("_", "-")
    if name in {"none", "off", ""}:
        if raw:
            raise CacheSpecError("'none' takes no value")
        return None
    kind = CACHE_KINDS.get(name)
    if kind is None:
        raise CacheSpecError(f"unknown cache '{name}'; allowed: none, {', '.join(CACHE_KINDS)} "
                             "(each optionally @value, e.g. first-block@0.1)")
    if not raw:
        return CacheSetting(kind, kind.default)
    try:
        value = float(raw)
    except ValueError:
        raise CacheSpecError(f"{kind.name}@{raw}: the {kind.parameter} must be a number") from None
    if not math.isfinite(value):
        raise CacheSpecError(f"{kind.name}@{raw}: the {kind.parameter} must be a finite number")
    if kind.integer and (value != int(value) or not 1 <= value <= 1000):
        raise CacheSpecError(f"{kind.name}@{raw}: the {kind.parameter} must be a whole number from 1 to 1000")
    if not kind.integer and not 0 < value < 10:
        raise CacheSpecError(f"{kind.name}@{raw}: the {kind.parameter} must be above 0 and below 10")
    return CacheSetting(kind, value)


def family_cache_problem(text: str | None, family: str) -> str | None:
    """Why a family cannot run this cache (one it does not list in FamilySpec.step_caches), or None."""
    from .families import FAMILIES

    setting = parse_cache(text) if text else None
    if setting is None or not setting.kind.per_family:
        return None
    kind = setting.kind
    if kind.name in FAMILIES[family].step_caches:
        return None
    runs_on = [spec.name for spec in FAMILIES.values() if kind.name in spec.step_caches]
    return (f"cache '{setting.text}': {kind.per_family}; it runs on {', '.join(runs_on) or 'no family'} only, "
            f"not on {family}")


def canonical_cache(text: str | None) -> str | None:
    """The one spelling a cell stores: None for no cache (so results without the axis keep their
    ids), else 'kind@value' with the default value written out."""
    if text is None:
        return None
    setting = parse_cache(str(text))
    return setting.text if setting is not None else None
