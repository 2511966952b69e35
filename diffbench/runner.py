"""Running a suite: plan -> executor -> results file. A plain function a notebook can call."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import SCHEMA_VERSION
from .analysis.advice import Advice, check_noise, check_repeats, check_throttling
from .execute.base import Executor, Job
from .execute.local import LocalExecutor
from .hardware import nvml
from .hardware.availability import DeviceCheck
from .hardware.sysinfo import (
    environment_description,
    host_description,
    load_warnings,
    software_description,
)
from .models.sources import host_problem
from .plan import Cell, Plan, make_plan
from .results import (
    ResultsError,
    ResultsWriteError,
    ResultsWriter,
    fitting_name,
    generation_record,
    new_run_id,
    newest_schema,
    open_regular,
    read_records,
    repair_torn_tail,
    utc_now,
)
from .suite import Suite


class RunObserver:
    """Receives progress as a run goes; the CLI shows it live. All methods are optional."""

    def started(self, plan: Plan, results_path: Path) -> None: ...

    def cell_started(self, cell: Cell, index: int, total: int) -> None: ...

    def generation(self, record: dict[str, Any]) -> None: ...

    def loaded(self, info: dict[str, Any]) -> None: ...

    def stopping(self) -> None:
        """The first Ctrl-C: the run stops after the generation in progress."""

    def note(self, message: str) -> None:
        """Something to say once, plainly (e.g. that GPU telemetry is unavailable)."""


@dataclass
class RunOutcome:
    results_path: Path
    run_id: str
    plan: Plan
    records: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[Advice] = field(default_factory=list)
    interrupted: bool = False
    signal: int | None = None  # the signal that stopped the run (SIGINT, SIGTERM, SIGHUP)
    notes: list[str] = field(default_factory=list)  # what resuming repaired or noticed


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
            elif record["status"] in {"oom", "not_applicable", "error", "crashed", "timeout"}:
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
            job = jobs[cell.load_key] = Job(cell.model, plan.suite.base_dir, plan.suite.warmup, [],
                                            plan.suite.timeout_s, cell.model_name, plan.placed_by_cluster)
        entry: dict[str, Any] = {"cell_id": cell.cell_id, "cell": cell.resolved(), "repeats": repeats}
        if plan.suite.auto:
            entry["auto"] = {**plan.suite.auto_repeats.model_dump(), "previous_walls": (walls or {}).get(cell.cell_id, [])}
        job.cells.append(entry)
    return list(jobs.values()), static_na


def _executor(kind: str, emit: Callable[..., None], ray_address: str | None) -> Executor:
    if kind == "ray":
        from .execute.ray_executor import RayExecutor

        return RayExecutor(emit, ray_address)
    return LocalExecutor(emit)


def run_suite(suite: Suite, out_dir: str | Path = "results", resume: str | Path | None = None,
              observer: RunObserver | None = None, executor: str = "local",
              ray_address: str | None = None, force: bool = False) -> RunOutcome:
    """Run every cell of `suite`; results go to a new file in `out_dir`, or are appended to `resume`.

    executor "local" runs worker processes on this host (one per GPU in parallel when the suite
    names several CUDA devices); "ray" sends each pipeline load to a node of a Ray cluster that
    has the GPU its cells name.
    """
    observer = observer or RunObserver()
    host = host_description()
    notes: list[str] = []
    if resume is not None:
        writer, existing = _resume_writer(suite, Path(resume), force, notes)
        here = None if executor == "ray" else host["hostname"]
        done, walls = completed_work(existing, here)
    else:
        writer = _new_writer(suite, Path(out_dir))
        done, walls = {}, {}
    path = writer.path
    plan = make_plan(suite, placed_by_cluster=executor == "ray")
    if executor != "ray":  # on a cluster the gpu axis picks the node; each node knows its own devices
        check = DeviceCheck.with_torch()
        for cell in plan.cells:
            cell.skip_reason = cell.skip_reason or check.problem(cell.settings) or host_problem(cell.model)
    jobs, static_na = _jobs(plan, done, walls)
    run_id = new_run_id()
    outcome = RunOutcome(path, run_id, plan, notes=notes)
    cells_by_id = {c.cell_id: c for c in plan.cells}
    order = [c.cell_id for c in static_na] + [c["cell_id"] for j in jobs for c in j.cells]
    position = {cell_id: i for i, cell_id in enumerate(order)}

    by_cell: dict[str, list[dict[str, Any]]] = {}

    def warn(advice: Advice, cell_id: str | None = None) -> None:
        outcome.warnings.append(advice)
        writer.write({"type": "warning", "run_id": run_id, "cell_id": cell_id, "kind": advice.kind,
                      "subject": advice.subject, "message": advice.message})

    def finish_cell(cell_id: str) -> None:
        """Checks on a cell's repeats, stored with the results as soon as the cell ends."""
        records = [r for r in by_cell.pop(cell_id, []) if r["status"] == "ok" and not r["warmup"]]
        if not records:
            return
        cell = records[0]["cell"]
        subject = f"{cell['model']} {cell['sampler']} {cell['steps']} steps {cell['resolution']} ({cell_id})"
        ordered = sorted(records, key=lambda r: r["repeat"])
        for advice in check_repeats(subject, [r["wall_s"] for r in ordered], suite.warmup):
            if advice.kind != "few repeats" or suite.min_repeats >= 3:  # the suite asked for few: say it once
                warn(advice, cell_id)
        for advice in check_throttling(subject, [r.get("telemetry") for r in ordered]):
            warn(advice, cell_id)
        for advice in check_noise(subject, ordered, os.cpu_count() or 1):
            warn(advice, cell_id)

    def write(record: dict[str, Any], record_run_id: str = run_id) -> None:
        record["run_id"] = record_run_id
        by_cell.setdefault(record["cell_id"], []).append(record)
        png = record.pop("_image_png", None)
        if png is not None:
            image = writer.save_image(record["cell_id"], png)
            if image is not None:
                record["image"] = image
        writer.write(record)
        outcome.records.append(record)
        observer.generation(record)

    # A stream is one sequence of cells: the local worker, one GPU's worker, or one Ray task.
    current: dict[str, str] = {}
    stream_run_ids: dict[str, str] = {}
    node_run_ids: dict[str, str] = {}
    lock = threading.RLock()

    def emit(kind: str, payload: Any, stream: str = "local") -> None:
        with lock:  # workers of several GPUs report from their own threads
            if kind == "record":
                write(payload, stream_run_ids.get(stream, run_id))
            elif kind == "cell":
                previous = current.get(stream)
                if previous is not None and previous != payload:
                    finish_cell(previous)
                current[stream] = payload
                observer.cell_started(cells_by_id[payload], position.get(payload, 0) + 1, len(order))
            elif kind == "loaded":
                writer.write({"type": "load", "run_id": stream_run_ids.get(stream, run_id), **payload})
                observer.loaded(payload)
            elif kind == "node":
                stream_run_ids[stream] = node_run(payload)

    def node_run(node: dict[str, Any]) -> str:
        """Each cluster node's host gets a run line of its own, so every result keeps its host."""
        node_id = node["node_id"]
        if node_id not in node_run_ids:
            node_run_ids[node_id] = f"{run_id}-{node_id[:8]}"
            writer.write({
                "type": "run", "schema_version": SCHEMA_VERSION, "run_id": node_run_ids[node_id],
                "parent_run_id": run_id, "started_at": utc_now(),
                "suite": {"name": suite.name, "path": suite.path, "sha256": suite.sha256,
                          "description": suite.description},
                "host": {**node["host"], "ray_node_id": node_id, "ray_resources": node.get("resources", {})},
                "software": node.get("software", {}),
                "settings": {"warmup": suite.warmup, "repeats": suite.repeats, "timeout_s": suite.timeout_s,
                             "executor": "ray", "quality_reference": suite.quality_reference},
            })
        return node_run_ids[node_id]

    try:
        _start(writer, suite, run_id, host, executor, outcome, observer, warn)
    except BaseException:
        writer.close()
        raise
    runner = _executor(executor, emit, ray_address)
    previous_handlers = _install_stop_handlers(runner, observer, outcome)
    try:
        for cell in static_na:
            emit("cell", cell.cell_id)
            write(generation_record(cell.cell_id, cell.resolved(), 0, False, "not_applicable", cell.skip_reason))
        runner.run(jobs)
        for cell_id in list(by_cell):
            finish_cell(cell_id)
    except KeyboardInterrupt:
        runner.stop()
        outcome.interrupted = True
    except ResultsWriteError:
        runner.stop()  # nothing more can be saved: stop measuring at once
        raise
    finally:
        writer.close()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    outcome.interrupted = outcome.interrupted or runner.stop_requested
    return outcome


