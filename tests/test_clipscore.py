"""CLIP score per picture: computed right (against torchmetrics and by hand), stored with its
checkpoint, summarised over prompts, compared paired on prompt and seed, and shown in the report
and the CLI; on real tiny pipelines and the built-in tiny CLIP."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffbench.contract.records import LineError, validate_line
from diffbench.contract.results import read_records
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError
from diffbench.measure.clipscore import RANDOM_WEIGHTS, ClipScorer, checkpoint_problem
from diffbench.models.tinyclip import tiny_clip_path

PROMPTS = ["a red fox in snow", "a lighthouse at dusk", "three green apples", "a wooden sign that says OPEN",
           "a bowl of ramen", "an owl reading a book"]


def _pictures() -> list[Image.Image]:
    generator = np.random.default_rng(7)
    sizes = [(64, 64), (128, 96), (40, 200), (64, 64), (300, 300), (17, 33)]
    return [Image.fromarray(generator.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def _tensor_features(model):
    """The model as torchmetrics 1.9 calls it: get_*_features returning tensors (transformers 4);
    transformers 5 returns an output whose pooler_output is that same projected tensor."""
    import torch

    class TensorFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.config = model, model.config

        def get_image_features(self, *args, **kwargs):
            out = self.model.get_image_features(*args, **kwargs)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

        def get_text_features(self, *args, **kwargs):
            out = self.model.get_text_features(*args, **kwargs)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

    return TensorFeatures()


def test_the_score_equals_torchmetrics_and_a_computation_by_hand() -> None:
    import torch
    from torchmetrics.functional.multimodal import clip_score
    from transformers import CLIPModel, CLIPProcessor

    folder = tiny_clip_path()
    scorer = ClipScorer.load(RANDOM_WEIGHTS, Path.cwd())
    model = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
    processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
    positive = 0
    for picture, prompt in [(picture, prompt) for picture in _pictures() for prompt in PROMPTS]:
        ours = scorer.score(picture, prompt)
        positive += ours > 0
        # torchmetrics: the same checkpoint handed over as (model, processor); it floors the mean at 0
        tensor = torch.from_numpy(np.array(picture)).permute(2, 0, 1)
        theirs = float(clip_score(tensor, prompt, model_name_or_path=lambda: (_tensor_features(model), processor)))
        # by hand: the towers, their pooled outputs and projections, the cosine
        inputs = processor(text=[prompt], images=picture, return_tensors="pt", padding=True)
        with torch.no_grad():
            text = model.text_projection(model.text_model(input_ids=inputs["input_ids"],
                                                          attention_mask=inputs["attention_mask"]).pooler_output)
            image = model.visual_projection(model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
        cosine = float(torch.nn.functional.cosine_similarity(text, image).item())
        assert scorer.cosine(picture, prompt) == pytest.approx(cosine, abs=1e-6)  # below zero too
        assert ours == pytest.approx(max(0.0, 100 * cosine), abs=1e-4)
        assert ours == pytest.approx(theirs, abs=1e-3)
        assert 0.0 <= ours <= 100.0
    assert positive >= 6  # random weights: some pairs agree, some do not (floored at 0, as torchmetrics does)


def test_checkpoints_that_cannot_be_used_are_said_in_one_line(tmp_path: Path, monkeypatch) -> None:
    assert checkpoint_problem(RANDOM_WEIGHTS, tmp_path) is None
    assert "built-in one is 'builtin:tiny-clip'" in checkpoint_problem("builtin:clip", tmp_path)
    (tmp_path / "empty").mkdir()
    assert "holds no config.json" in checkpoint_problem("empty", tmp_path)
    assert "no such folder" in checkpoint_problem("./nowhere", tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    problem = checkpoint_problem("openai/clip-vit-large-patch14", tmp_path)
    assert problem is not None and "not in the Hugging Face cache" in problem and "\n" not in problem


@pytest.mark.parametrize(("line", "message"), [
    ("prompts: missing.txt", "field 'prompts': cannot read"),
    ("prompts: 'builtin:nope'", "no built-in prompt set 'builtin:nope' (allowed: builtin:varied"),
    ("prompts: empty.txt", "holds no prompt"),
    ("prompts: twice.txt", "the same prompt twice"),
    ("prompts: 'builtin:varied'\nmatrix: {prompt: [a cat]}", "the prompts are given twice"),
    ("quality: {clip: ./no-such-folder}", "field 'quality.clip'"),
    ("quality: {clip: 'builtin:clip'}", "the built-in one is 'builtin:tiny-clip'"),
    ("quality: {clipp: x}", "unknown field 'quality.clipp'"),
])
def test_prompt_files_and_clip_checkpoints_are_checked_with_the_suite(tmp_path: Path, line: str,
                                                                       message: str) -> None:
    (tmp_path / "empty.txt").write_text("# nothing but a comment\n\n")
    (tmp_path / "twice.txt").write_text("a cat\na cat\n")
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\nmodels:\n  t: {{source: 'builtin:tiny-sd'}}\n{line}\n")
    with pytest.raises(SuiteError) as caught:
        load_suite(suite)
    assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    assert str(caught.value).startswith(f"{suite}:"), str(caught.value)


def test_the_shipped_prompt_set_becomes_the_prompt_axis(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels:\n  t: {source: 'builtin:tiny-sd'}\nprompts: 'builtin:varied'\n"
                     "quality: {clip: 'openai/clip-vit-base-patch32'}\n")  # a Hub id is only checked at the run
    loaded = load_suite(suite)
    prompts = loaded.matrix["prompt"]
    assert 16 <= len(prompts) <= 32 and len(set(prompts)) == len(prompts)
    assert not any(p.startswith("#") for p in prompts)
    (tmp_path / "mine.txt").write_text("# two of my own\na cat on a mat\n\n  a dog on a log  \n")
    suite.write_text("name: s\nmodels:\n  t: {source: 'builtin:tiny-sd'}\nprompts: mine.txt\n")
    assert load_suite(suite).matrix["prompt"] == ["a cat on a mat", "a dog on a log"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("value", 101.0, "field 'value'"),
    ("value", float("nan"), "field 'value'"),
    ("metric", "fid", "field 'metric'"),
    ("checkpoint", "", "field 'checkpoint'"),
])
def test_a_quality_line_that_breaks_the_contract_is_refused_in_one_line(field: str, value: object,
                                                                          message: str) -> None:
    line = {"type": "quality", "run_id": "r", "cell_id": "c", "metric": "clip_score", "value": 31.5,
            "checkpoint": "openai/clip-vit-large-patch14"}
    validate_line(line)
    with pytest.raises(LineError) as caught:
        validate_line({**line, field: value})
    assert message in str(caught.value) and "\n" not in str(caught.value)


SUITE = """name: recipes-clip
models:
  tiny-sdxl: {source: 'builtin:tiny-sdxl'}
