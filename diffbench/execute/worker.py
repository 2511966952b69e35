"""The worker process: loads one pipeline, runs its cells, sends each measurement to the parent.

The parent alone writes results. The worker talks through a multiprocessing Connection:
("loaded", info) after loading, ("cell", cell_id) as each cell starts, ("picture", Picture) just
before the record of a cell's first measured generation, ("record", record) after each generation,
("done", None) at the end; ("respawn", why) instead of anything when it was forked from a server
that cannot give it CUDA (the parent then spawns it).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

from ..contract.results import generation_record
from ..models.quiet import quiet_libraries
from ..rules.repeats import SteadyWarmup
from .base import AutoWork, CellWork, Job, Picture

TELEMETRY_HZ = 20.0  # NVML power and clock samples a second during a generation


def _short_error(exc: BaseException) -> str:
    from ..errors import whole_sentences

    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return whole_sentences(first, 500)


def _backend_unavailable(exc: BaseException, settings: dict[str, Any]) -> bool:
    """An explicitly chosen attention backend that this device cannot run (e.g. cuDNN attention on a
    CPU): the setting does not apply here, which is an answer, not a failure of the run."""
    return settings.get("attention") not in {None, "default"} and \
        "no viable backend for scaled_dot_product_attention" in str(exc).lower()


# What allocators say when memory runs out: CUDA's "out of memory", and on the CPU torch's
# DefaultCPUAllocator ("can't allocate memory", errno 12) or a plain MemoryError.
OOM_TEXTS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def _is_oom(exc: BaseException) -> bool:
    import torch

    text = str(exc).lower()
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or any(t in text for t in OOM_TEXTS)


class Worker:
    """Runs the cells of one load group (same model, device, dtype, offload, attention, compile)."""

    def __init__(self, conn: Any, job: Job) -> None:
        self.conn = conn
        self.job = job
        self.cells: list[CellWork] = list(job.cells)
        self.applied: dict[str, Any] = {}  # per-cell axis -> what it left applied on the pipeline now
        self.on_pipe: str | None = None  # the cell whose per-cell settings are applied now

    def send(self, kind: str, payload: Any) -> None:
        self.conn.send((kind, payload))

    def fail_all(self, status: str, reason: str, cells: list[CellWork] | None = None) -> None:
        """Record each cell's failure; the caller sends its "cell_end"."""
        for cell in cells if cells is not None else self.cells:
            self.send("cell", cell.cell_id)
            self.send("record", generation_record(cell.cell_id, cell.settings, 0, False, status, reason))

    def fail_and_end(self, status: str, reason: str, cells: list[CellWork] | None = None) -> None:
        self.fail_all(status, reason, cells)
        for cell in cells if cells is not None else self.cells:
            self.send("cell_end", cell.cell_id)

    def run(self) -> None:
        from .configure import NotApplicable, resolve_runtime

        first = self.cells[0]
        try:
            runtime = resolve_runtime(first.settings, first.settings["family"], self.job.placed_by_cluster)
        except NotApplicable as exc:
            self.fail_and_end("not_applicable", str(exc))
            return
        self.cells = self._within_memory(runtime)
        if not self.cells:
            return
        try:
            pipe, probe, meters, base_config, load_s = self._load(runtime)
        except NotApplicable as exc:
            self.fail_and_end("not_applicable", str(exc))
            return
        except Exception as exc:  # a model that fails to load marks its cells, and the run goes on
            status = "oom" if _is_oom(exc) else "error"
            self.fail_and_end(status, f"model failed to load: {_short_error(exc)}")
            return
        self.send("loaded", {"load_s": load_s, "import_s": getattr(self, "import_s", None),
                             "runtime": runtime.describe()})
        self._run_cells(pipe, probe, meters, base_config, runtime)
        probe.remove()

    def _within_memory(self, runtime: Any) -> list[CellWork]:
        """The cells whose memory floor fits the device torch gave (the floor plan checks, here
        against the card itself); the others are recorded not_applicable before anything loads."""
        from ..rules.applicability import memory_fit_problem

        kept = []
        for cell in self.cells:
            settings = {**cell.settings, "dtype": runtime.dtype_name}
            problem = memory_fit_problem(settings, runtime.device.type, runtime.total_memory)
            if problem:
                self.fail_and_end("not_applicable", problem, [cell])
            else:
                kept.append(cell)
        return kept

    def _load(self, runtime: Any) -> tuple[Any, Any, Any, dict[str, Any], float]:
        import torch

        from ..hardware import nvml
        from ..measure.clocks import clock_for
        from ..measure.memory import HostPeak, TorchCudaPeak
        from ..measure.probe import PipelineProbe
        from ..measure.telemetry import TelemetrySampler
        from .axes import Loading
        from .axes import module as axis_module
        from .generation import Meters

        settings = self.cells[0].settings
        imports_started = time.perf_counter()
        import diffusers

        diffusers.DiffusionPipeline  # noqa: B018 - resolves the lazy module: its import is not load time
        self.import_s = time.perf_counter() - imports_started
        started = time.perf_counter()
        loading = Loading(settings, runtime, self.job.model, self.job.base_dir)
        # the load-time axes in their load order: the card capped, the pipeline built, its task,
        # quantization, placement, attention, compile, then any added from outside (execute/axes)
        for name in self.job.load_axes:
            at_load = getattr(axis_module(name), "at_load", None)
            if at_load is None:
                raise TypeError(f"load-time axis module '{name}' defines no at_load(loading) (execute/axes)")
            runtime.axes.update(at_load(loading) or {})
        pipe = loading.pipe
        pipe.set_progress_bar_config(disable=True)
        if runtime.device.type == "cuda":
            torch.cuda.empty_cache()  # loading transients must not count as the generations' reserved memory
        load_s = time.perf_counter() - started
        meters = Meters(HostPeak())
        if runtime.device.type == "cpu":
            from ..measure.rapl import RaplCounter

            rapl = RaplCounter()
            meters.rapl = rapl if rapl.available else None
        if runtime.device.type == "cuda":
            meters.cuda = TorchCudaPeak(runtime.device)
            handle = nvml.handle_for_uuid(runtime.gpu_uuid or "")
            if handle is not None:
                meters.telemetry = TelemetrySampler(nvml.nvml(), handle, TELEMETRY_HZ)
        probe = PipelineProbe(pipe, clock_for(runtime.device))
        probe.memory = meters.cuda  # the VAE decode's own VRAM peak (CUDA only)
        return pipe, probe, meters, dict(pipe.scheduler.config), load_s

    def _run_cells(self, pipe: Any, probe: Any, meters: Any, base_config: dict[str, Any], runtime: Any) -> None:
        """Every cell's warm-ups at its first turn, then its measured repeats: one cell's after
        another (blocked), or in rounds in which each cell still measuring takes one turn
        (interleaved), so that a GPU's drift and clock states fall on every cell alike."""
        from .order import round_group, turn_groups, turns

        runs = [_CellRun(self, cell, pipe, probe, meters, base_config, runtime) for cell in self.cells]
        if self.job.order != "interleaved":
            for run in runs:
                if run.begin():
                    while run.measure_next():
                        pass
                self.send("cell_end", run.cell.cell_id)
            return
        for group in turn_groups(runs, bool(self.cells[0].settings.get("compile"))):
            active = []
            for run in group:
                if run.begin():
                    active.append(run)
                else:
                    self.send("cell_end", run.cell.cell_id)
            group_id = round_group([run.cell.cell_id for run in group])
            for round_index, run in turns(active, self.job.order_seed):
                if run.ended:
                    continue
                if not run.measure_next((group_id, round_index)):
                    self.send("cell_end", run.cell.cell_id)

    def _switch_to(self, run: _CellRun) -> bool:
        """Tell the parent that the generations that follow are `run`'s, and leave its per-cell
        settings applied (another cell's may have replaced them); False when they do not apply."""
        self.send("cell", run.cell.cell_id)
        if self.on_pipe == run.cell.cell_id:
            return True
        from .axes import Loaded
        from .axes import module as axis_module
        from .configure import NotApplicable

        loaded = Loaded(self.job.base_dir, run.base_config)
        for name in self.job.cell_axes:  # the per-cell axes, in declaration order (execute/axes)
            try:
                done = axis_module(name).apply(run.pipe, run.cell.settings, self.applied.get(name), loaded)
            except NotApplicable as exc:
                self.applied[name] = None  # a module that raises leaves nothing applied
                self.on_pipe = None
                self.fail_all("not_applicable", str(exc), [run.cell])
                return False
            self.applied[name] = done.state
            if run.context is None:  # what the cell's lines say of its settings: from its first turn
                run.described.update(done.runtime)
                run.fields_of_axes.update(done.context)
        self.on_pipe = run.cell.cell_id
        return True

    def _count_work(self, pipe: Any, settings: dict[str, Any]) -> float | None:
        """One extra generation, untimed and unrecorded, with the work counter's hooks on: the
        hooks cost time, so they never sit in a measured or warm-up generation."""
        from ..measure.probe import denoiser_of
        from ..measure.work import WorkCounter
        from .configure import call_arguments

        counter = WorkCounter(denoiser_of(pipe))
        try:
            pipe(**call_arguments(pipe, settings, self.job.base_dir))
        finally:
            counter.remove()
        return counter.work()


