"""Running a suite: plan -> jobs -> recorder (the results file) -> executor. A plain function a
notebook can call."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import SCHEMA_VERSION
from ..contract.files import open_regular
from ..contract.records import TERMINAL_STATUSES
from ..contract.results import (
    ResultsError,
    ResultsWriteError,
    ResultsWriter,
    fitting_name,
    generation_record,
    new_run_id,
    newest_schema,
    read_records,
    repair_torn_tail,
)
from ..hardware.availability import DeviceCheck
from ..hardware.sysinfo import host_description
from ..intake.plan import Cell, Plan, make_plan
from ..intake.suitemodel import Suite
from ..models.sources import host_problem
from .base import AutoWork, CellWork, Executor, Job
from .local import LocalExecutor
from .recorder import RunObserver, RunOutcome, RunRecorder


def default_results_path(suite: Suite, out_dir: Path, attempt: int = 0) -> Path:
    """`<suite>-<date>-<host>.jsonl`, cut to fit the file system's name limit (with its images folder)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:40]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", suite.name)
    tail = f"-{stamp}-{host}" + (f"-{attempt + 1}" if attempt else "")
    cut = fitting_name(out_dir, name + tail, ".jsonl")
    if len(cut) < len(name + tail) + len(".jsonl"):  # keep the date, host and counter; cut the suite name
        room = len(cut) - len(tail) - len(".jsonl")
        cut = name[:max(1, room)] + tail + ".jsonl"
    return out_dir / cut


def _new_writer(suite: Suite, out_dir: Path) -> ResultsWriter:
    """A new results file, created exclusively: a second run in the same second gets its own name."""
    for attempt in range(100):
        path = default_results_path(suite, out_dir, attempt)
        if not path.exists():
            try:
                return ResultsWriter(path)
            except ResultsError:
                if not path.exists():
                    raise
    raise ResultsError(f"{out_dir}: could not find a free results file name for suite {suite.name}")


def _resume_writer(suite: Suite, path: Path, force: bool, notes: list[str]) -> tuple[ResultsWriter, list[dict[str, Any]]]:
    """Open a results file to continue it: locked first, then checked, and only then repaired."""
    open_regular(path).close()  # never open a FIFO or device for appending
    if newest_schema(path) > SCHEMA_VERSION:
        read_records(path)  # raises the one-line "newer diffbench" error; the file is untouched
    writer = ResultsWriter(path, append=True)
    try:
        records = read_records(path)
        hashes = {r["suite"].get("sha256") for r in records if r["type"] == "run"}
        if hashes and suite.sha256 not in hashes:
            names = sorted({str(r["suite"].get("name")) for r in records if r["type"] == "run"})
            message = (f"{path} was written by a different version of the suite ({', '.join(names)}); "
                       f"{suite.path} has changed since")
            if not force:
                raise ResultsError(f"{message}: resuming could mix settings; pass --force to append anyway, or run "
                                   "without --resume to start a new file")
            notes.append(message + "; appending anyway (--force)")
        repaired = repair_torn_tail(path)
        if repaired:
            notes.append(repaired)
    except BaseException:
        writer.close()
        raise
    return writer, records


def completed_work(records: list[dict[str, Any]],
                   hostname: str | None) -> tuple[dict[str, set[int]], dict[str, list[float]]]:
    """What a results file already holds, for this host only (any host of the cluster when
    `hostname` is None: on Ray, the suite's gpu axis says where a cell runs).

    Returns cell_id -> measured repeats (-1: the cell is complete), and cell_id -> the wall
    times of its measured ok generations in the order they ran (what the auto-repeats rule of a
    resumed cell starts from). A cell with a terminal failure (oom, not_applicable, ...) counts
    as complete: running it again would measure the same failure.
    """
    host_of_run: dict[str, str] = {}
    done: dict[str, set[int]] = {}
    walls: dict[str, list[float]] = {}
    for record in records:
        if record.get("type") == "run":
            host_of_run[record["run_id"]] = (record.get("host") or {}).get("hostname", "")
        elif record.get("type") == "generation" and not record.get("warmup"):
            if hostname is not None and host_of_run.get(record.get("run_id", "")) != hostname:
                continue
            if record["status"] == "ok":
                done.setdefault(record["cell_id"], set()).add(record["repeat"])
                walls.setdefault(record["cell_id"], []).append(record["wall_s"])
            elif record["status"] in TERMINAL_STATUSES:
                done.setdefault(record["cell_id"], set()).add(-1)  # terminal: the whole cell
            if record.get("repeats_stop"):
                done.setdefault(record["cell_id"], set()).add(-1)  # auto repeats decided it had enough
    return done, walls


