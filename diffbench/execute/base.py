"""The executor contract: what the runner gives an executor (jobs), what it gets back (typed
messages through `emit`), and the one rule for blaming a cell when a worker dies.

Executors: LocalExecutor (worker processes on this host) and RayExecutor (Ray tasks on the
nodes of a cluster). Adding one means implementing `Executor` and reporting through `emit`;
see docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from ..contract.records import generation_record
from ..rules.repeats import AutoRepeats, SteadyWarmup

# What a worker (or the executor on its behalf) reports, in order: "node" (a cluster node's
# host, once), "loaded" (a pipeline is ready), "cell" (the generations that follow are this
# cell's: sent when a cell starts and, in interleaved order, at every switch back to it), "picture"
# (a cell's first measured picture, a `Picture`, just before its generation's record), "record"
# (a generation line, or a failure line), "cell_end" (a cell has all it will get), "done" /
# "fatal" (the worker ended).
MessageKind = Literal["node", "loaded", "cell", "picture", "record", "cell_end", "done", "fatal"]
Emit = Callable[..., None]  # emit(kind: MessageKind, payload, stream: str = "local")


@dataclass(frozen=True)
class Picture:
    """A cell's first measured picture, as PNG bytes: the parent saves it beside the results and
    the record of the same cell and repeat that follows names the files."""

    cell_id: str
    repeat: int
    preview_png: bytes  # a thumbnail, or an animated preview of a clip
    full_png: bytes | None = None  # full resolution, for the CLIP score after the run


@dataclass(frozen=True)
class AutoWork:
    """repeats: auto for one cell: the suite's stopping rule, and the wall times of the cell's
    generations already recorded (a resumed run's, or those before a worker was restarted)."""

    rule: AutoRepeats
    previous_walls: tuple[float, ...] = ()


@dataclass(frozen=True)
class CellWork:
    """One cell as a worker runs it. Plain data, pickled across the boundary to a worker process
    or a Ray task."""

    cell_id: str
    settings: dict[str, Any]  # resolved: what a results line stores as `cell`
    repeats: tuple[int, ...]  # the measured repeats still to run
    full_image: bool = False  # keep the first measured picture at full resolution (CLIP score)
    auto: AutoWork | None = None  # repeats: auto (None: a fixed count)

    def without(self, recorded: set[int], walls: list[float]) -> CellWork:
        """This cell less the repeats already recorded (their wall times joining auto's earlier ones)."""
        auto = (dataclasses.replace(self.auto, previous_walls=(*self.auto.previous_walls, *walls))
                if self.auto else None)
        return dataclasses.replace(self, repeats=tuple(r for r in self.repeats if r not in recorded), auto=auto)


@dataclass(frozen=True)
class Job:
    """The cells of one load group, with what the worker needs to run them. The worker receives
    the Job itself (a worker process and a Ray task alike)."""

    model: dict[str, Any]
    base_dir: str
    warmup: int
    cells: list[CellWork]
    timeout_s: float | None = None
    label: str = ""
    placed_by_cluster: bool = False  # the cluster chose the node by the cells' gpu setting
    parent_pid: int | None = None  # the run's process: a local worker dies with it
    # the per-cell axes' worker modules, found from the declarations here (a worker process or a
    # node may not have an axis that was added at run time)
    cell_axes: tuple[str, ...] = field(default_factory=lambda: _worker_modules(at_load=False))
    load_axes: tuple[str, ...] = field(default_factory=lambda: _worker_modules(at_load=True))
    # "interleaved": the cells' measured repeats take turns, round by round (execute/order.py);
    # "blocked": each cell's repeats one after another
    order: str = "interleaved"
    order_seed: int = 0
    warmup_steady: SteadyWarmup | None = None  # warm up until two agree (suite field)

    @property
    def device(self) -> str:
        return str(self.cells[0].settings["device"]) if self.cells else "auto"

    def remaining(self, cells: list[CellWork]) -> Job:
        return dataclasses.replace(self, cells=cells)


class Executor(Protocol):
    """Runs jobs somewhere and reports every message through the `emit` it was built with.

    `places_cells`: the executor chooses the machine of each cell by its gpu setting (a cluster),
    so this host's devices do not decide what can run, and a resume counts what any host did."""

    places_cells: ClassVar[bool]
    stop_requested: bool

    def run(self, jobs: list[Job]) -> None:
        """Run every job; return when all are done, failed, or a stop was requested."""

    def request_stop(self) -> None:
        """Stop after the generation in progress is recorded (the first Ctrl-C)."""

    def request_abort(self) -> None:
        """Stop as soon as possible, the generation in progress unrecorded (SIGTERM, SIGHUP)."""

    def stop(self) -> None:
        """Kill whatever still runs, now."""


def _worker_modules(at_load: bool) -> tuple[str, ...]:
    from .axes import worker_modules

    return worker_modules(at_load)


@dataclass
class JobProgress:
    """What a job's worker has reported so far, read from its messages: the cell it is on, the cells
    it finished, each cell's recorded repeats, and the seconds each cell has had (in interleaved
    order a cell's time limit counts only its own turns)."""

    job: Job
    current: str | None = None
    finished: set[str] = field(default_factory=set)
    recorded: dict[str, set[int]] = field(default_factory=dict)
    walls: dict[str, list[float]] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)
    switched_at: float = 0.0

    def observe(self, kind: str, payload: Any, now: float) -> None:
        if kind in ("cell", "cell_end") and self.current is not None:
            self.spent[self.current] = self.spent.get(self.current, 0.0) + now - self.switched_at
        if kind == "cell":
            self.current, self.switched_at = str(payload), now
        elif kind == "cell_end":
            self.finished.add(str(payload))
            self.current = None if self.current == payload else self.current
        elif kind == "record" and not payload.get("warmup"):
            cell_id = payload["cell_id"]
            self.recorded.setdefault(cell_id, set()).add(int(payload["repeat"]))
            if payload.get("status") == "ok" and payload.get("wall_s") is not None:
                self.walls.setdefault(cell_id, []).append(float(payload["wall_s"]))

    def current_cell_s(self, now: float) -> float:
        """Seconds the cell in progress has had so far, over all its turns."""
        if self.current is None:
            return 0.0
        return self.spent.get(self.current, 0.0) + now - self.switched_at


def blame(progress: JobProgress, started_any: bool, status: str, reason: str,
          emit: Callable[[str, Any], None]) -> Job | None:
    """A worker died (or overran): record the failure on the cell it was running and return the
    cells still to run, each less the repeats it recorded, for a fresh worker.

    The cell in progress gets the blame. If none had started (the worker died while loading),
    the first remaining cell does, so that a worker that always dies cannot loop forever; a
    worker that finished all its cells blames nobody.
    """
    job, current = progress.job, progress.current
    remaining = [c.without(progress.recorded.get(c.cell_id, set()), progress.walls.get(c.cell_id, []))
                 for c in job.cells if c.cell_id not in progress.finished]
    remaining = [c for c in remaining if c.repeats]
    culprit = next((c for c in remaining if c.cell_id == current), None)
    if culprit is None and remaining and not started_any and not progress.recorded:
        culprit = remaining[0]
    if culprit is not None:
        if current != culprit.cell_id:
            emit("cell", culprit.cell_id)
        emit("record", generation_record(culprit.cell_id, culprit.settings, 0, False, status, reason))
        emit("cell_end", culprit.cell_id)
        remaining = [c for c in remaining if c is not culprit]
    return job.remaining(remaining) if remaining else None
