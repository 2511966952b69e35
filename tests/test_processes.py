"""How workers start (execute/processes.py): forked from a warm server that never starts CUDA, or
spawned; a server that an import left with CUDA started is given up for spawning, and the job
runs all the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TWO_LOADS = ("name: starts\nmodels:\n  t: {source: 'builtin:tiny-sd'}\ndefaults: {device: cpu, steps: 1}\n"
             "matrix:\n  attention: [default, native]\nwarmup: 0\nrepeats: 1\n")


def _run(tmp_path: Path, **env: str) -> list[dict]:
    suite = tmp_path / "s.yaml"
    suite.write_text(TWO_LOADS)
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in next((tmp_path / "out").glob("*.jsonl")).read_text().splitlines()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is tested where CI runs")
def test_workers_fork_from_the_warm_server_and_each_load_gets_its_own(tmp_path: Path) -> None:
    lines = _run(tmp_path)
    loads = [r for r in lines if r["type"] == "load"]
    assert [r["runtime"]["worker_start"] for r in loads] == ["forkserver", "forkserver"]
    assert all(r["status"] == "ok" for r in lines if r["type"] == "generation")


def test_a_fork_server_whose_imports_started_cuda_is_given_up_for_spawning(tmp_path: Path) -> None:
    """No GPU here to start CUDA in the server, so the worker is told to see its fork as one that
    cannot use CUDA (what torch.cuda reports after such a fork): the job runs spawned, whole."""
    lines = _run(tmp_path, DIFFBENCH_TEST_FAKE_BAD_FORK="1")
    loads = [r for r in lines if r["type"] == "load"]
    assert [r["runtime"]["worker_start"] for r in loads] == ["spawn", "spawn"]
    generations = [r for r in lines if r["type"] == "generation"]
    assert len(generations) == 2 and all(r["status"] == "ok" for r in generations)


def test_spawning_can_be_asked_for(tmp_path: Path) -> None:
    lines = _run(tmp_path, DIFFBENCH_WORKER_START="spawn")
    assert {r["runtime"]["worker_start"] for r in lines if r["type"] == "load"} == {"spawn"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is tested where CI runs")
def test_the_server_starts_again_when_the_environment_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Libraries read some variables when imported (HF_HUB_OFFLINE): a server started in another
    environment would give its forks the old one."""
    from multiprocessing import forkserver

    from diffbench.execute import processes

    context = processes.worker_context()

    def server_after_start() -> int | None:
        processes.prepare_start(context)
        forkserver._forkserver.ensure_running()  # what a worker's start does
        return forkserver._forkserver._forkserver_pid

    first = server_after_start()
    assert server_after_start() == first  # the same environment: the same warm server
    monkeypatch.setenv("DIFFBENCH_TEST_SOMETHING_NEW", "1")
    second = server_after_start()
    assert second is not None and second != first
