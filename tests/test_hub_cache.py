"""Hub ids offline: a real Hugging Face cache (its layout of refs and snapshots) holding a tiny
pipeline loads under its repo id with HF_HUB_OFFLINE=1; a missing id is one line, before any worker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from diffbench.models.builtin import builtin_path
from diffbench.runner import run_suite
from diffbench.suite import load_suite

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


def _suite(folder: Path, source: str) -> Path:
    suite = folder / "hub.yaml"
    suite.write_text(f"name: hub\nmodels:\n  m: {{source: '{source}'}}\n"
                     "defaults: {steps: 2, device: cpu, resolution: 64x64}\nwarmup: 0\nrepeats: 1\n")
    return suite


def test_a_cached_hub_id_loads_offline(tmp_path: Path, hub_cache: Path) -> None:
    outcome = run_suite(load_suite(_suite(tmp_path, "some-org/tiny-model")), tmp_path / "out")
    [record] = [r for r in outcome.records if r["type"] == "generation"]
    assert record["status"] == "ok", record["error"]
    assert record["cell"]["source"] == "some-org/tiny-model" and record["cell"]["weights"] == "pretrained"
    assert record["cell"]["family"] == "sd" and len(record["step_s"]) == 2


def test_a_hub_id_missing_from_the_cache_is_one_line_without_a_worker(tmp_path: Path, hub_cache: Path) -> None:
    outcome = run_suite(load_suite(_suite(tmp_path, "some-org/absent-model")), tmp_path / "out")
    [record] = [r for r in outcome.records if r["type"] == "generation"]
    assert record["status"] == "not_applicable"
    assert record["error"].startswith("'some-org/absent-model' is not in the Hugging Face cache, and HF_HUB_OFFLINE")
    lines = outcome.results_path.read_text().splitlines()
    assert not any('"type": "load"' in line for line in lines)  # no worker was started to learn this
