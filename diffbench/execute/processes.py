"""Worker processes that start warm: torch and diffusers imported once, each worker a fresh fork.

A worker per load group keeps memory from carrying over from one load to the next. Spawning it
re-imports torch and diffusers each time before the load itself (benchmarks/worker_start.py
measures what that costs). A fork server (multiprocessing's "forkserver") imports them once
(execute/warm.py); each worker is a new fork of that server, which never loads a model, runs a
generation or touches CUDA, so the isolation is the same as a spawned process's.

The server keeps the environment it was started in, and libraries read some variables when they
are imported (HF_HUB_OFFLINE, HF_HOME): it is started again whenever the environment differs.
DIFFBENCH_WORKER_START=spawn spawns every worker instead.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver
from typing import Any

from ..errors import DiffbenchError

PRELOAD = ["diffbench.execute.warm"]
START_METHOD_VARIABLE = "DIFFBENCH_WORKER_START"

_server_environment: dict[str, str] | None = None
_spawn_from_now_on = False  # a fork server's import started CUDA: its forks cannot use the GPU


def _forkserver_usable() -> bool:
    server = getattr(forkserver, "_forkserver", None)
    return "forkserver" in multiprocessing.get_all_start_methods() and hasattr(server, "_stop")


START_METHODS = ("forkserver", "spawn")


class StartMethodError(DiffbenchError):
    """DIFFBENCH_WORKER_START names no way to start workers."""


def asked_start_method() -> str:
    """What DIFFBENCH_WORKER_START asks for ('forkserver' when unset); any other value, an empty one
    or another spelling included, is a one-line error: a typo must not silently fork."""
    wanted = os.environ.get(START_METHOD_VARIABLE)
    if wanted is None:
        return "forkserver"
    if wanted not in START_METHODS:
        raise StartMethodError(f"{START_METHOD_VARIABLE}={wanted!r}: allowed: {', '.join(START_METHODS)} (or unset it)")
    return wanted


def start_method() -> str:
    """'forkserver' where the platform has it, unless DIFFBENCH_WORKER_START=spawn asks otherwise."""
    wanted = asked_start_method()
    return "forkserver" if wanted != "spawn" and not _spawn_from_now_on and _forkserver_usable() else "spawn"


def ensure_server() -> None:
    """Start the fork server if it is not running (it begins its imports and answers later)."""
    forkserver._forkserver.ensure_running()


def stop_server(force: bool = False) -> None:
    """Stop this process's fork server and wait until it is gone, so that nothing of a run outlives
    it (a server left to the interpreter's exit lived 2.5-4 s with parent 1, burning CPU beside the
    next suite). `force` (an interrupted run): kill it, even in the middle of its imports, instead
    of waiting for them to finish (a second Ctrl-C stops at once)."""
    import signal

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if server is None or pid is None:
        return
    if force:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        server._stop()
    except (OSError, ChildProcessError):
        pass


def spawn_from_now_on() -> Any:
    """A forked worker found CUDA started by the server's imports (a library that asks the GPU for
    its capability when imported, for instance): spawn every later worker of this process, and
    return the context to do it with."""
    global _spawn_from_now_on
    _spawn_from_now_on = True
    return multiprocessing.get_context("spawn")


def worker_context() -> Any:
    """The multiprocessing context that starts workers; call `prepare_start` right before each start."""
    method = start_method()
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(PRELOAD)
        _stop_at_exit()
    return context


_exit_hook = False


def _stop_at_exit() -> None:
    """At this process's exit its fork server is killed, not left to find its parent gone and tear
    torch down for seconds with parent 1 beside whatever runs next. It holds nothing to save."""
    global _exit_hook
    if not _exit_hook:
        import atexit

        atexit.register(stop_server, True)
        _exit_hook = True


def prepare_start(context: Any) -> None:
    """Before a worker starts: a fork server started in another environment is stopped, so the
    start launches one that sees this environment (it imports the libraries again, once)."""
    global _server_environment
    if context.get_start_method() != "forkserver":
        return
    environment = dict(os.environ)
    if _server_environment is not None and environment != _server_environment:
        forkserver._forkserver._stop()  # type: ignore[attr-defined]
    _server_environment = environment