class _CellRun:
    """One cell's generations on a loaded pipeline, taken in turns (one turn for the whole cell in
    blocked order, one per round in interleaved order)."""

    def __init__(self, worker: Worker, cell: CellWork, pipe: Any, probe: Any, meters: Any,
                 base_config: dict[str, Any], runtime: Any) -> None:
        self.worker, self.cell, self.pipe, self.probe, self.meters = worker, cell, pipe, probe, meters
        self.base_config, self.runtime = base_config, runtime
        self.described: dict[str, Any] = runtime.describe()
        self.fields_of_axes: dict[str, Any] = {}
        self.context: dict[str, Any] | None = None  # fields of every line of this cell, set at its first turn
        self.auto = _AutoRule(cell.auto)
        self.pending = list(cell.repeats)
        self.image_sent = False
        self.ended = False

    def begin(self) -> bool:
        """The cell's first turn: its settings applied, the work a step cache lets run counted, its
        warm-ups run. False when the cell ended there."""
        from ..rules import tasks
        from ..rules.families import family

        if not self.worker._switch_to(self):
            return self._end()
        settings = self.cell.settings
        context: dict[str, Any] = {"runtime": self.described, "requested_steps": settings["steps"],
                                   **self.fields_of_axes}
        if settings.get("task") in tasks.STRENGTH_TASKS:
            context["effective_steps"] = tasks.effective_steps(
                settings["steps"], settings["strength"], family(settings["family"]).strength_rounding)
        self.context = context
        if self.worker.applied.get("cache") is not None:  # how much of the denoiser the cache lets run: counted untimed
            try:
                context["denoiser_work"] = self.worker._count_work(self.pipe, settings)
            except Exception as exc:  # a cache that fails here would fail the same way measured
                self.worker.send("record", generation_record(self.cell.cell_id, settings, 0, False,
                                                             "oom" if _is_oom(exc) else "error",
                                                             f"counting the denoiser work: {_short_error(exc)}",
                                                             **context))
                return self._end()
        walls: list[float] = []
        steady = self.worker.job.warmup_steady
        while len(walls) < self.worker.job.warmup or (steady and not warmed_up(walls, steady)):
            wall = self._generate(True, len(walls))
            if wall is None:
                return self._end()
            walls.append(wall)
        return bool(self.pending) or self._end()

    def measure_next(self, in_round: tuple[str, int] | None = None) -> bool:
        """One measured repeat (the next turn); False when the cell has all it will get."""
        if not self.pending:
            return self._end()
        if not self.worker._switch_to(self):
            return self._end()
        repeat = self.pending.pop(0)
        if self._generate(False, repeat, in_round) is None:
            return self._end()
        return bool(self.pending) or self._end()

    def _end(self) -> bool:
        self.ended = True
        return False

    def _generate(self, warmup: bool, repeat: int, in_round: tuple[str, int] | None = None) -> float | None:
        """One generation, recorded; its wall time, or None when the cell is over (a failure, or
        repeats: auto has enough)."""
        from ..measure.compilation import compile_fields, compile_state
        from ..measure.flops import count_call_flops
        from ..measure.probe import denoiser_of
        from ..rules import tasks
        from .configure import call_arguments
        from .generation import full_png, measure_generation, preview_png, thumbnail_png

        settings, cell_id, probe, meters = self.cell.settings, self.cell.cell_id, self.probe, self.meters
        context = self.context or {}
        send = self.worker.send
        # the first generation of each cell keeps its denoiser inputs for the FLOP count
        probe.capture = "flops_per_denoiser_call" not in context
        compiled_before = compile_state() if settings.get("compile") else None
        try:
            measured, images = measure_generation(self.pipe, probe, meters,
                                                  call_arguments(self.pipe, settings, self.worker.job.base_dir),
                                                  keep_trace=not warmup and not self.image_sent)
        except Exception as exc:
            probe.capture, probe.captured = False, None  # drop references to this generation's tensors
            oom = _is_oom(exc)
            extra: dict[str, Any] = {}
            if oom and meters.cuda is not None:
                import torch

                extra["vram_in_use_bytes"] = int(torch.cuda.memory_allocated(self.runtime.device))
            status = "oom" if oom else ("not_applicable" if _backend_unavailable(exc, settings) else "error")
            reason = _short_error(exc)
            if status == "not_applicable":
                reason = f"attention backend '{settings['attention']}' cannot run on {self.runtime.device}: {reason}"
            send("record", generation_record(
                cell_id, settings, repeat, warmup, status, reason,
                **context, **extra, traceback=None if status != "error" else traceback.format_exc(limit=8)))
            del exc
            gc.collect()
            if self.runtime.device.type == "cuda":
                import torch

                torch.cuda.empty_cache()
            return None  # the cell's remaining repeats would fail the same way
        probe.capture = False
        if measured.latents_finite is False:
            # Timed, but what it made is blank: never an "ok" figure to compare or recommend.
            send("record", generation_record(
                cell_id, settings, repeat, warmup, "error",
                f"the denoiser's output holds NaN or infinite values, so the picture is blank: an overflow "
                f"in {context['runtime'].get('dtype')} (quantize {settings.get('quantize') or 'none'}); bf16 usually "
                f"avoids it", **context))
            return None  # the cell's remaining repeats would do the same
        fields = measured.fields()
        if settings.get("compile"):  # outside the timed region: what compiling cost inside it
            fields.update(compile_fields(compiled_before))
        if meters.telemetry is not None:  # outside the timed region: who else is on the GPU
            from ..hardware import nvml

            fields["gpu_other_processes"] = nvml.processes_on(meters.telemetry.handle)
        if probe.captured is not None:  # once per cell, after the timed region
            context["flops_per_denoiser_call"] = count_call_flops(denoiser_of(self.pipe), *probe.captured)
            probe.captured = None
        video = settings.get("task") in tasks.VIDEO_TASKS
        if video:
            fields["video_frames"] = int(len(images[0]))
        if in_round is not None and not warmup:  # interleaved: which turns were neighbours in time
            fields["round_group"], fields["round"] = in_round
        record = generation_record(cell_id, settings, repeat, warmup, "ok", **context, **fields)
        if not warmup and not self.image_sent and len(images):
            send("picture", Picture(
                cell_id, repeat, preview_png(images[0], settings.get("fps")) if video else thumbnail_png(images[0]),
                # full resolution for the CLIP score, computed after the run
                full_png(images[0]) if self.cell.full_image and not video else None))
            self.image_sent = True
        if not warmup and self.auto.pilot_next():  # decides the count; left out of the statistics
            record["pilot"] = True
        stop = None if warmup else self.auto.after(measured.wall_s)
        if stop is not None:
            record["repeats_stop"] = stop
        send("record", record)
        return None if stop is not None else measured.wall_s


