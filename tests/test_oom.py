"""Running out of memory is an answer (`oom`), never an `error`: on a GPU and on the CPU alike."""

from __future__ import annotations

import pytest


def test_a_cpu_allocation_failure_is_recorded_as_oom() -> None:
    import torch

    from diffbench.execute.worker import _is_oom

    with pytest.raises(RuntimeError) as caught:  # 1 PiB: refused by the allocator at once, nothing allocated
        torch.empty(2**50, dtype=torch.uint8)
    assert _is_oom(caught.value)
    assert _is_oom(MemoryError())
    assert _is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 17.00 GiB"))
    assert not _is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