recipes:
  turbo: {model: tiny-sdxl, steps: 2, guidance_scale: 0.0, sampler: Euler a, resolution: 64x64}
  standard: {model: tiny-sdxl, steps: 6, guidance_scale: 5.0, sampler: Euler, resolution: 96x96}
prompts: prompts.txt
quality: {clip: 'builtin:tiny-clip'}
defaults: {device: cpu}
matrix: {seed: [1]}
warmup: 1
repeats: 4
"""


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    (folder / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    (folder / "suite.yaml").write_text(SUITE)
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(folder / "suite.yaml"), "--out",
                             str(folder / "out")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "CLIP score of 12 picture(s) with builtin:tiny-clip" in result.stdout + result.stderr
    return next((folder / "out").glob("*.jsonl"))


def test_a_run_stores_each_cells_score_of_its_full_resolution_picture(scored_run: Path) -> None:
    records = read_records(scored_run)
    scores = [r for r in records if r["type"] == "quality"]
    measured = {r["cell_id"]: r for r in records if r["type"] == "generation" and r.get("image_full")}
    assert len(scores) == len(measured) == 12 and {s["cell_id"] for s in scores} == set(measured)
    scorer = ClipScorer.load(RANDOM_WEIGHTS, Path.cwd())
    for line in scores:
        generation = measured[line["cell_id"]]
        assert line["checkpoint"] == RANDOM_WEIGHTS and line["image"] == generation["image_full"]
        data = (scored_run.parent / generation["image_full"]).read_bytes()
        with Image.open(io.BytesIO(data)) as picture:
            # the full picture, not the thumbnail; the stored score is that picture's score
            assert f"{picture.width}x{picture.height}" == generation["cell"]["resolution"]
            assert line["value"] == pytest.approx(scorer.score(picture, generation["cell"]["prompt"]), abs=1e-6)


def test_diffbench_score_adds_another_checkpoint_and_never_scores_twice(scored_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / scored_run.name
    shutil.copy(scored_run, copy)
    shutil.copytree(scored_run.with_name(scored_run.stem + ".images"), tmp_path / (scored_run.stem + ".images"))
    again = subprocess.run([sys.executable, "-m", "diffbench.cli", "score", str(copy), "--clip", RANDOM_WEIGHTS],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already has a CLIP score of builtin:tiny-clip" in again.stdout
    folder = tmp_path / "my-clip"
    shutil.copytree(tiny_clip_path(), folder)
    added = subprocess.run([sys.executable, "-m", "diffbench.cli", "score", str(copy), "--clip", str(folder)],
                           capture_output=True, text=True, timeout=300)
    assert added.returncode == 0, added.stderr
    assert "12 CLIP score(s)" in added.stdout
    lines = [json.loads(line) for line in copy.read_text().splitlines()]
    assert sum(1 for r in lines if r["type"] == "quality" and r["checkpoint"] == str(folder)) == 12
    missing = subprocess.run([sys.executable, "-m", "diffbench.cli", "score", str(copy), "--clip", "./nowhere"],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such folder" in missing.stderr


def test_compare_and_recommend_answer_turbo_against_standard_with_the_clip_score(scored_run: Path) -> None:
    compared = subprocess.run([sys.executable, "-m", "diffbench.cli", "compare", str(scored_run), "--by", "recipe"],
                              capture_output=True, text=True, timeout=300)
    assert compared.returncode == 0, compared.stderr
    text = " ".join(compared.stdout.split())
    assert "CLIP score (builtin:tiny-clip), time and memory, paired by prompt and seed:" in text
    assert "turbo reaches" in text and "of standard's CLIP score" in text and "over 6 prompt-seed pairs" in text
    # --allow-noisy: what is tested is how CLIP scores make candidates, not this machine's quiet
    recommended = subprocess.run([sys.executable, "-m", "diffbench.cli", "recommend", str(scored_run), "--allow-noisy",
                                  "--verbose"],
                                 capture_output=True, text=True, timeout=300)
    assert recommended.returncode == 0, recommended.stderr
    # one candidate per recipe (its six prompts together), never one per prompt
    assert recommended.stdout.count("(6 pictures)") >= 2 and "Quality: CLIP score of builtin:tiny-clip" in \
        recommended.stdout


def test_the_report_puts_time_against_quality_first(scored_run: Path, tmp_path: Path) -> None:
    from diffbench.analysis.analyse import analyse
    from diffbench.contract.results import load_results
    from diffbench.report.html import build_report

    analysis = analyse(load_results([scored_run]))
    assert [p.clip.n for p in analysis.tradeoff] == [6, 6]
    for point in analysis.tradeoff:  # every centre inside its interval
        assert point.clip.low <= point.clip.estimate <= point.clip.high
        assert point.seconds_low <= point.seconds <= point.seconds_high
    [pair] = analysis.tradeoff_pairs
    assert (pair.candidate, pair.baseline) == ("turbo", "standard")  # the slower recipe is the baseline
    # 2 steps, no guidance, 64x64 against 6, CFG, 96x96: about 3x faster when quiet; beside other work
    # one noisy pair of six can stretch the interval to 1, so the centre's direction is what is asserted
    assert pair.time_ratio is not None and pair.time_ratio.estimate < 1
    assert pair.memory_ratio is not None and pair.memory_ratio.low <= pair.memory_ratio.estimate <= pair.memory_ratio.high
    info = build_report([scored_run], tmp_path / "report.html")
    html = info.path.read_text()
    assert html.index('id="tradeoff"') < html.index('id="hosts"')
    answer = html[html.index('id="answer"'):html.index('id="summary"')]
    assert "turbo reaches" in answer  # the page opens with recipe against recipe, said there once
    assert html.count("turbo reaches") == 1
    assert "random weights" in html
    from test_report_browser import CHROMIUM, Page

    if not Path(CHROMIUM).exists():
        return
    seen = Page(info.path)
    assert seen.console_errors == [] and seen.page_errors == []
    assert seen.traces_by_chart["chart-tradeoff"] >= 1  # the recipes drawn (a front line too where both are on it)
    assert "Time against quality" in seen.text and "No data for the chart" not in seen.text.split("Hosts, GPUs")[0]


def test_a_recipe_sentence_says_when_its_times_were_noisy(scored_run: Path) -> None:
    from diffbench.analysis.tables import cell_summary, with_metrics
    from diffbench.analysis.tradeoff import describe, paired_tradeoffs, scored_cells
    from diffbench.contract.results import load_results

    loaded = load_results([scored_run])
    scores = scored_cells(cell_summary(with_metrics(loaded.generations)), loaded.quality)
    flagged = {(str(c), str(h)) for c, h in zip(scores.cells["cell_id"], scores.cells["hostname"])}
    [pair] = paired_tradeoffs(scores, "recipe", noisy=set(list(flagged)[:3]))
    assert pair.noisy_cells == 3 and "3 of its 12 cells were flagged noisy" in describe(pair)
    [quiet] = paired_tradeoffs(scores, "recipe", noisy=set())
    assert quiet.noisy_cells == 0 and "noisy" not in describe(quiet)


def test_charts_draw_one_bar_and_one_line_per_recipe_over_its_prompts(scored_run: Path) -> None:
    """A prompt set makes a cell per prompt; a chart pools them: one bar per setting, its median over
    every measured generation of every prompt, its memory the highest any prompt reached."""
    from diffbench.analysis.analyse import analyse
    from diffbench.analysis.tables import measured
    from diffbench.contract.results import load_results
    from diffbench.report import figures

    analysis = analyse(load_results([scored_run]))
    settings, cells = analysis.settings.frame, analysis.summary
    assert analysis.settings.instances == 6 and len(cells) == 12 and sorted(settings["recipe"]) == ["standard", "turbo"]
    generations = measured(analysis.frame)
    for row in settings.to_dict("records"):
        pooled = generations[generations["recipe"] == row["recipe"]]
        assert row["n"] == len(pooled) == 6 * 4
        assert row["s_per_image"] == pytest.approx(pooled["s_per_image"].median())
        assert row["phase_denoise"] == pytest.approx(pooled["phase_denoise"].median())
        assert row["card_memory_gib"] == pytest.approx(cells[cells["recipe"] == row["recipe"]]["card_memory_gib"].max())
        assert "prompt" not in row["label"] and row["recipe"] in row["label"]
    for figure in (figures.phase_breakdown(settings), figures.memory_against_cards(settings)):
        assert all(len(trace["y"]) == 2 for trace in figure["data"])
    lines = figures.step_latency(analysis.frame, analysis.settings.pooled(analysis.steps), settings)["data"]
    assert len([t for t in lines if not figures.is_warmup(t)]) == 2  # one measured line per recipe (and its warm-up)
    steps = analysis.steps[~analysis.steps["warmup"].astype(bool)]
    turbo_cells = set(cells.loc[cells["recipe"] == "turbo", "cell_id"])
    first_step = steps[steps["cell_id"].isin(turbo_cells) & (steps["step"] == 0)]["seconds"].median() * 1000
    turbo_line = next(t for t in lines if not figures.is_warmup(t) and "turbo" in t["name"])
    turbo_warmup = next(t for t in lines if figures.is_warmup(t) and "turbo" in t["name"])
    assert turbo_warmup["x"] == [0, 1] and turbo_warmup["line"]["color"] == turbo_line["line"]["color"]
    # two settings: their warm-ups drawn, under one legend entry ("first warm-ups") that toggles them all
    assert all(t.get("visible", True) is True for t in lines)
    assert [t["name"] for t in lines if t.get("showlegend", True) and figures.is_warmup(t)] == ["first warm-ups (dotted)"]
    assert turbo_line["y"][0] == pytest.approx(first_step, abs=1e-4)


def test_the_run_summary_shows_one_row_per_recipe_over_its_prompts(scored_run: Path) -> None:
    from rich.console import Console

    from diffbench.intake.plan import make_plan
    from diffbench.intake.suite import load_suite
    from diffbench.report.live import summary_table

    plan = make_plan(load_suite(scored_run.parent.parent / "suite.yaml"))
    records = [r for r in read_records(scored_run) if r["type"] == "generation"]
    console = Console(width=200, record=True)
    console.print(summary_table(plan, records))
    text = console.export_text()
    rows = [line for line in text.splitlines() if "tiny-sdxl" in line]
    assert len(rows) == 2 and "turbo" in rows[0] and "standard" in rows[1]  # not 12 rows, one per prompt
    assert "every prompt and seed" in text
