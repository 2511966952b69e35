"""Ray executor: each pipeline load runs as a task on a cluster node that has the GPU its cells name.

Nodes declare their GPU as a custom resource, `gpu_<name>` (lower case, non-alphanumerics as
underscores: "RTX 4090" -> gpu_rtx_4090), with quantity 1 per GPU:

    ray start --address=HEAD:6379 --num-gpus=1 --resources='{"gpu_rtx_4090": 1}'

A task asks for one unit of its GPU's resource, so a GPU runs one generation at a time. The
task's worker streams its measurements back through a Ray queue; the driver alone writes the
results file, with a run line for each node's host. A node lost mid-cell gives that cell
"crashed", and the rest of its cells go to another node of the same kind, or, where none is
left, are recorded as crashed with that reason.
"""

from __future__ import annotations

import logging
import os
import queue as stdlib_queue
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..contract.results import generation_record
from ..errors import one_line
from .base import CellWork, Job, JobProgress, blame

POLL_S = 0.1
LIVENESS_S = 2.0  # how often to check that a waiting task still has a node that can run it
PASSED_ENV = ("DIFFBENCH_", "HF_", "TRANSFORMERS_", "HUGGINGFACE_")


def gpu_resource(name: str) -> str:
    """The custom resource a node declares for a GPU type: 'RTX 4090' -> 'gpu_rtx_4090'."""
    return "gpu_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


class _QueueConnection:
    """What the worker sends through, tagged with the job it belongs to."""

    def __init__(self, queue: Any, job_key: int) -> None:
        self.queue = queue
        self.job_key = job_key

    def send(self, message: tuple[str, Any]) -> None:
        self.queue.put((self.job_key, *message))


def run_job_on_node(job: Job, queue: Any, job_key: int) -> None:
    """The Ray task: describe this node, then run the job's cells with the ordinary worker."""
    import ray

    from ..hardware.sysinfo import host_description, software_description
    from ..models.quiet import quiet_libraries
    from .worker import Worker

    quiet_libraries()
    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    resources: dict[str, Any] = next((n["Resources"] for n in nodes if n["NodeID"] == node_id), {})
    connection = _QueueConnection(queue, job_key)
    connection.send(("node", {"node_id": node_id, "host": host_description(), "software": software_description(),
                              "resources": {k: v for k, v in resources.items() if not k.startswith("node:")}}))
    Worker(connection, job).run()
    connection.send(("done", None))


@dataclass
class _Running:
    job: Job
    ref: Any
    progress: JobProgress
    done: bool = False


