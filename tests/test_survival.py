"""Runs that survive: killed workers, timeouts, failed loads, kill -9 and resume, Ctrl-C, OOM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from diffbench.contract.results import ResultsError, load_results, read_records
from diffbench.execute.local import LocalExecutor
from diffbench.execute.recorder import RunObserver, RunOutcome
from diffbench.execute.runner import StopSignals, run_suite
from diffbench.execute.worker import PROCESS_NAME, Worker
from diffbench.intake.plan import make_plan
from diffbench.intake.suite import load_suite
from diffbench.models.builtin import builtin_path

SLOW_SUITE = """\
name: survive
models:
  t: {source: "builtin:tiny-sd"}
defaults: {steps: 40, device: cpu}
matrix:
  sampler: [euler, ddim, dpmpp_2m]
warmup: 1
repeats: 5
"""


_STARTED: list[subprocess.Popen[str]] = []


def _start(suite: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--out", str(out), *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _STARTED.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test():
    """A test that fails half way must not leave its run (in its own session) and worker behind."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.communicate(timeout=30)


def _generations(path: Path) -> list[dict[str, Any]]:
    """Complete generation lines written so far (a torn last line is ignored)."""
    records = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("type") == "generation":
            records.append(record)
    return records


def _wait_for(out: Path, predicate, stall_s: float = 300) -> Path:
    """Wait until the run's results reach a point. The deadline follows progress: it is reset
    whenever a new generation line appears, so a slow or busy machine only waits longer; a run
    that stops making progress for `stall_s`, or that has exited, fails the test at once."""
    deadline = time.monotonic() + stall_s
    seen = -1
    while time.monotonic() < deadline:
        files = list(out.glob("*.jsonl"))
        generations = _generations(files[0]) if files else []
        if files and predicate(generations):
            return files[0]
        if len(generations) != seen:
            seen, deadline = len(generations), time.monotonic() + stall_s
        ended = [p for p in _STARTED if p.poll() is not None]
        if ended and all(p.poll() is not None for p in _STARTED):
            _, err = ended[-1].communicate()
            raise AssertionError(f"the run ended (exit {ended[-1].returncode}) before the expected point: {err[-400:]}")
        time.sleep(0.02)
    raise AssertionError(f"the run made no progress for {stall_s:.0f} s ({seen} generations written)")


