"""Tasks beyond text-to-image: image-to-image, inpainting, text-to-video and image-to-video, run
end to end on the built-in tiny pipelines, with step counts and frames checked independently."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from diffbench.analysis.tables import cell_summary, with_metrics
from diffbench.contract.files import safe_image
from diffbench.contract.results import load_results, read_records
from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError
from diffbench.rules.families import family
from diffbench.rules.tasks import effective_steps, frames_problem

MIXED = """
name: tasks
models:
  sd: {source: "builtin:tiny-sd"}
  sdxl: {source: "builtin:tiny-sdxl"}
  flux: {source: "builtin:tiny-flux"}
  wan: {source: "builtin:tiny-wan"}
  ltx: {source: "builtin:tiny-ltx"}
defaults: {device: cpu, steps: 10}
warmup: 0
repeats: 2
include:
  - {model: sd, task: text-to-image, steps: 4}
  - {model: [sd, sdxl], task: [image-to-image, inpainting], strength: [0.29, 0.55]}
  - {model: flux, task: image-to-image, strength: [0.29, 0.55]}
  - {model: [wan, ltx], steps: 3, frames: [9, 17]}
  - {model: ltx, task: image-to-video, steps: 3}
"""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tasks")
    suite = folder / "tasks.yaml"
    suite.write_text(MIXED)
    outcome = run_suite(load_suite(suite), folder / "out")
    return outcome.results_path


def _generations(path: Path) -> list[dict[str, Any]]:
    return [r for r in read_records(path) if r["type"] == "generation"]


@pytest.mark.parametrize("name", ["sd", "sdxl", "sd3", "flux"])
def test_effective_steps_are_what_the_pipelines_own_get_timesteps_runs(name: str) -> None:
    """Our arithmetic against diffusers' get_timesteps, on many steps and strengths (0.29 x 100
    is 28.999...: the pipelines floor it, and so must we)."""
    import diffusers

    spec = family(name)
    cls = getattr(diffusers, spec.pipeline_for("image-to-image"))
    from diffbench.models.builtin import builtin_path

    pipe = cls.from_pipe(getattr(diffusers, spec.pipeline_class).from_pretrained(
        builtin_path(f"tiny-{name}"), **({"text_encoder_3": None, "tokenizer_3": None} if name == "sd3" else {})))
    checked = 0
    for steps in (1, 3, 7, 10, 25, 50, 100):
        for strength in (0.05, 0.1, 0.29, 0.3, 0.33, 0.5, 0.55, 0.7, 0.75, 0.99, 1.0):
            pipe.scheduler.set_timesteps(steps)
            timesteps, runs = pipe.get_timesteps(steps, strength, "cpu")
            assert effective_steps(steps, strength, spec.strength_rounding) == runs == len(timesteps), \
                (steps, strength)
            checked += 1
    assert checked == 77
    assert family("sd").strength_rounding != family("flux").strength_rounding  # the rule really differs


def test_each_strength_runs_exactly_its_effective_steps(mixed: Path) -> None:
    seen = 0
    for record in _generations(mixed):
        cell = record["cell"]
        if cell["task"] not in {"image-to-image", "inpainting"}:
            continue
        assert record["status"] == "ok", record.get("error")
        rounding = family(cell["family"]).strength_rounding
        assert record["effective_steps"] == effective_steps(10, cell["strength"], rounding)
        # the probe's loop count (one mark per iteration) is the independent check
        assert record["evaluations"] == len(record["step_s"]) == record["effective_steps"]
        assert record["phases_s"]["image_encode"] > 0  # the input image went through the VAE encoder
        seen += 1
    assert seen == 2 * 2 * 2 * 2 + 2 * 2  # sd and sdxl x two tasks x two strengths, flux x two, 2 repeats
    by_model = {(r["cell"]["model"], r["cell"]["strength"]): r["effective_steps"] for r in _generations(mixed)
                if r["cell"]["task"] == "image-to-image"}
    assert by_model[("sd", 0.55)] == 5 and by_model[("flux", 0.55)] == 6  # floor of kept vs floor of skipped


def test_text_to_image_keeps_its_cell_ids_and_has_no_image_encoding(mixed: Path) -> None:
    plain = [r for r in _generations(mixed) if r["cell"]["task"] == "text-to-image"]
    assert plain and all("image_encode" not in r["phases_s"] and r.get("effective_steps") is None for r in plain)
    # the task setting that every earlier result had does not change a cell's identity
    from diffbench.intake.plan import cell_identity

    cell = dict(plain[0]["cell"])
    model = {"source": cell["source"], "revision": cell["revision"], "variant": cell["variant"]}
    settings = {k: v for k, v in cell.items() if k not in {"source", "family", "weights", "revision", "variant"}}
    assert cell_identity(model, settings) == cell_identity(model, {k: v for k, v in settings.items() if k != "task"})


def test_videos_have_the_frames_asked_for_and_a_moving_preview(mixed: Path) -> None:
    videos = [r for r in _generations(mixed) if r["cell"]["task"] in {"text-to-video", "image-to-video"}]
    assert len(videos) == (2 * 2 + 1) * 2
    for record in videos:
        assert record["status"] == "ok", record.get("error")
        assert record["video_frames"] == record["cell"]["frames"]
        assert record["evaluations"] == 3
        assert record["phases_s"]["decode"] > 0
    previews = [r for r in videos if r.get("image")]
    assert len(previews) == 5  # one per cell
    for record in previews:
        data = safe_image(mixed, record["image"])
        assert data is not None  # a PNG, checked like every thumbnail
        with Image.open(io.BytesIO(data)) as preview:
            assert preview.format == "PNG" and getattr(preview, "n_frames", 1) == record["cell"]["frames"]
            first = np.asarray(preview.convert("RGB"))
            preview.seek(preview.n_frames - 1)
            last = np.asarray(preview.convert("RGB"))
        assert max(first.shape[:2]) <= 128 and not np.array_equal(first, last)  # it moves
    i2v = [r for r in videos if r["cell"]["task"] == "image-to-video"]
    assert all(r["phases_s"]["image_encode"] > 0 for r in i2v)  # the first frame was encoded


def test_video_metrics_per_frame_and_per_second_of_video(mixed: Path) -> None:
    frame = with_metrics(load_results([mixed]).generations)
    video = frame[frame["task"] == "text-to-video"]
    expected = video["wall_s"] / video["video_frames"]
    assert np.allclose(video["s_per_frame"], expected)
    assert np.allclose(video["s_per_video_second"], video["wall_s"] / (video["video_frames"] / video["fps"]))
    assert frame.loc[frame["task"] != "text-to-video", "s_per_frame"].isna().sum() > 0  # images have none
    summary = cell_summary(frame)
    assert summary.loc[summary["task"] == "text-to-video", "frames"].tolist() == [9, 17, 9, 17]


@pytest.mark.parametrize(("entry", "message"), [
    ("{model: wan, task: image-to-image}", "a wan model runs text-to-video, not image-to-image"),
    ("{model: wan, task: image-to-video}", "Wan image-to-video is its own checkpoint"),
    ("{model: sd, strength: 0.5}", "strength applies to image-to-image and inpainting, not text-to-image"),
    ("{model: sd, frames: 9}", "frames applies to video models"),
    ("{model: wan, frames: 10}", "this model makes 4k+1 frames (e.g. 9 or 13); 10 is not one"),
    ("{model: ltx, frames: 16}", "8k+1 frames (e.g. 9 or 17)"),
    ("{model: sd, task: image-to-image, strength: 0.05, steps: 10}", "leaves no step to run"),
    ("{model: sd, task: image-to-image, init_image: nowhere.png}", "image file"),
    ("{model: sd, task: image-to-image, mask_image: m.png}", "mask_image applies to inpainting"),
    ("{model: sd, task: text-to-image, init_image: x.png}", "init_image applies to tasks that start from an image"),
    ("{model: sd, task: sideways}", "allowed: text-to-image, image-to-image, inpainting, text-to-video"),
    ("{model: sd, task: inpainting, strength: 1.5}", "a number <= 1"),
])
def test_task_mistakes_are_one_line_errors_with_their_line(tmp_path: Path, entry: str, message: str) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: bad\nmodels:\n  sd: {source: 'builtin:tiny-sd'}\n  wan: {source: 'builtin:tiny-wan'}\n"
                     "  ltx: {source: 'builtin:tiny-ltx'}\n"
                     f"include:\n  - {entry}\n")
    with pytest.raises(SuiteError) as caught:
        load_suite(suite)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert text.startswith(f"{suite}:7:"), text  # the include's line
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "validate", str(suite)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_frames_rule() -> None:
    assert frames_problem(81, 4) is None and frames_problem(161, 8) is None and frames_problem(1, 8) is None
    assert frames_problem(80, 4) is not None and frames_problem(0, 4) is not None


def test_given_input_image_and_mask_files_are_used(tmp_path: Path) -> None:
    """A file the suite names is what the pipeline starts from. (The tiny models' random VAE
    passes little of its input through, so the check on outputs is only that they differ;
    the inputs themselves are checked exactly.)"""
    from diffbench.execute.inputs import init_image, mask_image

    Image.new("RGB", (32, 32), (0, 0, 0)).save(tmp_path / "black.png")
    Image.new("RGB", (32, 32), (255, 255, 255)).save(tmp_path / "white.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "all.png")
    settings = {"resolution": "64x48", "seed": 3, "init_image": "white.png", "mask_image": "all.png"}
    given = np.asarray(init_image(settings, tmp_path))
    assert given.shape == (48, 64, 3) and given.min() == 255  # the file, at the cell's resolution
    assert np.asarray(mask_image(settings, tmp_path)).min() == 255
    generated = {k: v for k, v in settings.items() if k not in {"init_image", "mask_image"}}
    picture = np.asarray(init_image(generated, tmp_path))
    assert np.array_equal(picture, np.asarray(init_image(generated, tmp_path)))  # the same from the same seed
    assert not np.array_equal(picture, np.asarray(init_image({**generated, "seed": 4}, tmp_path)))
    mask = np.asarray(mask_image(generated, tmp_path))
    assert mask[24, 32] == 255 and mask[0, 0] == 0  # the middle is repainted, the border kept

    suite = tmp_path / "inputs.yaml"
    suite.write_text("name: inputs\nmodels:\n  sd: {source: 'builtin:tiny-sd'}\n"
                     "defaults: {device: cpu, steps: 4, task: image-to-image, strength: 0.5}\n"
                     "matrix:\n  init_image: [black.png, white.png]\nwarmup: 0\nrepeats: 1\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    shown = {r["cell"]["init_image"]: np.asarray(Image.open(io.BytesIO(safe_image(outcome.results_path, r["image"]))))
             for r in _generations(outcome.results_path)}
    assert set(shown) == {"black.png", "white.png"} and not np.array_equal(shown["black.png"], shown["white.png"])


def test_mixed_image_and_video_report_shows_previews_in_a_browser(mixed: Path, tmp_path: Path) -> None:
    from test_report_browser import CHROMIUM, Page

    if not Path(CHROMIUM).exists():
        pytest.skip("headless Chromium is not installed")
    from diffbench.report.html import build_report

    info = build_report([mixed], tmp_path / "tasks.html")
    seen = Page(info.path)
    assert seen.console_errors == [] and seen.page_errors == []
    assert all(url.startswith(("file://", "data:")) for url in seen.requests)
    assert len(seen.images) == 16  # one per cell: 11 images, 5 video previews
    assert all(complete and width > 0 and is_data_uri for complete, width, is_data_uri in seen.images)
    assert "Video" in seen.text and "s per video second" in seen.text
    assert "video · wan" in seen.text and "image-to-video" in seen.text
    assert "seconds per clip against frames" in json.dumps(seen.html) or "chart-clip-frames" in seen.html
    assert "chart-strength" in seen.html
    # every chart has data, but the SSIM one and the step line: no picture and no setting here was
    # measured at two step counts (another task, strength or clip length is another picture, never
    # compared as the same one); each empty chart says so
    empty = {chart for chart, count in seen.traces_by_chart.items() if count == 0}
    assert empty <= {"chart-quality", "chart-scaling-0"} and "chart-quality" in empty, seen.traces_by_chart
    assert "No data for the chart “Image change against steps" in seen.text
    assert "chart-pareto-video" in seen.traces_by_chart  # video clips and images on charts of their own


def test_clip_fit_recovers_a_known_cost_curve_and_flags_extrapolation() -> None:
    import pandas as pd

    from diffbench.analysis.videoclips import clip_fits

    rows = []
    for frames in (9, 41, 81, 121):
        for repeat in range(3):
            rows.append({"status": "ok", "warmup": False, "task": "text-to-video", "model": "ltx", "steps": 30,
                         "hardware": "H100", "frames": frames, "s_per_image": 0.5 + 0.01 * frames + 2e-4 * frames**2,
                         "peak_vram_device_bytes": (6 + 0.05 * frames) * 2**30, "peak_vram_reserved_bytes": np.nan,
                         "peak_host_rss_bytes": 1e9})
    [fit] = clip_fits(pd.DataFrame(rows))
    seconds, memory = fit.predict(161)
    assert seconds == pytest.approx(0.5 + 0.01 * 161 + 2e-4 * 161**2, rel=1e-9)
    assert memory == pytest.approx(6 + 0.05 * 161, rel=1e-9)
    assert fit.shape == "quadratic in frames" and fit.worst_fit_error() < 1e-9
    assert "EXTRAPOLATED beyond the measured 9-121 frames" in fit.sentence(161)
    assert "interpolated" in fit.sentence(61) and "device peak (NVML)" in fit.sentence(61)


def test_estimate_frames_from_a_real_run(mixed: Path) -> None:
    # --allow-noisy: on a busy machine every cell is flagged noisy and estimate rightly refuses; this
    # test is about the frames fit, not about a quiet machine (the flag's own tests are in test_noise.py)
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "estimate", str(mixed), "--steps", "3",
                             "--frames", "13", "--model", "wan", "--allow-noisy"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wan") and "13 frames ->" in result.stdout and "interpolated" in result.stdout
    missing = subprocess.run([sys.executable, "-m", "diffbench.cli", "estimate", str(mixed), "--steps", "5",
                              "--frames", "13", "--allow-noisy"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "measured at two frame counts" in missing.stderr


def test_hostile_input_images_are_one_line_errors(tmp_path: Path) -> None:
    """Red team: a FIFO, a folder, a link to /dev/zero and a decompression bomb as init_image were
    reported 'not found' or raised a traceback; an image larger than any resolution is refused."""
    import os

    from PIL import Image

    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "folder.png").mkdir()
    os.symlink("/dev/zero", tmp_path / "zero.png")
    bomb = Image.new("1", (20_000, 20_000))  # 400 Mpixel, a few KiB compressed
    bomb.save(tmp_path / "bomb.png")
    Image.new("RGB", (9000, 16)).save(tmp_path / "wide.png")
    cases = {"fifo.png": "a FIFO; only regular files are read", "folder.png": "a folder; only regular files",
             "zero.png": "is under /dev, a kernel or device file system", "bomb.png": "decompression bomb", "wide.png": "is 9000x16"}
    for name, message in cases.items():
        suite = tmp_path / f"{name}.yaml"
        suite.write_text(f"name: bad\nmodels:\n  sd: {{source: 'builtin:tiny-sd'}}\n"
                         f"include:\n  - {{model: sd, task: image-to-image, init_image: {name}}}\n")
        result = subprocess.run([sys.executable, "-m", "diffbench.cli", "validate", str(suite)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (name, result.stderr)
        assert message in result.stderr and result.stderr.strip().count("\n") == 0, (name, result.stderr)


def test_a_clip_longer_than_the_models_positions_is_refused_with_the_limit(tmp_path: Path) -> None:
    """tiny-wan's rotary embedding covers 32 latent frames (125 frames): 1025 frames is said as that
    limit at validate, in plan as in run (red team N20: plan said 'will run', run 'not applicable')."""
    suite = tmp_path / "long.yaml"
    suite.write_text("name: long\nmodels:\n  w: {source: 'builtin:tiny-wan'}\n"
                     "defaults: {device: cpu, steps: 2, frames: 1025}\nwarmup: 0\nrepeats: 1\n")
    with pytest.raises(SuiteError, match="frames 1025: this model's positional embedding covers at most 125 frames"):
        load_suite(suite)
    planned = subprocess.run([sys.executable, "-m", "diffbench.cli", "plan", str(suite)], capture_output=True,
                             text=True, timeout=120)
    assert planned.returncode == 2 and "covers at most 125 frames" in planned.stderr
