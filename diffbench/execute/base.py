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

from ..records import generation_record

# What a worker (or the executor on its behalf) reports, in order: "node" (a cluster node's
# host, once), "loaded" (a pipeline is ready), "cell" (a cell starts), "record" (a generation
# line, or a failure line), "done" / "fatal" (the worker ended).
MessageKind = Literal["node", "loaded", "cell", "record", "done", "fatal"]
Emit = Callable[..., None]  # emit(kind: MessageKind, payload, stream: str = "local")


@dataclass(frozen=True)
class CellWork:
    """One cell as a worker runs it. Plain data, pickled across the boundary to a worker process
    or a Ray task."""

    cell_id: str
    settings: dict[str, Any]  # resolved: what a results line stores as `cell`
    repeats: tuple[int, ...]  # the measured repeats still to run
    full_image: bool = False  # keep the first measured picture at full resolution (CLIP score)
    auto: dict[str, Any] | None = None  # repeats: auto's policy, with the cell's earlier walls


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


def blame(job: Job, finished: set[str], current: str | None, started_any: bool, status: str, reason: str,
          emit: Callable[[str, Any], None]) -> Job | None:
    """A worker died (or overran): record the failure on the cell it was running and return the
    cells still to run, for a fresh worker.

    The cell in progress gets the blame. If none had started (the worker died while loading),
    the first remaining cell does, so that a worker that always dies cannot loop forever; a
    worker that finished all its cells blames nobody.
    """
    remaining = [c for c in job.cells if c.cell_id not in finished]
    culprit = next((c for c in remaining if c.cell_id == current), None)
    if culprit is None and remaining and not started_any:
        culprit = remaining[0]
    if culprit is not None:
        if current != culprit.cell_id:
            emit("cell", culprit.cell_id)
        emit("record", generation_record(culprit.cell_id, culprit.settings, 0, False, status, reason))
        remaining = [c for c in remaining if c is not culprit]
    return job.remaining(remaining) if remaining else None