def _processes(field: int, value: int) -> list[int]:
    """Live processes whose /proc stat field (after the command name) equals value: 1 = parent, 2 = group."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[field]) == value and fields[0] != "Z":
                    found.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return found


def _children(pid: int) -> list[int]:
    return _processes(1, pid)


def _group_members(group: int) -> list[int]:
    """Live processes of a process group (ours run in their own session)."""
    return _processes(2, group)


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def _worker_pid(parent: int) -> int:
    """The run's worker: its child when spawned, its fork server's child when forked."""
    for pid in _descendants(parent):
        try:
            if Path(f"/proc/{pid}/comm").read_bytes().strip() == PROCESS_NAME:
                return pid
        except OSError:
            continue
    raise AssertionError("no worker process found")


def _ordered_cells(records: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["cell_id"] for r in records))


@pytest.mark.parametrize("order", ["blocked", "interleaved"])
def test_a_worker_killed_mid_cell_loses_only_that_cell(tmp_path: Path, order: str) -> None:
    """The cell in progress is blamed; every other cell gets exactly the measured repeats it had
    left in a fresh worker (which warms each up again), with no repeat twice and none missing."""
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE + f"order: {order}\n")
    process = _start(suite, tmp_path / "out")
    # kill the worker as soon as the second cell has one measured generation
    path = _wait_for(tmp_path / "out", lambda g: len(_ordered_cells(g)) >= 2 and any(
        not r["warmup"] and r["cell_id"] == _ordered_cells(g)[1] for r in g))
    os.kill(_worker_pid(process.pid), signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    records = read_records(path)
    generations = [r for r in records if r["type"] == "generation"]
    first, second, third = _ordered_cells(generations)
    crashed = [g for g in generations if g["status"] == "crashed"]
    assert len(crashed) == 1 and "SIGKILL" in crashed[0]["error"]
    blamed = crashed[0]["cell_id"]
    assert blamed == second if order == "blocked" else blamed in (first, second, third)
    for cell in {first, second, third} - {blamed}:
        measured = sorted(g["repeat"] for g in generations if g["cell_id"] == cell and not g["warmup"])
        assert measured == [0, 1, 2, 3, 4], (cell, measured)  # no repeat twice, none missing
        assert all(g["status"] == "ok" for g in generations if g["cell_id"] == cell)
    if order == "blocked":
        assert Counter(g["status"] for g in generations if g["cell_id"] == first) == Counter({"ok": 6})
    else:  # measured turns alternate between the cells, each recorded with its round
        turns = [g["cell_id"] for g in generations if not g["warmup"] and g["status"] == "ok"]
        assert turns[:3] != [turns[0]] * 3 and all(g.get("round") is not None for g in generations
                                                   if not g["warmup"] and g["status"] == "ok")
    assert sum(1 for r in records if r["type"] == "load") == 2  # a fresh worker took the rest
    assert "crashed" in stdout


def test_a_cell_past_its_time_limit_is_stopped_and_the_rest_run(tmp_path: Path) -> None:
    suite = tmp_path / "t.yaml"
    suite.write_text("name: limit\nmodels:\n  t: {source: \"builtin:tiny-sd\"}\n"
                     "defaults: {device: cpu}\nmatrix:\n  steps: [2, 1000, 3]\n"
                     "warmup: 0\nrepeats: 2\ntimeout_s: 3\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    by_steps: dict[int, list[str]] = {}
    for record in outcome.records:
        by_steps.setdefault(record["cell"]["steps"], []).append(record["status"])
    assert by_steps[2] == ["ok", "ok"] and by_steps[3] == ["ok", "ok"]
    assert by_steps[1000] == ["timeout"]
    timed_out = next(r for r in outcome.records if r["status"] == "timeout")
    assert "time limit of 3 s" in timed_out["error"]


def test_a_model_that_fails_to_load_marks_its_cells_and_others_run(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(builtin_path("tiny-sd"), broken)
    weights = next((broken / "unet").glob("*.safetensors"))
    weights.write_bytes(b"this is not a safetensors file")
    suite = tmp_path / "m.yaml"
    suite.write_text("name: loads\nmodels:\n  bad: {source: ./broken}\n  good: {source: \"builtin:tiny-sd\"}\n"
                     "defaults: {steps: 2, device: cpu, resolution: 64x64}\n"
                     "matrix:\n  model: [bad, good]\n  sampler: [euler, ddim]\nwarmup: 0\nrepeats: 1\n")
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    by_model = Counter((r["cell"]["model"], r["status"]) for r in outcome.records)
    assert by_model == Counter({("bad", "error"): 2, ("good", "ok"): 2})
    failed = next(r for r in outcome.records if r["status"] == "error")
    assert failed["error"].startswith("model failed to load:")


def _measured_keys(path: Path) -> Counter[tuple[str, int]]:
    return Counter((g["cell_id"], g["repeat"]) for g in _generations(path) if not g["warmup"] and g["status"] == "ok")


def test_kill_9_of_the_whole_run_then_resume_measures_everything_exactly_once(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE.replace("steps: 40", "steps: 12"))
    reference = run_suite(load_suite(suite), tmp_path / "ref")
    expected = _measured_keys(reference.results_path)
    assert len(expected) == 15

    process = _start(suite, tmp_path / "out")
    path = _wait_for(tmp_path / "out", lambda g: sum(not r["warmup"] for r in g) >= 7)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    with path.open("a") as handle:  # what a power cut mid-write leaves behind
        handle.write('{"type": "generation", "cell_id": "')
    before = _measured_keys(path)
    assert 7 <= sum(before.values()) < 15

    resumed = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--resume", str(path)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "incomplete last line removed" in resumed.stdout + resumed.stderr
    after = _measured_keys(path)
    assert after == expected  # every cell and repeat, each exactly once
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_results([path])
    assert len(loaded.runs) == 2 and loaded.runs["hostname"].nunique() == 1


def test_resume_on_a_finished_file_runs_nothing(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE.replace("steps: 40", "steps: 2").replace("repeats: 5", "repeats: 1"))
    first = run_suite(load_suite(suite), tmp_path / "out")
    again = run_suite(load_suite(suite), resume=first.results_path)
    assert again.records == []


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_leaves_a_valid_loadable_file(tmp_path: Path, presses: int) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE)
    process = _start(suite, tmp_path / "out")
    path = _wait_for(tmp_path / "out", lambda g: len(g) >= 3)
    for _ in range(presses):
        os.killpg(process.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
        time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stdout
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torn line either
        results = load_results([path])
    assert 3 <= len(results.generations) < 18
    assert set(results.generations["status"]) == {"ok"}
    deadline = time.monotonic() + 60  # processes of the group may take a moment to be reaped
    while _group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftovers = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in _group_members(process.pid)}
    assert leftovers == {}  # the worker did not outlive the run


def test_ctrl_c_held_down_ends_with_130_and_the_summary(tmp_path: Path) -> None:
    """A key held down sends Ctrl-C after Ctrl-C, also while the run prints its summary and the
    interpreter shuts down; none of them may end the process by the signal itself (exit -2,
    summary cut short) or leave the killed worker's semaphores for the tracker to warn about."""
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE)
    process = _start(suite, tmp_path / "out")
    path = _wait_for(tmp_path / "out", lambda g: len(g) >= 3)
    presses = 0
    while process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGINT)
        except ProcessLookupError:
            break
        presses += 1
        time.sleep(0.01)
    stdout, stderr = process.communicate(timeout=120)
    assert presses >= 2
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "leaked" not in stderr
    assert f"--resume {path}" in stdout and "Summary" in stdout
    load_results([path])


