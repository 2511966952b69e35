"""Step caches as an axis: parsed and checked in the suite, applied per cell to a loaded tiny FLUX,
the denoiser work that actually ran counted (outside the timed region), judged against the uncached
picture, and refused with a reason where the denoiser cannot cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from pictures import other_picture, same_picture

from diffbench.analysis.quality import step_quality
from diffbench.analysis.tables import with_metrics
from diffbench.contract.results import load_results, read_records
from diffbench.execute.runner import run_suite
from diffbench.intake.plan import cell_identity, make_plan
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError
from diffbench.rules.caches import CacheSpecError, canonical_cache, parse_cache

SUITE = """\
name: cache
models:
  flux: {source: "builtin:tiny-flux"}
  sd: {source: "builtin:tiny-sd"}
  wan: {source: "builtin:tiny-wan"}
defaults: {steps: 6, device: cpu, resolution: 64x64}
matrix:
  model: [flux]
  cache: [none, "first-block@0.000001", "first-block@9", taylorseer@2, magcache@0.5, fastercache@3]
include:
  - {model: sd, cache: first-block}
  - {model: flux, cache: magcache@0.5, steps: 8}
  - {model: wan, cache: magcache, steps: 4}
  - {model: wan, cache: fastercache, steps: 4}
warmup: 0
repeats: 1
"""


@pytest.mark.parametrize(("text", "canonical"), [
    ("none", None), ("first-block", "first-block@0.05"), ("First_Block@0.2", "first-block@0.2"),
    ("taylorseer", "taylorseer@5"), ("taylorseer@3", "taylorseer@3"), ("pab", "pab@2"),
    ("FasterCache", "fastercache@2"),
])
def test_cache_settings_have_one_spelling(text: str, canonical: str | None) -> None:
    assert canonical_cache(text) == canonical


@pytest.mark.parametrize(("text", "message"), [
    ("magic", "unknown cache 'magic'; allowed: none, first-block, taylorseer, pab, fastercache, magcache"),
    ("taylorseer@2.5", "must be a whole number"),
    ("taylorseer@inf", "must be a finite number"),
    ("taylorseer@nan", "must be a finite number"),
    ("first-block@x", "must be a number"),
    ("first-block@0", "above 0"),
    ("none@3", "takes no value"),
])
def test_a_bad_cache_setting_says_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(CacheSpecError, match=message):
        parse_cache(text)


def test_a_bad_cache_in_a_suite_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE.replace("taylorseer@2", "tailorseer"))
    with pytest.raises(SuiteError, match=r"s.yaml:9: .*unknown cache 'tailorseer'"):
        load_suite(path)


def test_no_cache_keeps_the_cell_ids_of_results_from_before_the_axis(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    uncached = next(c for c in make_plan(load_suite(path)).cells if c.settings["cache"] == "none")
    without_axis = {k: v for k, v in uncached.settings.items() if k != "cache"}
    assert uncached.cell_id == cell_identity(uncached.model, without_axis)


def test_caches_run_per_cell_and_record_the_work_that_ran(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    outcome = run_suite(load_suite(path), tmp_path / "out")
    records = [r for r in read_records(outcome.results_path) if r["type"] == "generation"]
    by_cache = {(r["cell"]["model"], r["cell"]["cache"]): r for r in records}
    by_steps = {(r["cell"]["model"], r["cell"]["cache"], r["cell"]["steps"]): r for r in records}

    refused = by_cache[("sd", "first-block@0.05")]
    assert refused["status"] == "not_applicable" and "UNet2DConditionModel has no step-cache support" in refused["error"]

    uncached = by_cache[("flux", "none")]
    never_skips = by_cache[("flux", "first-block@1e-06")]
    always_skips = by_cache[("flux", "first-block@9.0")]
    taylor = by_cache[("flux", "taylorseer@2")]
    for record in (uncached, never_skips, always_skips, taylor):
        assert record["status"] == "ok", record.get("error")
        assert record["evaluations"] == record["denoiser_calls"] == 6  # a cached step is still a step
    assert "denoiser_work" not in uncached  # counted only where a cache could save work
    assert never_skips["denoiser_work"] == pytest.approx(6.0)  # a threshold nothing passes: all computed
    # The first step in full, then only the first block (with embeddings and output layers): in a
    # tiny model of few blocks that is still a large part of each step, but less than all of it.
    assert 1.0 < always_skips["denoiser_work"] < 5.0
    assert 1.0 < taylor["denoiser_work"] < 6.0
    # MagCache with FLUX's calibrated ratios skips steps after its first 20%, set up for each step count
    magcache_6, magcache_8 = by_steps[("flux", "magcache@0.5", 6)], by_steps[("flux", "magcache@0.5", 8)]
    for record, steps in ((magcache_6, 6), (magcache_8, 8)):
        assert record["status"] == "ok" and record["evaluations"] == steps, record.get("error")
        assert 1.0 < record["denoiser_work"] < steps - 1
    # FasterCache on FLUX: attention reused on the steps after timestep 681, so less than all of it ran
    faster = by_cache[("flux", "fastercache@3")]
    assert faster["status"] == "ok" and faster["evaluations"] == 6, faster.get("error")
    assert 1.0 < faster["denoiser_work"] < 6.0
    refused_faster = by_cache[("wan", "fastercache@2")]
    assert refused_faster["status"] == "not_applicable" and "FasterCache's hook fails inside" in refused_faster["error"]
    refused_mag = by_cache[("wan", "magcache@0.06")]
    assert refused_mag["status"] == "not_applicable" and "runs on flux only, not on wan" in refused_mag["error"]

    # A cache that never skips computes exactly the uncached picture; one that always skips does not.
    folder = outcome.results_path.parent
    assert same_picture(folder / never_skips["image"], folder / uncached["image"])
    assert other_picture(folder / always_skips["image"], folder / uncached["image"])

    quality = step_quality(with_metrics(load_results([outcome.results_path]).generations))
    flux_quality = quality.set_index("cell_id")
    assert flux_quality.loc[uncached["cell_id"], "ssim"] == pytest.approx(1.0)  # the reference: computed in full
    assert flux_quality.loc[never_skips["cell_id"], "ssim"] == pytest.approx(1.0)
    assert flux_quality.loc[always_skips["cell_id"], "ssim"] < 1.0 - 1e-6  # judged against the full picture


def test_plan_refuses_a_cache_its_family_does_not_list_before_anything_loads(tmp_path: Path) -> None:
    """Which family runs FasterCache and MagCache is the family's declaration (FamilySpec.step_caches):
    the plan refuses Wan's cells before a load, on one machine or a cluster, with the words the
    worker would record, and only those cells: the uncached cells of the same load still run."""
    path = tmp_path / "s.yaml"
    path.write_text(SUITE.replace("  - {model: wan, cache: fastercache, steps: 4}\n",
                                  "  - {model: wan, cache: fastercache, steps: 4}\n  - {model: wan, steps: 4}\n"))
    for placed_by_cluster in (False, True):
        cells = make_plan(load_suite(path), placed_by_cluster=placed_by_cluster).cells
        problems = {(c.model_name, c.settings["cache"]): c.skip_reason for c in cells}
        assert problems[("wan", "fastercache@2")] == (
            "cache 'fastercache@2': FasterCache's hook fails inside the transformers of Wan and LTX-Video in "
            "diffusers 0.42; it was verified on guidance-distilled FLUX; it runs on flux only, not on wan")
        assert "MagCache needs magnitude ratios calibrated" in problems[("wan", "magcache@0.06")]
        assert problems[("wan", "none")] is None  # same load as the refused ones, not refused with them
        assert problems[("flux", "fastercache@3")] is None and problems[("flux", "magcache@0.5")] is None
        assert problems[("sd", "first-block@0.05")] is None  # a UNet's lack of hooks is found on the loaded denoiser


def test_a_family_that_lists_magcache_must_name_its_ratios() -> None:
    from dataclasses import replace

    from diffbench.rules.families import FAMILIES, register

    with pytest.raises(ValueError, match="lists magcache in step_caches but names no magcache_ratios"):
        register(replace(FAMILIES["wan"], name="wan-cached", step_caches=("magcache",)))
    assert "wan-cached" not in FAMILIES