def _jobs(plan: Plan, done: dict[str, set[int]],
          walls: dict[str, list[float]] | None = None) -> tuple[list[Job], list[Cell]]:
    """Group the plan's cells into one job per load, leaving out repeats already measured
    (with auto repeats, the earlier measurements go with the cell so that its rule sees them)."""
    jobs: dict[str, Job] = {}
    static_na: list[Cell] = []
    for cell in plan.cells:
        finished = done.get(cell.cell_id, set())
        if -1 in finished:
            continue
        repeats = [r for r in range(plan.suite.max_repeats) if r not in finished]
        if not repeats:
            continue
        if cell.skip_reason:
            static_na.append(cell)
            continue
        job = jobs.get(cell.load_key)
        if job is None:
            suite = plan.suite
            job = jobs[cell.load_key] = Job(
                cell.model, suite.base_dir, suite.warmup, [], suite.timeout_s, cell.model_name, plan.placed_by_cluster,
                order=suite.order, order_seed=suite.order_seed,
                warmup_steady=suite.warmup_steady)
        auto = AutoWork(plan.suite.auto_repeats, tuple((walls or {}).get(cell.cell_id, []))) if plan.suite.auto else None
        job.cells.append(CellWork(cell.cell_id, cell.resolved(), tuple(repeats), plan.suite.quality.clip is not None,
                                  auto))
    return list(jobs.values()), static_na


def _executor_class(kind: str) -> type[Any]:
    """The executor named on the command line ("local" or "ray"; Ray imported only when asked)."""
    if kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor
    return LocalExecutor


def _executor(kind: str, emit: Callable[..., None], ray_address: str | None) -> Executor:
    executor: Executor = _executor_class(kind)(emit, ray_address) if kind == "ray" else LocalExecutor(emit)
    return executor