def _wait_until(condition, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the run never reached the awaited point"
        time.sleep(0.01)


def _has_worker(parent: int) -> bool:
    try:
        _worker_pid(parent)
    except (AssertionError, OSError):
        return False
    return True


@pytest.mark.parametrize("point", ["results file created", "worker starting"])
def test_ctrl_c_before_measuring_began_exits_130_without_a_traceback(tmp_path: Path, point: str) -> None:
    """Before the first generation there is nothing to save, but the exit code still says
    "interrupted", as it does later: never click's "Aborted!" and 1, never a traceback, also not
    from the worker, which is still importing torch when the key reaches its process group."""
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE)
    process = _start(suite, tmp_path / "out")
    if point == "results file created":
        _wait_until(lambda: any((tmp_path / "out").glob("*.jsonl")) or process.poll() is not None)
    else:
        _wait_until(lambda: _has_worker(process.pid) or process.poll() is not None)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, f"stderr: {stderr}\nstdout: {stdout[-3000:]}"
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert "Interrupted" in stdout + stderr
    files = list((tmp_path / "out").glob("*.jsonl"))
    if files:  # what was written is a valid file with no measured generation
        assert len(load_results(files).generations) == 0


def test_a_second_ctrl_c_interrupts_only_while_workers_measure(tmp_path: Path) -> None:
    """Once the workers have stopped, the run is closing its file: a late second Ctrl-C must not
    raise there (it would end the process with click's "Aborted!" and exit 1, not 130)."""
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE)
    executor = LocalExecutor(lambda *message: None)
    outcome = RunOutcome(tmp_path / "r.jsonl", "run", make_plan(load_suite(suite)))
    signals = StopSignals(executor, RunObserver(), outcome)
    signals.install()
    try:
        signal.raise_signal(signal.SIGINT)
        assert executor.stop_requested and outcome.signal == signal.SIGINT
        signal.raise_signal(signal.SIGINT)  # workers stopped, file closing: noted, not raised
        signals.measuring = True
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        signals.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []

    def send(self, message: tuple[str, Any]) -> None:
        self.messages.append(message)


