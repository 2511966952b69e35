"""recommend on a crafted results set against a hand-computed Pareto front; the quality signal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffbench.analysis.quality import step_quality
from diffbench.analysis.recommend import recommend
from diffbench.analysis.tables import with_metrics
from diffbench.contract.records import cell_settings, run_record
from diffbench.contract.results import ResultsWriter, generation_record, load_results

GIB = 2**30
REFERENCES: dict[str, np.ndarray] = {}


def _picture(model: str, noise: float) -> Image.Image:
    """The model's 'converged' picture, plus noise for fewer steps (a stand-in for real convergence)."""
    if model not in REFERENCES:
        REFERENCES[model] = np.random.default_rng(len(model)).random((64, 64, 3))
    pixels = REFERENCES[model] + np.random.default_rng(7).normal(0, noise, (64, 64, 3))
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))


# (name, model, steps, seconds, device VRAM GiB, image noise vs the model's most-steps picture)
CELLS = [
    ("turbo-1", "sdxl-turbo", 1, 0.3, 10.0, 0.5),
    ("turbo-4", "sdxl-turbo", 4, 0.8, 10.0, 0.0),
    ("sdxl-20", "sdxl", 20, 4.0, 9.0, 0.01),
    ("sdxl-30", "sdxl", 30, 6.0, 9.0, 0.0),
    ("flux-4", "flux-schnell", 4, 3.0, 30.0, 0.0),
    ("sd15-25", "sd15", 25, 2.0, 4.0, 0.0),
]


def write_results(folder: Path) -> Path:
    path = folder / "crafted.jsonl"
    writer = ResultsWriter(path)
    writer.write(run_record("r", "box", [{"name": "NVIDIA H100 80GB HBM3"}], {"name": "choose"}, host={"cpu": "x86"}))
    for name, model, steps, seconds, vram, noise in CELLS:
        cell = {"model": model, "sampler": "euler", "steps": steps, "resolution": "1024x1024", "batch_size": 1,
                "prompt": "a fox", "seed": 1, "guidance_scale": 0.0, "offload": "none"}
        image = writer.save_image(name, _image_bytes(_picture(model, noise)))
        for repeat in range(5):
            record = generation_record(name, cell, repeat, False, "ok", wall_s=seconds * (1 + 0.001 * repeat),
                                       step_s=[seconds * 0.8 / steps] * steps, evaluations=steps,
                                       peak_vram_device_bytes=int(vram * GIB),
                                       runtime={"device": "cuda:0", "dtype": "fp16", "gpu_name": "NVIDIA H100"})
            record["run_id"] = "r"
            if repeat == 0:
                record["image"] = image
            writer.write(record)
    oom = generation_record("flux-4-12g", cell_settings(model="flux-schnell", sampler="euler", steps=4,
                                                        vram_limit="12GiB"), 0, True, "oom", "CUDA out of memory")
    oom["run_id"] = "r"
    writer.write(oom)
    writer.close()
    return path


def _image_bytes(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_quality_compares_each_step_count_with_the_most_steps(tmp_path: Path) -> None:
    frame = with_metrics(load_results([write_results(tmp_path)]).generations)
    quality = step_quality(frame).set_index("cell_id")
    assert quality.loc["turbo-4", "ssim"] == 1.0 and quality.loc["turbo-1", "reference_steps"] == 4
    assert quality.loc["turbo-1", "ssim"] < 0.6 < 0.8 < quality.loc["sdxl-20", "ssim"] < 1.0
    assert np.isnan(quality.loc["sd15-25", "ssim"])  # one step count: nothing to compare with


def test_recommend_equals_the_hand_computed_front(tmp_path: Path) -> None:
    frame = with_metrics(load_results([write_results(tmp_path)]).generations)
    answer = recommend(frame, vram_gib=12, max_seconds=5, min_quality=0.8)
    # By hand: flux-4 needs 30 GiB; sdxl-30 takes 6 s; sd15-25 has no quality measure (one step count);
    # turbo-1's SSIM is far under 0.8. Left: turbo-4 (0.8 s, 10 GiB, 1.0) and sdxl-20 (4 s, 9 GiB, ~0.99):
    # neither dominates the other (turbo is faster, sdxl leaner), so both form the front.
    chosen = {c.cell_id: reasons for c, reasons in answer.chosen}
    assert set(chosen) == {"turbo-4", "sdxl-20"}
    assert "the fastest that meets the constraints" in chosen["turbo-4"]
    assert "the least memory" in chosen["sdxl-20"]
    reasons = dict((what.split(" on ")[0], why) for what, why in answer.excluded)
    assert reasons["flux-schnell · 4 steps"].startswith("needs 30.00 GiB")
    assert reasons["sdxl · 30 steps"].startswith("takes 6.01")
    assert "no quality measured" in reasons["sd15 · 25 steps"]
    assert reasons["sdxl-turbo · 1 step"].startswith("SSIM")
    assert any("oom at vram_limit 12GiB" in why for _, why in answer.excluded)


def test_without_quality_a_dominated_setting_says_by_what(tmp_path: Path) -> None:
    frame = with_metrics(load_results([write_results(tmp_path)]).generations)
    answer = recommend(frame, vram_gib=12)
    chosen = {c.cell_id for c, _ in answer.chosen}
    # sd15-25 (2 s, 4 GiB) has no quality, so quality is not an objective: turbo-1 (0.3 s) and sd15 (4 GiB)
    assert chosen == {"turbo-1", "sd15-25"}
    dominated = [why for what, why in answer.excluded if what.startswith("sdxl · 20 steps")]
    assert dominated and dominated[0].startswith("dominated by")


def test_the_recommend_command(tmp_path: Path) -> None:
    write_results(tmp_path)
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "recommend", str(tmp_path), "--vram", "RTX 3060",
                             "--max-seconds", "5", "--min-quality", "0.8"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "fits in 12 GiB of VRAM" in result.stdout and "* sdxl-turbo · 4 steps" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "diffbench.cli", "recommend", str(tmp_path), "--vram", "lots"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--vram 'lots'" in bad.stderr


def test_every_sampler_is_rated_against_one_common_reference(tmp_path: Path) -> None:
    """A sampler measured only at 1 and 2 steps must not score 1.000 against its own 2-step image."""
    path = tmp_path / "samplers.jsonl"
    writer = ResultsWriter(path)
    writer.write(run_record("r", "box", [{"name": "NVIDIA H100 80GB HBM3"}], {"name": "samplers"}))
    settings = [("euler", 8, 0.08), ("euler", 16, 0.03), ("euler", 32, 0.0), ("lcm", 1, 0.4), ("lcm", 2, 0.3)]
    for sampler, steps, noise in settings:
        name = f"{sampler}-{steps}"
        cell = cell_settings(model="sdxl", sampler=sampler, steps=steps, resolution="64x64", prompt="a fox", seed=1,
                             guidance_scale=5.0, offload="none", batch_size=1)
        image = writer.save_image(name, _image_bytes(_picture("sdxl", noise)))
        for repeat in range(6):
            record = generation_record(name, cell, repeat, False, "ok", wall_s=0.1 * steps * (1 + 0.001 * repeat),
                                       step_s=[0.1] * steps, evaluations=steps,
                                       runtime={"device": "cuda:0", "dtype": "fp16", "gpu_name": "NVIDIA H100"})
            record["run_id"] = "r"
            if repeat == 0:
                record["image"] = image
            writer.write(record)
    writer.close()
    from diffbench.analysis.quality import step_quality

    quality = step_quality(with_metrics(load_results([path]).generations)).set_index("cell_id")
    assert set(quality["reference_sampler"]) == {"euler"} and set(quality["reference_steps"]) == {32}
    assert quality.loc["euler-32", "ssim"] == pytest.approx(1.0)
    assert quality.loc["lcm-2", "ssim"] < quality.loc["euler-16", "ssim"] < 1.0
    assert quality.loc["lcm-1", "ssim"] < quality.loc["lcm-2", "ssim"]
    # both shown: against the common reference, and against what each sampler itself converges to
    assert quality.loc["lcm-2", "ssim_own"] == pytest.approx(1.0) and quality.loc["lcm-2", "own_reference_steps"] == 2
    assert quality.loc["lcm-2", "ssim"] < quality.loc["lcm-1", "ssim_own"] < 1.0
    assert quality.loc["euler-16", "ssim_own"] == pytest.approx(quality.loc["euler-16", "ssim"])  # its own is the common
    from diffbench.analysis.analyse import analyse
    from diffbench.report.figures import quality_against_steps

    analysis = analyse(load_results([path]))
    figure = quality_against_steps(analysis.frame, analysis.quality, analysis.summary)
    names = [trace["name"] for trace in figure["data"]]
    assert any("(to its own)" in name and "lcm" in name for name in names)
    assert not any("(to its own)" in name and "euler" in name for name in names)  # the same line: not drawn twice


def test_a_suite_can_name_the_quality_reference(tmp_path: Path) -> None:
    path = tmp_path / "named.jsonl"
    writer = ResultsWriter(path)
    writer.write(run_record("r", "box", [{"name": "NVIDIA H100 80GB HBM3"}], {"name": "named"},
                            settings={"quality_reference": {"sampler": "Euler", "steps": 16}}))
    pictures = [("euler", 8, 0.08, "a fox"), ("euler", 16, 0.03, "a fox"), ("euler", 32, 0.0, "a fox"),
                ("euler", 8, 0.08, "a cat")]  # the cat was never measured at the reference setting
    for sampler, steps, noise, prompt in pictures:
        name = f"{prompt[2:]}-{steps}"
        cell = cell_settings(model="sdxl", sampler=sampler, steps=steps, resolution="64x64", prompt=prompt, seed=1)
        image = writer.save_image(name, _image_bytes(_picture("sdxl", noise)))
        record = generation_record(name, cell, 0, False, "ok", wall_s=0.1 * steps, step_s=[0.1] * steps,
                                   evaluations=steps, image=image)
        record["run_id"] = "r"
        writer.write(record)
    writer.close()
    from diffbench.analysis.quality import step_quality

    quality = step_quality(with_metrics(load_results([path]).generations)).set_index("cell_id")
    assert quality.loc["fox-16", "ssim"] == pytest.approx(1.0) and quality.loc["fox-16", "reference_steps"] == 16
    assert quality.loc["fox-32", "ssim"] < 1.0  # more steps than the reference: compared with it, not best
    assert quality.loc["cat-8", "ssim"] is None or quality.loc["cat-8", "ssim"] != quality.loc["cat-8", "ssim"]
    # the reference is named as such and never ranked closest against itself; a picture alone is no reference
    assert bool(quality.loc["fox-16", "is_reference"]) and not bool(quality.loc["cat-8", "is_reference"])
    frame = with_metrics(load_results([path]).generations)
    answer = recommend(frame, min_quality=0.0)
    chosen = {candidate.cell_id: (candidate, reasons) for candidate, reasons in answer.chosen}
    reference, reasons = chosen["fox-16"]  # SSIM 1 against itself: on the front, never "closest"
    assert "the reference picture of its model" in reference.describe()
    assert not any("closest" in reason for reason in reasons)
    assert any("closest to its model's most-steps picture" in r for _, rs in answer.chosen for r in rs)


def test_a_quality_reference_naming_an_unknown_axis_is_refused(tmp_path: Path) -> None:
    from diffbench.intake.suite import load_suite
    from diffbench.intake.yamlsource import SuiteError

    suite = tmp_path / "q.yaml"
    suite.write_text("name: q\nmodels:\n  t: {source: 'builtin:tiny-sd'}\nquality_reference: {samplr: euler}\n")
    with pytest.raises(SuiteError, match=r"q\.yaml:4: field 'quality_reference'"):
        load_suite(suite)
    suite.write_text("name: q\nmodels:\n  t: {source: 'builtin:tiny-sd'}\nquality_reference: {sampler: euler, steps: 8}\n")
    assert load_suite(suite).quality_reference == {"sampler": "euler", "steps": 8}


def test_noisy_cells_are_left_out_of_recommend_and_estimate_unless_allowed(tmp_path: Path) -> None:
    """A cell measured while other work competed is not the card's time: recommend leaves it out with
    that reason (marked [NOISY] with --allow-noisy), and estimate fits without it."""
    import json

    from test_costmodel import write

    from diffbench.analysis.compare import noisy_cells

    results_file = tmp_path / "a.jsonl"
    write(results_file, "NVIDIA GeForce RTX 4090", fixed=0.6, per_eval=0.05, steps=[10, 20])
    loaded = load_results([results_file])
    frame = with_metrics(loaded.generations)
    fast = frame[frame["steps"] == 10].iloc[0]
    warning = {"type": "warning", "run_id": fast["run_id"], "hostname": fast["hostname"], "kind": "noisy",
               "subject": "cell", "cell_id": fast["cell_id"], "message": "load average up to 3.4 on 2 cores"}
    with results_file.open("a") as out:
        out.write(json.dumps(warning) + "\n")
    loaded = load_results([results_file])
    flagged = noisy_cells(loaded.warnings)
    assert flagged == {(fast["cell_id"], fast["hostname"])}
    answer = recommend(frame, noisy=flagged)
    assert all(c.cell_id != fast["cell_id"] for c, _ in answer.chosen)
    assert any("flagged noisy" in why for _, why in answer.excluded)
    allowed = recommend(frame, noisy=flagged, allow_noisy=True)
    assert any(c.cell_id == fast["cell_id"] and "[NOISY]" in c.describe() for c, _ in allowed.chosen)
    cli = [sys.executable, "-m", "diffbench.cli", "estimate", str(results_file), "--steps", "15", "--verbose"]
    quiet = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and "1 cell(s) flagged noisy" in quiet.stderr and "one step count" in quiet.stdout
    loud = subprocess.run([*cli, "--allow-noisy"], capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0 and "flagged noisy" not in loud.stderr and "least squares over 2" in loud.stdout


def test_a_setting_partly_measured_while_other_work_competed_stands_on_its_quiet_pictures(tmp_path: Path) -> None:
    """Three prompts per setting, one of the fast setting's cells noisy: that setting is still
    recommended from its two quiet pictures (its time their median, the noisy one's never counted),
    its label says so; a setting whose every cell is noisy is left out with the reason."""
    path = tmp_path / "p.jsonl"
    writer = ResultsWriter(path)
    writer.write(run_record("r", "box", [{"name": "NVIDIA H100 80GB HBM3"}], {"name": "p"}, host={"cpu": "x86"}))
    seconds = {("fast", "a"): 1.0, ("fast", "b"): 1.2, ("fast", "c"): 9.0, ("slow", "a"): 3.0, ("slow", "b"): 3.1,
               ("slow", "c"): 3.2, ("lone", "a"): 0.5, ("lone", "b"): 0.5, ("lone", "c"): 0.5}
    for (sampler, prompt), wall in seconds.items():
        cell = {"model": "m", "sampler": sampler, "steps": 4, "resolution": "512x512", "prompt": prompt, "seed": 1}
        for repeat in range(3):
            record = generation_record(f"{sampler}-{prompt}", cell, repeat, False, "ok", wall_s=wall,
                                       step_s=[wall / 8] * 4, evaluations=4, peak_vram_allocated_bytes=2 * GIB,
                                       runtime={"device": "cuda:0", "dtype": "fp16", "gpu_name": "NVIDIA H100"})
            record["run_id"] = "r"
            writer.write(record)
    writer.close()
    frame = with_metrics(load_results([path]).generations)
    host = str(frame["hostname"].iloc[0])
    noisy = {("fast-c", host), ("lone-a", host), ("lone-b", host), ("lone-c", host)}
    answer = recommend(frame, noisy=noisy)
    fast = next(c for c, _ in answer.chosen if c.settings["sampler"] == "fast")
    assert fast.seconds == pytest.approx(1.1) and set(fast.cells) == {"fast-a", "fast-b"}
    assert "(2 of 3 pictures: 1 measured while other work competed left out)" in fast.label
    assert all(c.settings["sampler"] != "lone" for c, _ in answer.chosen)
    assert any("lone" in what and "flagged noisy" in why for what, why in answer.excluded)
    everything = recommend(frame, noisy=noisy, allow_noisy=True)  # allowed: every picture, marked
    marked = next(c for c, _ in everything.chosen if c.settings["sampler"] == "lone")
    assert "[NOISY]" in marked.label and "(3 pictures)" in marked.label
