"""cache (per cell): a step cache on the loaded denoiser, switched between cells."""

from __future__ import annotations

from typing import Any

from ..configure import NotApplicable
from . import Applied, Loaded


def apply_cache(pipe: Any, wanted: str | None, applied: str | None, steps: int | None = None,
                family: str | None = None) -> str | None:
    """Make the denoiser's step cache the cell's (`wanted`, canonical text or 'none'/None).
    Returns what is now applied. The cache is switched between cells of one load, so a cached
    and an uncached cell share the loaded weights. MagCache is set up for a step count (its
    ratios are interpolated to it): it is applied anew when the steps change."""
    from ...measure.probe import denoiser_of
    from ...rules.caches import family_cache_problem, parse_cache

    wanted = None if wanted in (None, "none") else wanted
    key = f"{wanted}#steps={steps}" if wanted and wanted.startswith("magcache") else wanted
    if key == applied:
        return applied
    denoiser = denoiser_of(pipe)
    setting = parse_cache(wanted) if wanted else None
    problem = family_cache_problem(wanted, family) if family else None
    if problem:
        raise NotApplicable(problem)
    if setting is not None and not hasattr(denoiser, "enable_cache"):
        raise NotApplicable(f"cache '{wanted}': {type(denoiser).__name__} has no step-cache support in this "
                            "diffusers version (diffusers caches apply to transformer denoisers such as FLUX's)")
    if applied is not None:
        denoiser.disable_cache()
    if setting is None:
        return None
    # diffusers.hooks does not list these in __all__, which mypy's strict mode asks for
    from diffusers.hooks import FirstBlockCacheConfig, PyramidAttentionBroadcastConfig, TaylorSeerCacheConfig  # type: ignore[attr-defined]

    name, value = setting.kind.name, setting.value
    if name == "first-block":
        config: Any = FirstBlockCacheConfig(threshold=value)
    elif name == "taylorseer":
        config = TaylorSeerCacheConfig(cache_interval=int(value))
    elif name == "fastercache":
        # guidance-distilled (FLUX, the family that lists it): no unconditional batch to skip
        from diffusers import FasterCacheConfig

        config = FasterCacheConfig(spatial_attention_block_skip_range=int(value), is_guidance_distilled=True,  # type: ignore[no-untyped-call]
                                   attention_weight_callback=lambda _: 0.3,
                                   current_timestep_callback=lambda: pipe.current_timestep)
    elif name == "magcache":
        from diffusers.hooks import MagCacheConfig, mag_cache  # type: ignore[attr-defined]

        from ...rules.families import family as family_spec

        ratios = getattr(mag_cache, family_spec(family or "").magcache_ratios)  # listed: its ratios are named
        config = MagCacheConfig(threshold=value, num_inference_steps=steps or 28, mag_ratios=ratios)
    else:  # pab: needs to know where in the schedule the pipeline is
        config = PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=int(value),
                                                 current_timestep_callback=lambda: pipe.current_timestep)
    try:
        denoiser.enable_cache(config)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise NotApplicable(f"cache '{wanted}' cannot apply to {type(denoiser).__name__}: {exc}") from None
    return key


def apply(pipe: Any, settings: dict[str, Any], applied: Any, loaded: Loaded) -> Applied:
    """The cell's cache on the denoiser (state: the cache applied now; None when it raises)."""
    return Applied(apply_cache(pipe, settings.get("cache"), applied, settings["steps"], settings["family"]))