class _OomAtBatchTwo(Worker):
    """A real pipeline whose UNet runs out of memory, from inside its forward pass, at batch 2."""

    def _load(self, runtime: Any) -> Any:
        loaded = super()._load(runtime)
        pipe = loaded[0]

        def out_of_memory(module: Any, args: Any) -> None:
            if args[0].shape[0] >= 4:  # batch 2 doubled by classifier-free guidance
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")

        pipe.unet.mid_block.register_forward_pre_hook(out_of_memory)
        return loaded


def test_out_of_memory_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    suite = tmp_path / "o.yaml"
    suite.write_text("name: oom\nmodels:\n  t: {source: \"builtin:tiny-sd\"}\n"
                     "defaults: {steps: 2, device: cpu}\nmatrix:\n  batch_size: [1, 2]\n  sampler: [euler, ddim]\n"
                     "warmup: 1\nrepeats: 2\n")
    from diffbench.execute.runner import _jobs
    from diffbench.intake.plan import make_plan

    jobs, _ = _jobs(make_plan(load_suite(suite)), {})
    conn = _Collect()
    _OomAtBatchTwo(conn, jobs[0]).run()
    records = [payload for kind, payload in conn.messages if kind == "record"]
    outcome = Counter((r["cell"]["batch_size"], r["cell"]["sampler"], r["status"]) for r in records)
    # batch 1 cells: warm-up + 2 repeats each; batch 2 cells: one oom line each (the first try)
    assert outcome == Counter({(1, "euler", "ok"): 3, (1, "ddim", "ok"): 3,
                               (2, "euler", "oom"): 1, (2, "ddim", "oom"): 1})
    oom = next(r for r in records if r["status"] == "oom")
    assert "out of memory" in oom["error"] and oom["warmup"] is True and oom["step_s"] == []


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_stop_cleanly_and_leave_no_worker(tmp_path: Path, name: str, code: int) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE)
    process = _start(suite, tmp_path / "out")
    path = _wait_for(tmp_path / "out", lambda g: len(g) >= 3)
    worker = _worker_pid(process.pid)
    os.kill(process.pid, getattr(signal, name))  # to the run alone, as `kill PID` or a service manager does
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    if name == "SIGTERM":
        assert f"--resume {path}" in stdout
    results = load_results([path])
    assert results.notes == [] and set(results.generations["status"]) == {"ok"}
    deadline = time.monotonic() + 60
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]


def test_a_worker_whose_run_died_stops_by_itself(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE)
    process = _start(suite, tmp_path / "out")
    _wait_for(tmp_path / "out", lambda g: len(g) >= 2)
    worker = _worker_pid(process.pid)
    os.kill(process.pid, signal.SIGKILL)  # the parent dies without any chance to clean up
    process.communicate(timeout=60)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            break
        if state == "Z":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the worker outlived its run: it would hold a GPU for nothing")


def _small_run(tmp_path: Path, extra_sampler: bool = False) -> tuple[Path, Path]:
    suite = tmp_path / "s.yaml"
    text = SLOW_SUITE.replace("steps: 40", "steps: 2").replace("repeats: 5", "repeats: 1").replace("warmup: 1",
                                                                                                    "warmup: 0")
    suite.write_text(text)
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    if extra_sampler:
        suite.write_text(text.replace("sampler: [euler, ddim, dpmpp_2m]", "sampler: [euler, ddim, dpmpp_2m, heun]"))
    return suite, outcome.results_path


def test_resume_keeps_a_complete_last_line_that_lacks_its_newline(tmp_path: Path) -> None:
    suite, path = _small_run(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-1])  # the last line is complete, only its newline is missing
    last = json.loads(data.splitlines()[-1])
    outcome = run_suite(load_suite(suite), resume=path)
    assert outcome.records == []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert last in lines  # kept, not cut
    assert any("lacked its newline; added" in note for note in outcome.notes)


