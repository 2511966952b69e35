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


FAKES = Path(__file__).parent / "forkfakes"
# `diffbench run` with one more module preloaded into the fork server (tests/forkfakes): how a test
# stands for a server that breaks, with no hook in diffbench's own code
WITH_PRELOAD = ("import sys; from diffbench.execute import processes; processes.PRELOAD.append(sys.argv.pop(1)); "
                "from diffbench.cli import main; sys.argv[0] = 'diffbench'; main()")


def _run(tmp_path: Path, preload: str | None = None, **env: str) -> list[dict]:
    suite = tmp_path / "s.yaml"
    suite.write_text(TWO_LOADS)
    start = [sys.executable, "-c", WITH_PRELOAD, preload] if preload else [sys.executable, "-m", "diffbench.cli"]
    result = subprocess.run([*start, "run", str(suite), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(FAKES), **env})
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in next((tmp_path / "out").glob("*.jsonl")).read_text().splitlines()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is tested where CI runs")
def test_workers_fork_from_the_warm_server_and_each_load_gets_its_own(tmp_path: Path) -> None:
    lines = _run(tmp_path)
    loads = [r for r in lines if r["type"] == "load"]
    assert [r["runtime"]["worker_start"] for r in loads] == ["forkserver", "forkserver"]
    assert all(r["status"] == "ok" for r in lines if r["type"] == "generation")


def test_a_fork_server_whose_imports_started_cuda_is_given_up_for_spawning(tmp_path: Path) -> None:
    """No GPU here to start CUDA in the server, so a module preloaded into it makes its forks see
    themselves as forks that cannot use CUDA (what torch.cuda reports then): the job runs spawned, whole."""
    lines = _run(tmp_path, preload="bad_fork")
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is tested where CI runs")
def test_a_fork_server_that_dies_in_its_imports_is_replaced_by_spawning(tmp_path: Path) -> None:
    """Red team N8: the server dying while it imported ended the run with click's bare 'Aborted!'."""
    lines = _run(tmp_path, preload="dying_server")
    loads = [r for r in lines if r["type"] == "load"]
    assert [r["runtime"]["worker_start"] for r in loads] == ["spawn", "spawn"]
    assert all(r["status"] == "ok" for r in lines if r["type"] == "generation")
    warnings = [r["message"] for r in lines if r["type"] == "warning"]
    assert any("fork server that starts workers died" in w for w in warnings)


@pytest.mark.parametrize("value", ["SPAWN", "fork", "", "spawn "])
def test_a_start_method_that_means_nothing_is_refused(tmp_path: Path, value: str) -> None:
    """Red team N28: anything but exactly 'spawn' silently forked."""
    suite = tmp_path / "s.yaml"
    suite.write_text(TWO_LOADS)
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "DIFFBENCH_WORKER_START": value})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "DIFFBENCH_WORKER_START" in result.stderr and "allowed: forkserver, spawn" in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.jsonl"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is tested where CI runs")
def test_no_fork_server_outlives_the_run(tmp_path: Path) -> None:
    """Red team N27: after `run` the server lived 2.5-4 s with parent 1, tearing torch down."""
    import time
    import uuid

    mark = f"DIFFBENCH_TEST_RUN_MARK={uuid.uuid4().hex}"  # this run's server, not another test's orphan
    _run(tmp_path, DIFFBENCH_TEST_RUN_MARK=mark.split("=", 1)[1])
    time.sleep(0.5)
    survivors = subprocess.run(["pgrep", "-f", "multiprocessing.forkserver"], capture_output=True, text=True)
    mine = [pid for pid in survivors.stdout.split() if _parent(pid) == 1 and mark.encode() in _environ(pid)]
    assert not mine, mine


def _environ(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _parent(pid: str) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1
    return int(fields[1])
