"""What torch.compile did during a generation: the seconds spent compiling and the graphs it
compiled (the first call's compile, and every recompile a new resolution or batch size causes).

Read from torch._dynamo's own counters before and after the call, outside the timed region.
Those counters are torch internals: where a version lacks them the fields are None, never 0.
"""

from __future__ import annotations

from typing import Any


def compile_state() -> tuple[float, int] | None:
    """(seconds compiled so far, graphs compiled so far) in this process, or None if unreadable."""
    try:
        from torch._dynamo import utils

        seconds = float(sum(utils.compilation_time_metrics.get("_compile.compile_inner", [])))
        graphs = int(utils.counters["stats"]["unique_graphs"])
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        return None
    return seconds, graphs


def compile_fields(before: tuple[float, int] | None) -> dict[str, Any]:
    """`compile_s` and `graphs_compiled` for the generation that ran since `before`."""
    after = compile_state()
    if before is None or after is None:
        return {"compile_s": None, "graphs_compiled": None}
    return {"compile_s": max(0.0, after[0] - before[0]), "graphs_compiled": max(0, after[1] - before[1])}