def test_resume_refuses_a_newer_schema_before_touching_the_file(tmp_path: Path) -> None:
    suite, path = _small_run(tmp_path)
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["schema_version"] = 99
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + '\n{"type": "gener')
    before = path.read_bytes()
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--resume", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "newer diffbench (schema 99" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == before  # not even the torn tail was cut


def test_resume_with_an_edited_suite_is_refused_unless_forced(tmp_path: Path) -> None:
    suite, path = _small_run(tmp_path, extra_sampler=True)
    before = path.read_bytes()
    with pytest.raises(ResultsError, match="has changed since.*--force"):
        run_suite(load_suite(suite), resume=path)
    assert path.read_bytes() == before
    outcome = run_suite(load_suite(suite), resume=path, force=True)
    assert {r["cell"]["sampler"] for r in outcome.records} == {"heun"}
    assert any("appending anyway (--force)" in note for note in outcome.notes)


def test_two_runs_started_in_the_same_second_get_their_own_files(tmp_path: Path) -> None:
    from diffbench.execute.runner import _new_writer, default_results_path

    loaded = load_suite(_write_quick_suite(tmp_path))
    writers = [_new_writer(loaded, tmp_path / "out") for _ in range(3)]
    assert len({w.path for w in writers}) == 3
    for writer in writers:
        writer.close()
    long = loaded.model_copy(update={"name": "n" * 200})
    path = default_results_path(long, tmp_path / "out")
    assert len(path.name.encode()) + len(".images") <= 255
    assert path.name.endswith(".jsonl") and path.name.startswith("nnn")


def _write_quick_suite(folder: Path) -> Path:
    suite = folder / "q.yaml"
    suite.write_text("name: quick\nmodels:\n  t: {source: 'builtin:tiny-sd'}\ndefaults: {steps: 1, device: cpu}\n"
                     "warmup: 0\nrepeats: 1\n")
    return suite


def test_ctrl_c_that_passed_through_generated_code_still_exits_130(tmp_path: Path) -> None:
    """CPython marks a KeyboardInterrupt that left exec()'d code (a dataclass's generated methods,
    while a module imports) as unhandled even after it was caught, and `python -m` then ends the
    process by SIGINT: CI once saw exit -2 after "Interrupted". The CLI clears that mark first."""
    (tmp_path / "interrupted_cli.py").write_text(
        "import sys\n"
        "import diffbench.cli as cli\n"
        "def interrupted(*args, **kwargs):\n"
        "    exec('raise KeyboardInterrupt')  # where a Ctrl-C lands inside generated code\n"
        "cli._load = interrupted\n"
        "sys.argv = ['diffbench', 'run', 'suite.yaml']\n"
        "cli.main()\n", encoding="utf-8")
    finished = subprocess.run([sys.executable, "-m", "interrupted_cli"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))})
    assert (finished.returncode, finished.stderr) == (130, "Interrupted\n")


def test_ctrl_c_twice_while_the_fork_server_imports_stops_at_once(tmp_path: Path) -> None:
    """Red team N7: two Ctrl-C while the fork server was still importing torch ended the run only
    when the imports were done (9.4 s). Now the server is killed in its imports: when the run has
    exited (130, its resume hint), nothing of its process group is left importing."""
    suite = tmp_path / "s.yaml"
    suite.write_text(SLOW_SUITE)
    process = _start(suite, tmp_path / "out")
    _wait_until(lambda: _fork_server_in(process.pid) or process.poll() is not None)  # importing torch now
    pressed = time.monotonic()
    for _ in range(2):  # to the run alone: a terminal's group signal would also stop the server's imports
        os.kill(process.pid, signal.SIGINT)
        time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=120)
    stopped_after = time.monotonic() - pressed
    # compared with what the imports take on this machine now, not with a fixed time: on a busy
    # machine both grow, and the run must not have waited for them
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", "import diffbench.execute.warm"], check=True, timeout=300)
    imports = time.monotonic() - began
    assert stopped_after < 0.5 * imports, (stopped_after, imports)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted!" not in stderr
    deadline = time.monotonic() + 2  # a process reaped a moment after its parent's exit
    while _group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_members(process.pid) == []


def _fork_server_in(group: int) -> bool:
    for pid in _group_members(group):
        try:
            if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False