class RayExecutor:
    """Runs jobs as Ray tasks; the driver (this process) receives every measurement and writes it."""

    places_cells = True  # each cell goes to a node with the GPU its gpu setting names

    def __init__(self, emit: Callable[..., None], address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError("the Ray executor needs Ray: pip install 'diffbench[ray]'") from None
        self.ray: Any = ray  # the module, used only through its public calls
        self.emit = emit
        self.address = address
        self.stop_requested = False
        self._running: dict[int, _Running] = {}

    def _connect(self) -> None:
        if self.ray.is_initialized():
            return
        if self.address and self.address != "auto":
            _check_reachable(self.address)
        env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)}
        try:
            self.ray.init(address=self.address or "auto", runtime_env={"env_vars": env}, log_to_driver=False,
                          logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = one_line(self.address) if self.address else "the address `ray start` recorded on this host"
            raise RuntimeError(f"cannot connect to a Ray cluster at {where}: "
                               f"{one_line(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}") from None

    def _available(self) -> set[str]:
        """Resources declared by nodes that are alive now."""
        return {name for node in self.ray.nodes() if node.get("Alive") for name in node.get("Resources", {})}

    def _make_queue(self) -> Any:
        """The message queue lives on the driver's node, so losing any other node loses no message."""
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = self.ray.get_runtime_context().get_node_id()
        return Queue(actor_options={"num_cpus": 0,
                                    "scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=False)})

    def _submit(self, key: int, job: Job, queue: Any) -> _Running | None:
        gpu = job.cells[0].settings.get("gpu")
        resources: dict[str, float] = {}
        if gpu:
            resource = gpu_resource(gpu)
            if resource not in self._available():
                self._fail_cells(job, job.cells, "not_applicable",
                                 f"no node in the Ray cluster declares the resource '{resource}' for gpu '{gpu}'")
                return None
            resources[resource] = 1
        device = job.device
        gpus = 1 if device.startswith("cuda") else 0
        task = self.ray.remote(run_job_on_node).options(num_cpus=1, num_gpus=gpus, resources=resources,
                                                       max_retries=0)
        return _Running(job, task.remote(job, queue, key), JobProgress(job))

    def _fail_cells(self, job: Job, cells: list[CellWork], status: str, reason: str, stream: str = "ray") -> None:
        for cell in cells:
            self.emit("cell", cell.cell_id, stream)
            self.emit("record", generation_record(cell.cell_id, cell.settings, 0, False, status, reason), stream)
            self.emit("cell_end", cell.cell_id, stream)

    def run(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        self._connect()
        queue = self._make_queue()
        next_key = len(jobs)
        for key, job in enumerate(jobs):
            running = self._submit(key, job, queue)
            if running is not None:
                self._running[key] = running
        last_liveness = time.monotonic()
        while self._running:
            self._drain(queue)
            if self.stop_requested:
                self.stop()
                return
            if time.monotonic() - last_liveness > LIVENESS_S:
                self._fail_stranded()
                last_liveness = time.monotonic()
            for key, running in list(self._running.items()):
                limit = running.job.timeout_s
                if limit and running.progress.current_cell_s(time.monotonic()) > limit:
                    self.ray.cancel(running.ref, force=True)
                    leftover = self._after_failure(key, running, "timeout",
                                                   f"cell exceeded its time limit of {limit:g} s and was stopped")
                    next_key = self._resubmit(leftover, queue, next_key)
                    continue
                ready, _ = self.ray.wait([running.ref], timeout=0)
                if not ready:
                    continue
                self._drain(queue)  # what the task sent before it ended
                try:
                    self.ray.get(running.ref)
                    del self._running[key]
                except Exception as exc:  # node died, worker crashed, task cancelled
                    reason = f"the Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                    leftover = self._after_failure(key, running, "crashed", reason)
                    next_key = self._resubmit(leftover, queue, next_key)
            time.sleep(POLL_S)
        self._drain(queue)

    def _drain(self, queue: Any) -> None:
        while True:
            try:
                key, kind, payload = queue.get_nowait()
            except stdlib_queue.Empty:  # ray.util.queue.Empty derives from it
                return
            running = self._running.get(key)
            stream = f"ray-{key}"
            if running is not None:
                running.progress.observe(kind, payload, time.monotonic())
            if kind == "done":
                if running is not None:
                    running.done = True
                continue
            if kind == "fatal":
                continue  # the task's own exception reaches us through ray.get
            self.emit(kind, payload, stream)
            if kind == "record" and self.stop_requested:
                return

    def _after_failure(self, key: int, running: _Running, status: str, reason: str) -> Job | None:
        del self._running[key]
        stream = f"ray-{key}"
        return blame(running.progress, running.done, status, reason,
                     lambda kind, payload: self.emit(kind, payload, stream))

    def _fail_stranded(self) -> None:
        """Tasks waiting for a GPU type that no live node has any more would wait forever."""
        alive = self._available()
        for key, running in list(self._running.items()):
            gpu = running.job.cells[0].settings.get("gpu")
            if gpu and gpu_resource(gpu) not in alive and running.progress.current is None \
                    and not running.progress.recorded:
                self.ray.cancel(running.ref, force=True)
                del self._running[key]
                self._fail_cells(running.job, running.job.cells, "crashed",
                                 f"no node with gpu '{gpu}' remains in the Ray cluster")

    def _resubmit(self, job: Job | None, queue: Any, next_key: int) -> int:
        if job is None or self.stop_requested:
            return next_key
        gpu = job.cells[0].settings.get("gpu")
        if gpu and gpu_resource(gpu) not in self._available():
            self._fail_cells(job, job.cells, "crashed", f"no node with gpu '{gpu}' remains in the Ray cluster")
            return next_key
        running = self._submit(next_key, job, queue)
        if running is not None:
            self._running[next_key] = running
        return next_key + 1

    def request_stop(self) -> None:
        self.stop_requested = True

    def request_abort(self) -> None:
        """SIGTERM, SIGHUP: the driver loop cancels every task at its next turn."""
        self.stop_requested = True

    def stop(self) -> None:
        for running in self._running.values():
            self.ray.cancel(running.ref, force=True)
        self._running.clear()


CONNECT_TIMEOUT_S = 5.0


def _check_reachable(address: str) -> None:
    """A HOST:PORT that answers nothing is one line now, not minutes of Ray's retry warnings."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RuntimeError(f"--address {one_line(address)!r}: expected HOST:PORT of a Ray head node (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RuntimeError(f"cannot reach a Ray cluster at {one_line(address)}: {exc.strerror or type(exc).__name__} "
                           f"within {CONNECT_TIMEOUT_S:g} s (is `ray start --head` running there?)") from None