def _start(writer: ResultsWriter, suite: Suite, run_id: str, host: dict[str, Any], executor: str,
           outcome: RunOutcome, observer: RunObserver, warn: Callable[..., None]) -> None:
    """The run line, then what the run should know before the first cell."""
    writer.write({
        "type": "run", "schema_version": SCHEMA_VERSION, "run_id": run_id, "started_at": utc_now(),
        "suite": {"name": suite.name, "path": suite.path, "sha256": suite.sha256, "description": suite.description},
        "host": {**host, "telemetry": "nvml" if not nvml.unavailable_reason() else
                 f"unavailable: {nvml.unavailable_reason()}"},
        "software": software_description(),
        "environment": environment_description(),
        "settings": {"warmup": suite.warmup, "repeats": suite.repeats, "timeout_s": suite.timeout_s,
                     "executor": executor, "quality_reference": suite.quality_reference},
    })
    observer.started(outcome.plan, outcome.results_path)
    for note in outcome.notes:
        observer.note(note)
    if nvml.unavailable_reason():
        observer.note(f"GPU telemetry unavailable ({nvml.unavailable_reason()}): power, energy, clocks and "
                      "device-wide memory are not recorded")
    for text in nvml.gpu_warnings(host["gpus"]):
        warn(Advice("host", "GPU", text))
    for text in load_warnings():
        warn(Advice("host", "load", text))
    if suite.min_repeats < 6:
        warn(Advice("few repeats", suite.name, f"repeats is {suite.repeats}: a comparison needs at least 4 per "
                    "setting to be able to say 'significant', and 6 for a 95% interval of the median; "
                    "repeats: auto decides from the data"))


STOP_SIGNALS = ("SIGTERM", "SIGHUP")


def _install_stop_handlers(executor: Any, observer: RunObserver, outcome: RunOutcome) -> dict[int, Any]:
    """Ctrl-C once: finish the generation in progress, save, stop; twice: stop at once.
    SIGTERM and SIGHUP (a service manager, a closed terminal): stop the workers at once, keep
    the file valid. The CLI then exits with 128 + the signal's number."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_interrupt(signum: int, frame: Any) -> None:
        outcome.signal = signum
        if executor.stop_requested:
            raise KeyboardInterrupt
        executor.request_stop()
        observer.stopping()

    def on_stop_signal(signum: int, frame: Any) -> None:
        outcome.signal = signum
        if signum == getattr(signal, "SIGHUP", None):
            _detach_terminal()
        executor.request_abort()

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, on_interrupt)}
    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            number = getattr(signal, name)
            previous[number] = signal.signal(number, on_stop_signal)
    return previous


def _detach_terminal() -> None:
    """The terminal is gone: further output would fail (EIO, broken pipe), so it goes nowhere."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass
