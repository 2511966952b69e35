"""Local executor: one fresh worker process per pipeline load; the parent writes every result.

Workers start warm (execute/processes.py): forked from a server that has imported torch and
diffusers once, or spawned where that is not available.

A worker that dies (signal, abnormal exit) has its current cell recorded as crashed and a
fresh worker takes the remaining cells; a cell past the suite's time limit is killed and
recorded as timeout. Nothing already measured is lost: the parent wrote it as it arrived.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker
from typing import Any

from .base import Job, JobProgress, blame
from .processes import ensure_server, prepare_start, spawn_from_now_on, worker_context
from .worker import PARENT_ONLY_SIGNALS, worker_main

POLL_S = 0.05


def partition_by_gpu(jobs: list[Job]) -> list[list[Job]]:
    """Jobs grouped by the CUDA device they name, so that each GPU gets its own worker in parallel.

    Only when every job names an explicit device (cuda:0, cuda:1, ...) and there are several:
    anything else ("auto", "cuda", "cpu") shares one queue, in plan order.
    """
    devices = {job.device for job in jobs}
    if len(devices) < 2 or not all(d.startswith("cuda:") for d in devices):
        return [jobs] if jobs else []
    return [[job for job in jobs if job.device == device] for device in sorted(devices)]


def _death_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "the worker process vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the worker process was killed by {name}"
    return f"the worker process exited with code {exitcode}"


@contextmanager
def _signals_held(signals: tuple[int, ...]) -> Iterator[None]:
    """Hold `signals` back from this thread while it starts a worker.

    A Ctrl-C reaches the whole process group. Before the worker has imported its way to
    ignoring it (a second or more), it would die of it with a traceback. A blocked signal stays
    blocked across fork and exec, so the worker starts deaf to it, and its own SIG_IGN later
    discards any that is pending. The parent loses nothing: what arrived meanwhile is delivered
    when this returns."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    # Start the resource tracker now if it is not running: starting it unblocks SIGINT
    # (multiprocessing.resource_tracker.ensure_running), which would undo the hold below.
    resource_tracker.ensure_running()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


class LocalExecutor:
    """Runs jobs in worker processes: one after another, or one queue per GPU in parallel."""

    places_cells = False  # every cell runs on this host: its devices decide what can run

    def __init__(self, emit: Callable[..., None]) -> None:
        self.emit = emit  # (kind, payload, stream): kind "record" | "cell" | "loaded"
        self.stop_requested = False
        self.abort_requested = False
        self._lanes: list[_Lane] = []

    def run(self, jobs: list[Job]) -> None:
        groups = partition_by_gpu(jobs)
        self._lanes = [_Lane(self, group[0].device if len(groups) > 1 else "local") for group in groups]
        if len(groups) == 1:
            self._lanes[0].run(groups[0])
            return
        threads = [threading.Thread(target=lane.run, args=(group,), name=f"diffbench-{lane.stream}")
                   for lane, group in zip(self._lanes, groups)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def request_stop(self) -> None:
        """Stop after the generation in progress is recorded (first Ctrl-C)."""
        self.stop_requested = True

    def request_abort(self) -> None:
        """Stop now, leaving the generation in progress unrecorded (SIGTERM, SIGHUP): the loop that
        relays the workers' messages kills them at its next poll, from the main thread."""
        self.stop_requested = self.abort_requested = True

    def stop(self) -> None:
        """Kill the running workers now (second Ctrl-C, or an error in the parent)."""
        for lane in self._lanes:
            lane.stop()


class _Lane:
    """One queue of jobs, one worker process at a time (one per GPU when GPUs run in parallel)."""

    def __init__(self, executor: LocalExecutor, stream: str) -> None:
        self.executor = executor
        self.stream = stream
        self._context = worker_context()
        self.process: Any = None

    @property
    def stop_requested(self) -> bool:
        return self.executor.stop_requested

    def emit(self, kind: str, payload: Any) -> None:
        self.executor.emit(kind, payload, self.stream)

    def run(self, jobs: list[Job]) -> None:
        queue = list(jobs)
        while queue and not self.stop_requested:
            job = queue.pop(0)
            leftover = self._run_attempt(job)
            if leftover is not None and leftover.cells:
                queue.insert(0, leftover)

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(5)

    def _run_attempt(self, job: Job) -> Job | None:
        """Run a job in a fresh worker; return the cells left to run if it died or timed out."""
        parent_conn, child_conn = self._context.Pipe(duplex=False)
        own = dataclasses.replace(job, parent_pid=os.getpid())
        self.process = self._context.Process(target=worker_main, args=(child_conn, own), daemon=True)
        forked = self._context.get_start_method() == "forkserver"
        try:
            with _signals_held(PARENT_ONLY_SIGNALS):  # a fork server or spawned worker started here inherits the hold
                prepare_start(self._context)
                if forked:
                    ensure_server()
                else:
                    self.process.start()
            if forked:
                # not held: asking the server for a worker waits until its imports are done (seconds),
                # and a second Ctrl-C must stop the run then, not after them; the worker is the
                # server's fork, so it never sees this process's signal mask anyway
                self.process.start()
        except (EOFError, ConnectionError, OSError) as exc:
            child_conn.close()
            parent_conn.close()
            if self._context.get_start_method() != "forkserver":
                raise
            # the fork server died (in its imports, killed, out of memory): spawn this job and every later one
            self.emit("note", f"the fork server that starts workers died ({type(exc).__name__}: {exc}); "
                              "workers are spawned from now on")
            self._context = spawn_from_now_on()
            return job
        child_conn.close()
        attempt = JobProgress(job)
        try:
            outcome = self._pump(attempt, parent_conn)
        finally:
            parent_conn.close()
        if outcome == "done":
            self.process.join()
            return None
        if outcome == "respawn":
            self.process.join(5)
            self._context = spawn_from_now_on()
            return job
        self.stop()
        if outcome == "stopped":
            return None
        return self._after_failure(attempt, outcome)

    def _pump(self, attempt: JobProgress, conn: Any) -> str:
        """Relay messages until the worker finishes ('done'), dies ('died'), overruns ('timeout')
        or a stop was requested ('stopped')."""
        while True:
            if self.executor.abort_requested or (self.stop_requested and attempt.current is None):
                return "stopped"
            if conn.poll(POLL_S):
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    return "died"
                if kind == "done":
                    return "done"
                if kind == "fatal":
                    self._fatal = payload
                    return "fatal"
                if kind == "respawn":  # forked where CUDA cannot work: nothing of the job ran
                    return "respawn"
                attempt.observe(kind, payload, time.monotonic())
                self.emit(kind, payload)
                if kind == "record" and self.stop_requested:
                    return "stopped"
                continue
            if not self.process.is_alive() and not conn.poll(0):
                return "died"
            limit = attempt.job.timeout_s
            if limit and attempt.current_cell_s(time.monotonic()) > limit:
                return "timeout"

    def _after_failure(self, attempt: JobProgress, outcome: str) -> Job | None:
        job = attempt.job
        if outcome == "timeout":
            status, reason = "timeout", f"cell exceeded its time limit of {job.timeout_s:g} s and was stopped"
        elif outcome == "fatal":
            status, reason = "crashed", f"worker failed: {getattr(self, '_fatal', '')[-400:]}"
        else:
            status, reason = "crashed", _death_reason(self.process.exitcode)
        return blame(attempt, False, status, reason, self.emit)
