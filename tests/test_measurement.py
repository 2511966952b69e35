"""Per-step and phase timing on real tiny diffusers pipelines (no mocks of diffusers or torch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diffbench.execute.axes.sampler import scheduler_for
from diffbench.execute.configure import call_arguments
from diffbench.execute.generation import Meters, measure_generation
from diffbench.measure.clocks import WallClock
from diffbench.measure.memory import HostPeak
from diffbench.measure.probe import PipelineProbe
from diffbench.models.sources import load_pipeline

SETTINGS = {"prompt": "a red fox", "steps": 4, "resolution": "64x64", "batch_size": 1, "guidance_scale": 5.0,
            "seed": 1, "negative_prompt": None}


def _pipeline(name: str):
    pipe = load_pipeline({"source": f"builtin:{name}"}, torch.float32, Path("."))
    pipe.set_progress_bar_config(disable=True)
    return pipe, PipelineProbe(pipe, WallClock()), Meters(HostPeak())


@pytest.fixture(scope="module")
def tiny_sd():
    return _pipeline("tiny-sd")


def _generate(pipe, probe, meters, **overrides):
    settings = {**SETTINGS, **overrides}
    return measure_generation(pipe, probe, meters, call_arguments(pipe, settings))


def test_one_value_per_step_including_step_0_and_none_leak_across_generations(tiny_sd) -> None:
    pipe, probe, meters = tiny_sd
    runs = [_generate(pipe, probe, meters, steps=n)[0] for n in (4, 4, 7)]
    assert [len(r.step_s) for r in runs] == [4, 4, 7]
    assert [r.evaluations for r in runs] == [4, 4, 7]
    for record in runs:
        assert all(s > 0 for s in record.step_s)
        # the gap before step 0 (text encoding) is not a step: step 0 is the size of the others
        assert record.step_s[0] < 5 * sorted(record.step_s)[len(record.step_s) // 2] + 0.05


def test_phases_add_up_to_wall_time_and_steps_fit_inside_denoise(tiny_sd) -> None:
    pipe, probe, meters = tiny_sd
    _generate(pipe, probe, meters)  # warm
    record, images = _generate(pipe, probe, meters, steps=6)
    phases = record.phases_s
    assert set(phases) == {"text_encode", "denoise", "decode", "other"}
    assert all(v > 0 for k, v in phases.items() if k != "other")
    total = sum(phases.values())
    assert abs(total - record.wall_s) <= 0.05 * record.wall_s
    assert sum(record.step_s) <= phases["denoise"] + 1e-9
    assert record.peak_host_rss_bytes > 50 * 2**20
    assert images[0].size == (64, 64)


def test_heun_records_every_evaluation_it_ran(tiny_sd) -> None:
    pipe, probe, meters = tiny_sd
    base = dict(pipe.scheduler.config)
    original = pipe.scheduler
    try:
        pipe.scheduler, name = scheduler_for(pipe, base, "Heun", "sd")
        record, _ = _generate(pipe, probe, meters, steps=5)
    finally:
        pipe.scheduler = original
    assert name == "HeunDiscreteScheduler"
    assert record.evaluations == 2 * 5 - 1 == record.denoiser_calls


def test_a_measurement_is_typed_and_its_fields_are_the_results_lines(tiny_sd) -> None:
    """The worker gets a typed Measurement; what goes into the results line are exactly fields the
    results contract declares, in its order, and whether the latents stayed finite is not one."""
    from diffbench.contract.records import GenerationLine
    from diffbench.execute.generation import Measurement

    pipe, probe, meters = tiny_sd
    measured, _ = _generate(pipe, probe, meters, steps=2)
    assert isinstance(measured, Measurement) and measured.latents_finite is True
    fields = measured.fields()
    assert list(fields)[:6] == ["wall_s", "timed_s", "phases_s", "step_s", "evaluations", "denoiser_calls"]
    assert "latents_finite" not in fields and fields["evaluations"] == 2
    assert set(fields) <= set(GenerationLine.model_fields)


def test_classifier_free_guidance_is_one_batched_call_per_step(tiny_sd) -> None:
    pipe, probe, meters = tiny_sd
    record, _ = _generate(pipe, probe, meters, guidance_scale=1.0, steps=3)
    assert record.evaluations == 3 == record.denoiser_calls


def test_probe_is_inert_outside_a_generation_and_removable(tiny_sd) -> None:
    pipe, probe, meters = tiny_sd
    _generate(pipe, probe, meters, steps=3)
    before = (list(probe.marks.steps), list(probe.marks.text), probe.marks.denoiser_calls)
    pipe(**call_arguments(pipe, {**SETTINGS, "steps": 2}))  # a bare call: nothing recorded
    assert (probe.marks.steps, probe.marks.text, probe.marks.denoiser_calls) == before
    record, _ = _generate(pipe, probe, meters, steps=2)
    assert record.evaluations == 2


@pytest.mark.parametrize("name", ["tiny-sdxl", "tiny-sd3", "tiny-flux"])
def test_every_builtin_family_is_measured_step_by_step(name: str) -> None:
    pipe, probe, meters = _pipeline(name)
    kwargs = {"guidance_scale": 0.0} if name == "tiny-flux" else {}
    record, images = _generate(pipe, probe, meters, steps=3, **kwargs)
    assert record.evaluations == 3
    assert record.phases_s["text_encode"] > 0 and record.phases_s["decode"] > 0
    assert images[0].size == (64, 64)
    probe.remove()
    assert "encode_prompt" not in pipe.__dict__
