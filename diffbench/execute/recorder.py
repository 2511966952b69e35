"""The run recorder: owns a run's results file and what the run knows as it goes.

Executors report through `RunRecorder.emit` (from several threads when several GPUs or Ray
tasks run at once); the recorder writes every line the results file gets (run lines, load
lines, generations with their images, warnings), keeps per-cell state until the cell ends and
then stores the checks on its repeats, and tells the observer. The runner only wires
plan -> jobs -> recorder -> executor.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import SCHEMA_VERSION
from ..contract.results import ResultsWriter, utc_now
from ..hardware import nvml
from ..hardware.sysinfo import environment_description, load_warnings, software_description
from ..intake.plan import Cell, Plan
from ..intake.suitemodel import Suite
from ..rules.axes import steps_text
from ..rules.repeats import FEW_REPEATS, MIN_DECIDING
from .advice import Advice, check_noise, check_repeats, check_throttling
from .base import Picture


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


def run_line(suite: Suite, run_id: str, host: dict[str, Any], software: dict[str, Any], executor: str,
             **extra: Any) -> dict[str, Any]:
    """The line that opens a run (or, on a cluster, one node's part of it): who ran what, where."""
    return {
        "type": "run", "schema_version": SCHEMA_VERSION, "run_id": run_id, "started_at": utc_now(), **extra,
        "suite": {"name": suite.name, "path": suite.path, "sha256": suite.sha256, "description": suite.description},
        "host": host, "software": software,
        "settings": {"warmup": suite.warmup, "repeats": suite.repeats, "timeout_s": suite.timeout_s,
                     "executor": executor, "quality_reference": suite.quality_reference, "order": suite.order,
                     "order_seed": suite.order_seed,
                     "warmup_steady": suite.warmup_steady.model_dump() if suite.warmup_steady else None},
    }


def _apart(cell: dict[str, Any]) -> str:
    """What tells cells of one model, sampler, step count and resolution apart in a warning: the
    task, the clip length, the strength, where they are set."""
    parts = [str(cell["task"])] if cell.get("task") not in {None, "text-to-image"} else []
    parts += [f"{axis}={cell[axis]}" for axis in ("frames", "strength") if cell.get(axis) is not None]
    return (" " + " ".join(parts)) if parts else ""


class RunRecorder:
    """Writes one run's lines and keeps its state; `emit` is the executors' callback."""

    def __init__(self, writer: ResultsWriter, outcome: RunOutcome, observer: RunObserver, executor: str,
                 order: list[str]) -> None:
        self.writer = writer
        self.outcome = outcome
        self.observer = observer
        self.executor = executor
        self.suite = outcome.plan.suite
        self.run_id = outcome.run_id
        self._cells = {c.cell_id: c for c in outcome.plan.cells}
        self._position = {cell_id: i for i, cell_id in enumerate(order)}
        self._total = len(order)
        self._open_cells: dict[str, list[dict[str, Any]]] = {}  # cell id -> its records so far
        self._stream_run: dict[str, str] = {}
        self._saved_pictures: dict[tuple[str, int], dict[str, Any]] = {}  # (cell id, repeat) -> its record's fields
        self._node_run: dict[str, str] = {}
        self._lock = threading.RLock()  # workers of several GPUs report from their own threads

    # -- the start ---------------------------------------------------------------------------

    def start(self, host: dict[str, Any]) -> None:
        """The run line, then what the run should know before the first cell."""
        reason = nvml.unavailable_reason()
        self.writer.write(run_line(
            self.suite, self.run_id, {**host, "telemetry": f"unavailable: {reason}" if reason else "nvml"},
            software_description(), self.executor, environment=environment_description()))
        self.observer.started(self.outcome.plan, self.outcome.results_path)
        for note in self.outcome.notes:
            self.observer.note(note)
        if reason:
            self.observer.note(f"GPU telemetry unavailable ({reason}): power, energy, clocks and "
                               "device-wide memory are not recorded")
        for text in nvml.gpu_warnings(host["gpus"]):
            self.warn(Advice("host", "GPU", text))
        for text in load_warnings():
            self.warn(Advice("host", "load", text))
        if self.suite.min_repeats < MIN_DECIDING:
            self.warn(Advice("few repeats", self.suite.name, f"repeats is {self.suite.repeats}: {FEW_REPEATS}"))

    # -- what executors report ---------------------------------------------------------------

    def emit(self, kind: str, payload: Any, stream: str = "local") -> None:
        with self._lock:
            if kind == "record":
                self.record(payload, self._stream_run.get(stream, self.run_id))
            elif kind == "picture":
                self.save_picture(payload)
            elif kind == "cell":
                self.cell_started(payload, stream)
            elif kind == "cell_end":
                self.finish_cell(payload)
            elif kind == "loaded":
                self.writer.write({"type": "load", "run_id": self._stream_run.get(stream, self.run_id), **payload})
                self.observer.loaded(payload)
            elif kind == "node":
                self._stream_run[stream] = self._node_run_id(payload)
            elif kind == "note":  # something the executor had to work around: said, and kept in the file
                self.observer.note(str(payload))
                self.warn(Advice("workers", "worker start", str(payload)))

    def cell_started(self, cell_id: str, stream: str = "local") -> None:
        """The generations that follow on `stream` are this cell's (its first turn, or, in interleaved
        order, its next); a cell's checks wait for its "cell_end"."""
        self.observer.cell_started(self._cells[cell_id], self._position.get(cell_id, 0) + 1, self._total)

    def record(self, record: dict[str, Any], run_id: str | None = None) -> None:
        """A generation: its image saved beside the file, the line written, the observer told."""
        record["run_id"] = run_id or self.run_id
        record.setdefault("finished_at", utc_now())  # when it was recorded (UTC): a long sweep's timeline
        self._open_cells.setdefault(record["cell_id"], []).append(record)
        record.update(self._saved_pictures.pop((record["cell_id"], record.get("repeat")), {}))
        self.writer.write(record)
        self.outcome.records.append(record)
        self.observer.generation(record)

    def save_picture(self, picture: Picture) -> None:
        """A cell's picture, saved beside the results now; the record of its cell and repeat, which
        follows, names the files."""
        fields: dict[str, Any] = {}
        image = self.writer.save_image(picture.cell_id, picture.preview_png)
        if image is not None:
            fields["image"] = image
        if picture.full_png is not None:
            image = self.writer.save_image(picture.cell_id, picture.full_png, ".full.png")
            if image is not None:
                fields["image_full"] = image
                # what `score` checks before scoring: a picture replaced later is not the one generated
                fields["image_full_sha256"] = hashlib.sha256(picture.full_png).hexdigest()
        self._saved_pictures[(picture.cell_id, picture.repeat)] = fields

    def warn(self, advice: Advice, cell_id: str | None = None) -> None:
        self.outcome.warnings.append(advice)
        self.writer.write({"type": "warning", "run_id": self.run_id, "cell_id": cell_id, "kind": advice.kind,
                           "subject": advice.subject, "message": advice.message})

    # -- the end of a cell -------------------------------------------------------------------

    def finish_cell(self, cell_id: str) -> None:
        """Checks on a cell's repeats, stored with the results as soon as the cell ends."""
        kept = [r for r in self._open_cells.pop(cell_id, []) if r["status"] == "ok" and not r["warmup"]]
        records = [r for r in kept if not r.get("pilot")]
        if not records:
            return
        cell = records[0]["cell"]
        subject = f"{cell['model']} {cell['sampler']} {steps_text(cell['steps'])} {cell['resolution']}{_apart(cell)} ({cell_id})"
        ordered = sorted(records, key=lambda r: r["repeat"])
        pilot = [r["wall_s"] for r in sorted(kept, key=lambda r: r["repeat"]) if r.get("pilot")]
        for advice in check_repeats(subject, [r["wall_s"] for r in ordered], self.suite.warmup, pilot):
            # the suite asked for few: said once at the start, not again for every cell
            if advice.kind != "few repeats" or self.suite.min_repeats >= MIN_DECIDING:
                self.warn(advice, cell_id)
        for advice in check_throttling(subject, [r.get("telemetry") for r in ordered]):
            self.warn(advice, cell_id)
        for advice in check_noise(subject, ordered, os.cpu_count() or 1):
            self.warn(advice, cell_id)

    def finish_all(self) -> None:
        with self._lock:
            for cell_id in list(self._open_cells):
                self.finish_cell(cell_id)

    # -- after the last cell -----------------------------------------------------------------

    def score_pictures(self, checkpoint: str, earlier: list[dict[str, Any]] | None = None) -> int:
        """CLIP scores of this run's full-resolution pictures, as quality lines; returns how many.

        `earlier` are the lines of a resumed file: its pictures measured before the interruption are
        scored too, unless this checkpoint already scored them. Runs after every cell has been
        measured, in this process on the CPU, so the CLIP model never shares a process, a device or
        a memory meter with a measured generation. A checkpoint that cannot be loaded or cannot
        score is a warning (the measurements stand; `diffbench score` adds the scores later)."""
        from ..measure.clipscore import ClipError, ClipScorer, checkpoint_identity, score_generations

        base_dir = Path(self.suite.base_dir or ".")
        identity = checkpoint_identity(checkpoint, base_dir)
        done = {r["cell_id"] for r in earlier or () if r.get("type") == "quality" and r.get("checkpoint") == identity}
        records = [*(earlier or ()), *self.outcome.records]
        pictures = len({r["cell_id"] for r in records if r.get("image_full") and r["cell_id"] not in done})
        if not pictures:
            return 0
        self.observer.note(f"CLIP score of {pictures} picture(s) with {checkpoint} (on the CPU, after the run)")
        later = (f"the measurements stand: add the scores later with diffbench score {self.writer.path} "
                 "--clip CHECKPOINT")
        written, skipped = 0, []
        try:
            scorer = ClipScorer.load(checkpoint, base_dir)
            for line in score_generations(records, self.writer.path, scorer, done, skipped):
                self.writer.write(line)
                written += 1
        except ClipError as exc:
            self.warn(Advice("quality", "CLIP score", f"{exc}; {later}"))
        for why in skipped:
            self.warn(Advice("quality", "CLIP score", f"picture not scored: {why}"))
        self.observer.note(f"{written} CLIP score(s) stored; the report's 'Time against quality' and "
                           "compare --by recipe use them")
        return written

    def _node_run_id(self, node: dict[str, Any]) -> str:
        """Each cluster node's host gets a run line of its own, so every result keeps its host."""
        node_id = node["node_id"]
        if node_id not in self._node_run:
            self._node_run[node_id] = f"{self.run_id}-{node_id[:8]}"
            host = {**node["host"], "ray_node_id": node_id, "ray_resources": node.get("resources", {})}
            self.writer.write(run_line(self.suite, self._node_run[node_id], host, node.get("software", {}),
                                       self.executor, parent_run_id=self.run_id))
        return self._node_run[node_id]