def warmed_up(walls: list[float], steady: SteadyWarmup) -> bool:
    """Whether warm-ups may stop: the last two agree within `tolerance` (a share of the faster),
    or `max` warm-ups have run."""
    if len(walls) >= steady.max:
        return True
    if len(walls) < 2:
        return False
    last, before = walls[-1], walls[-2]
    return abs(last - before) <= steady.tolerance * min(last, before)


class _AutoRule:
    """repeats: auto for one cell: its measured wall times so far, and whether they are enough."""

    def __init__(self, auto: AutoWork | None) -> None:
        self.policy = auto.rule if auto else None
        self.walls: list[float] = list(auto.previous_walls) if auto else []
        self.spent = sum(self.walls)

    def pilot_next(self) -> bool:
        """Whether the generation about to be recorded is one of the pilot's."""
        from ..rules.repeats import in_pilot

        return self.policy is not None and in_pilot(self.walls, self.policy)

    def after(self, wall_s: float) -> dict[str, Any] | None:
        if self.policy is None:
            return None
        from ..rules.repeats import stop_reason

        self.walls.append(wall_s)
        self.spent += wall_s
        return stop_reason(self.walls, self.policy, self.spent)


PROCESS_NAME = b"diffbench-wrk"  # at most 15 bytes


def name_process() -> None:
    """Name this process in ps, top and /proc/PID/comm: a forked worker would show the fork
    server's command line, which says nothing."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(15, PROCESS_NAME, 0, 0, 0)  # PR_SET_NAME = 15
        except (OSError, AttributeError):
            pass


def die_with_parent(parent_pid: int | None) -> None:
    """A worker must never outlive the run that started it (it would hold a GPU for nothing).

    The run holds the write end of a pipe whose read end is this process's parent sentinel: a
    watchdog thread waiting on it wakes the moment the run dies, however it died, and ends this
    process. That holds whether the worker was spawned or forked from the fork server (whose forks
    are the server's children, not the run's). On Linux a spawned worker is also killed by the
    kernel when its parent dies (PR_SET_PDEATHSIG); a forked one, when the server dies.
    """
    if not parent_pid:
        return
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None or parent.pid != parent_pid:  # not started by multiprocessing: watch the pid
        def gone() -> bool:
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            return False

        def watch() -> None:
            while not gone():
                time.sleep(1.0)
            os._exit(1)
    else:
        sentinel = parent.sentinel

        def watch() -> None:
            wait([sentinel])
            os._exit(1)

    threading.Thread(target=watch, name="diffbench-parent-watchdog", daemon=True).start()


# What the parent decides on alone (runner.StopSignals): a worker ignores them, from its first instant
PARENT_ONLY_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def cuda_lost_in_fork() -> bool:
    """Whether this worker was forked from a server in which some import started CUDA: the CUDA
    driver does not survive a fork, so this process could not use the GPU."""
    import multiprocessing

    if multiprocessing.get_start_method(allow_none=True) != "forkserver":
        return False
    torch = sys.modules.get("torch")
    in_bad_fork = getattr(getattr(torch, "cuda", None), "_is_in_bad_fork", lambda: False)
    return bool(in_bad_fork())


def worker_main(conn: Any, job: Job) -> None:
    """Entry point of the worker process (spawned, or forked from a server that never touched CUDA)."""
    name_process()
    if cuda_lost_in_fork():  # the parent spawns this job's worker instead, and every later one
        conn.send(("respawn", "an import in the fork server started CUDA"))
        conn.close()
        return
    die_with_parent(job.parent_pid)
    # Ctrl-C reaches the whole process group; the parent decides what it means. SIGTERM and
    # SIGHUP too: the parent stops this worker itself, after saving what it has.
    for signum in PARENT_ONLY_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # the parent held them back while starting this process
        signal.pthread_sigmask(signal.SIG_UNBLOCK, PARENT_ONLY_SIGNALS)
    quiet_libraries()
    try:
        Worker(conn, job).run()
        conn.send(("done", None))
    except Exception:  # anything unforeseen: tell the parent, which records it
        conn.send(("fatal", traceback.format_exc(limit=8)))
    finally:
        conn.close()
