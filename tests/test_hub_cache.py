"""Hub ids offline: a real Hugging Face cache (its layout of refs and snapshots) holding a tiny
pipeline loads under its repo id with HF_HUB_OFFLINE=1; a missing id is one line, before any worker."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from pictures import same_picture

from diffbench.execute.runner import run_suite
from diffbench.intake.suite import load_suite
from diffbench.models.builtin import builtin_path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture()
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`some-org/tiny-model` in a cache laid out as huggingface_hub lays it out."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    repo = cache / "models--some-org--tiny-model"
    shutil.copytree(builtin_path("tiny-sd"), repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))  # for the worker, which starts fresh
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))  # for this process
    return cache


def _suite(folder: Path, source: str, family: str | None = None) -> Path:
    suite = folder / "hub.yaml"
    given = f", family: {family}" if family else ""
    suite.write_text(f"name: hub\nmodels:\n  m: {{source: '{source}'{given}}}\n"
                     "defaults: {steps: 2, device: cpu, resolution: 64x64}\nwarmup: 0\nrepeats: 1\n")
    return suite


def test_a_cached_hub_id_loads_offline(tmp_path: Path, hub_cache: Path) -> None:
    outcome = run_suite(load_suite(_suite(tmp_path, "some-org/tiny-model")), tmp_path / "out")
    [record] = [r for r in outcome.records if r["type"] == "generation"]
    assert record["status"] == "ok", record["error"]
    assert record["cell"]["source"] == "some-org/tiny-model" and record["cell"]["weights"] == "pretrained"
    assert record["cell"]["family"] == "sd" and len(record["step_s"]) == 2


def test_a_hub_id_missing_from_the_cache_is_one_line_without_a_worker(tmp_path: Path, hub_cache: Path) -> None:
    outcome = run_suite(load_suite(_suite(tmp_path, "some-org/absent-model", "sd")), tmp_path / "out")
    [record] = [r for r in outcome.records if r["type"] == "generation"]
    assert record["status"] == "not_applicable"
    assert record["error"].startswith("'some-org/absent-model' is not in the Hugging Face cache, and HF_HUB_OFFLINE")
    lines = outcome.results_path.read_text().splitlines()
    assert not any('"type": "load"' in line for line in lines)  # no worker was started to learn this


def test_a_denoiser_file_on_a_cached_hub_base_loads_offline(tmp_path: Path, hub_cache: Path) -> None:
    """The UNet alone as a file, the rest (and its config) from a Hub id in the cache: the picture
    of the whole cached pipeline; a base missing from the cache is one line, before any worker."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(builtin_path("tiny-sd"), subfolder="unet")
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(tmp_path / "unet.safetensors"))
    suite = tmp_path / "base.yaml"
    suite.write_text("name: base\nmodels:\n  whole: {source: some-org/tiny-model}\n"
                     "  file: {source: unet.safetensors, base: some-org/tiny-model}\n"
                     "  lost: {source: unet.safetensors, base: some-org/absent-model, family: sd}\n"
                     "matrix: {model: [whole, file, lost]}\n"
                     "defaults: {steps: 2, device: cpu, resolution: 64x64}\nwarmup: 0\nrepeats: 1\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    records = {r["cell"]["model"]: r for r in outcome.records if r["type"] == "generation"}
    assert records["file"]["status"] == "ok", records["file"].get("error")
    assert records["file"]["cell"]["family"] == "sd" and records["file"]["cell"]["base"] == "some-org/tiny-model"
    images = {name: (outcome.results_path.parent / records[name]["image"]).read_bytes() for name in ("whole", "file")}
    assert same_picture(images["file"], images["whole"])
    assert records["lost"]["status"] == "not_applicable"
    assert records["lost"]["error"].startswith("'some-org/absent-model' is not in the Hugging Face cache")


def test_a_hub_id_missing_with_no_network_is_one_line_without_a_worker(tmp_path: Path, hub_cache: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without HF_HUB_OFFLINE but with no way to the Hub (an endpoint where nothing listens), a model
    missing from the cache is said once, before any worker starts, not after diffusers' retries."""
    from diffbench.models import sources

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing answers
    sources.hub_reachable.cache_clear()
    try:
        outcome = run_suite(load_suite(_suite(tmp_path, "some-org/absent-model", "sd")), tmp_path / "out")
    finally:
        sources.hub_reachable.cache_clear()
    [record] = [r for r in outcome.records if r["type"] == "generation"]
    assert record["status"] == "not_applicable" and "\n" not in record["error"]
    assert record["error"].startswith("'some-org/absent-model' is not in the local Hugging Face cache, and "
                                      "http://127.0.0.1:9 cannot be reached from here")
    assert not any('"type": "load"' in line for line in outcome.results_path.read_text().splitlines())
    # a cached model is never held back by the missing network
    cached = run_suite(load_suite(_suite(tmp_path, "some-org/tiny-model")), tmp_path / "out2")
    assert [r["status"] for r in cached.records if r["type"] == "generation"] == ["ok"]


def test_a_cached_hub_id_gets_its_family_from_its_model_index_not_its_name(tmp_path: Path, hub_cache: Path) -> None:
    """'some-org/tiny-model' says nothing of its family; the cached model_index.json does (sd). A
    name neither cached nor telling is a one-line suite error at the model, never run as 'sd'."""
    from diffbench.intake.yamlsource import SuiteError
    from diffbench.models.sources import infer_family

    assert infer_family("some-org/tiny-model", tmp_path) == "sd"
    with pytest.raises(SuiteError, match=r"hub\.yaml:3: model 'm': cannot tell the family of 'some-org/absent-model' "
                                         r"from its name: set family:"):
        load_suite(_suite(tmp_path, "some-org/absent-model"))


def test_plan_says_which_hub_models_the_cache_holds_and_what_is_missing(tmp_path: Path, hub_cache: Path) -> None:
    import subprocess
    import sys

    suite = tmp_path / "plan.yaml"
    suite.write_text("name: plan\nmodels:\n  here: {source: 'some-org/tiny-model'}\n"
                     "  gone: {source: 'some-org/absent-model', family: sd}\nmatrix: {model: [here, gone]}\n")
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "plan", str(suite)], capture_output=True,
                            text=True, timeout=120, env={**__import__("os").environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert re.search(r"Hub model some-org/tiny-model \(here\): in the local cache \(\d+\.\d MB\)", result.stdout)
    assert "Hub model some-org/absent-model (gone): not in the local cache, and HF_HUB_OFFLINE is set" in result.stdout