def run_suite(suite: Suite, out_dir: str | Path = "results", resume: str | Path | None = None,
              observer: RunObserver | None = None, executor: str = "local",
              ray_address: str | None = None, force: bool = False,
              ignore_late_interrupts: bool = False) -> RunOutcome:
    """Run every cell of `suite`; results go to a new file in `out_dir`, or are appended to `resume`.

    executor "local" runs worker processes on this host (one per GPU in parallel when the suite
    names several CUDA devices); "ray" sends each pipeline load to a node of a Ray cluster that
    has the GPU its cells name.

    ignore_late_interrupts (the CLI's choice): once the run is over, Ctrl-C is ignored instead of
    given back to the previous handler, so that a key held down while the process prints its
    summary and exits cannot end it by the signal (exit -2, no summary) instead of with its code.
    """
    observer = observer or RunObserver()
    places_cells = _executor_class(executor).places_cells
    if not places_cells:
        from .processes import asked_start_method

        asked_start_method()  # a mistyped DIFFBENCH_WORKER_START is an error before any file is made
    host = host_description()
    notes: list[str] = []
    plan = make_plan(suite, placed_by_cluster=places_cells)
    if not places_cells:  # on a cluster the gpu axis picks the node; each node knows its own devices
        check = DeviceCheck.with_torch()
        for cell in plan.cells:
            cell.skip_reason = cell.skip_reason or check.problem(cell.resolved()) or host_problem(cell.model)
    if resume is not None:
        writer, existing = _resume_writer(suite, Path(resume), force, notes)
        here = None if places_cells else host["hostname"]
        done, walls = completed_work(existing, here)
    else:
        writer = _new_writer(suite, Path(out_dir))
        done, walls, existing = {}, {}, []
    try:  # from here on the file is closed whatever ends the run (a Ctrl-C before the handlers too)
        jobs, static_na = _jobs(plan, done, walls)
        outcome = RunOutcome(writer.path, new_run_id(), plan, notes=notes)
        order = [c.cell_id for c in static_na] + [c.cell_id for j in jobs for c in j.cells]
        recorder = RunRecorder(writer, outcome, observer, executor, order)
        recorder.start(host)
        runner = _executor(executor, recorder.emit, ray_address)
        signals = StopSignals(runner, observer, outcome, ignore_late_interrupts)
        signals.install()
    except BaseException:
        writer.close()
        raise
    try:
        for cell in static_na:
            recorder.cell_started(cell.cell_id)
            recorder.record(generation_record(cell.cell_id, cell.resolved(), 0, False, "not_applicable",
                                              cell.skip_reason))
        signals.measuring = True
        runner.run(jobs)
        signals.measuring = False
        recorder.finish_all()
        if suite.quality.clip is not None and not runner.stop_requested:
            recorder.score_pictures(suite.quality.clip, existing)
    except KeyboardInterrupt:
        signals.measuring = False
        runner.stop()
        outcome.interrupted = True
    except ResultsWriteError:
        signals.measuring = False
        runner.stop()  # nothing more can be saved: stop measuring at once
        raise
    finally:
        signals.measuring = False
        writer.close()
        if not places_cells and (outcome.interrupted or outcome.signal is not None):
            from .processes import stop_server

            # an interrupted run kills the fork server even in the middle of its imports: a second
            # Ctrl-C stops at once, not when torch has finished importing (9.4 s)
            stop_server(force=True)
        signals.restore()
    outcome.interrupted = outcome.interrupted or runner.stop_requested
    return outcome


STOP_SIGNALS = ("SIGTERM", "SIGHUP")


class StopSignals:
    """Ctrl-C once: finish the generation in progress, save, stop; twice: stop at once.
    SIGTERM and SIGHUP (a service manager, a closed terminal): stop the workers at once, keep
    the file valid. The CLI then exits with 128 + the signal's number.

    A second Ctrl-C interrupts only while workers are measuring: once they have stopped, the
    run is already saving and closing the file, and an exception there would end the process
    with a traceback (or click's "Aborted!") instead of the promised exit and resume hint."""

    def __init__(self, executor: Any, observer: RunObserver, outcome: RunOutcome,
                 ignore_late_interrupts: bool = False) -> None:
        self.executor, self.observer, self.outcome = executor, observer, outcome
        self.ignore_late_interrupts = ignore_late_interrupts
        self.measuring = False
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self.previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_interrupt)
        for name in STOP_SIGNALS:
            if hasattr(signal, name):
                number = getattr(signal, name)
                self.previous[number] = signal.signal(number, self._on_stop_signal)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            # SIG_IGN, not a Python handler: late in interpreter shutdown Python puts SIG_DFL back
            # in place of any Python handler, and a Ctrl-C there would kill the process
            late = signal.SIG_IGN if signum == signal.SIGINT and self.ignore_late_interrupts else handler
            signal.signal(signum, late)
        self.previous = {}

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        self.outcome.signal = signum
        if self.executor.stop_requested:
            if self.measuring:
                raise KeyboardInterrupt
            return
        self.executor.request_stop()
        self.observer.stopping()

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        self.outcome.signal = signum
        if signum == getattr(signal, "SIGHUP", None):
            _detach_terminal()
        self.executor.request_abort()


def _detach_terminal() -> None:
    """The terminal is gone: further output would fail (EIO, broken pipe), so it goes nowhere."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass
